"""The GPU self-test: every CUDA path of a campaign, in a few minutes, for the first machine with a GPU.

``python -m pytest -m gpu -q`` (or ``nox -s gpu``) runs these together with the other tests marked ``gpu``
(test_gpu.py: the CUDA speed sweep and the OOM bisection under a real allocator cap; test_train.py: AMP
training, SIGTERM on CUDA). Without CUDA every ``gpu`` test is skipped (tests/conftest.py says why), and the
parts a CPU can reach run here through the same code: bf16 autocast in a training step and an evaluation,
and NVML memory sampling through a fake pynvml (tests/bench/fake_nvml.py).
"""

from __future__ import annotations

import io
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from fake_nvml import MIB, fake_pynvml
from runner_fixtures import RSIDE_LIKE_PROTOCOL, TinyDepthSet, TinyNet, tiny_config
from torch import nn

from architectures import build_model
from bench.evaluate import evaluate
from bench.rundir import RunDir
from bench.speed import SpeedConfig, SpeedTarget, run_sweep
from bench.speed.gpu import open_nvml
from bench.speed.memory import CudaMemory
from bench.train import fit, load_checkpoint, seed_everything

HW = (64, 96)  # input rows x cols: divisible by 32 as DRNet's five levels want, a training step in milliseconds
EVAL_REL_TOL = 1e-4  # CUDA vs CPU metrics in fp32 with TF32 off (see test_evaluation_on_cuda_agrees_with_the_cpu)
DELTA_ABS_TOL = 1e-3  # delta1..3 are pixel shares: a pixel whose ratio sits at 1.25 may fall either side
BF16_REL_TOL = 3e-2  # bf16 keeps 8 bits of mantissa (~0.4% per value); an evaluation's metrics move ~1%

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


@contextmanager
def output_dtypes(module: nn.Module):
    """The dtypes ``module`` returned while the block ran (what autocast made of its convolution)."""
    seen: set[torch.dtype] = set()
    handle = module.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
    try:
        yield seen
    finally:
        handle.remove()


@contextmanager
def no_tf32():
    """Strict fp32 on the GPU: cuDNN convolutions and matmuls without TF32 (torch enables it for cuDNN by default
    on Ampere and later, which rounds inputs to 10 mantissa bits)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def train_tiny(tmp_path: Path, name: str, model: nn.Module, **changes):
    """A few training steps through bench.train.fit; returns (model, state, last.pt's payload)."""
    rd = RunDir(tmp_path / name)
    rd.root.mkdir(parents=True)
    config = tiny_config(input_size=HW, epochs=1, batch_size=2, checkpoint_every_steps=0, **changes)
    data = TinyDepthSet(list(range(1, 7)), hw=HW, train=True, split="train")
    state = fit(config, model, data, rd, stream=io.StringIO())
    return model, state, load_checkpoint(rd.last_checkpoint)


class Positive(nn.Module):
    """A network's depth made positive (random weights predict any sign; the metrics take logs)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, levels: bool = False):
        return 0.5 + nn.functional.softplus(self.net(x))


def metrics_of(result) -> dict[str, float]:
    return dict(result.reductions()["rside"])


# --- what a CPU reaches: run in CI --------------------------------------------------------------------------


def test_bf16_autocast_trains_on_the_cpu_through_the_same_step(tmp_path):
    """The CUDA bf16 path with device cpu: RunConfig accepts it, the step runs under autocast, no grad scaler."""
    seed_everything(0)
    model = TinyNet()
    before = [p.detach().clone() for p in model.parameters()]
    with output_dtypes(first_conv(model)) as dtypes:
        model, state, payload = train_tiny(tmp_path, "bf16", model, amp="bf16")
    assert dtypes == {torch.bfloat16}  # every training forward ran under bf16 autocast
    assert state.finished and state.global_step == 3 and payload["scaler"] == {}  # bf16 needs no scaling
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in model.parameters())  # fp32 masters
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_fp16_stays_cuda_only():
    from bench.config import ConfigError

    with pytest.raises(ConfigError, match="amp = 'fp16' needs device = 'cuda'"):
        tiny_config(amp="fp16")


def test_bf16_evaluation_on_the_cpu_is_close_to_fp32():
    torch.manual_seed(0)
    model = Positive(build_model("drnet", "resnet18")).eval()
    data = TinyDepthSet([1, 2, 3, 4], hw=HW)
    fp32 = metrics_of(evaluate(model, data, RSIDE_LIKE_PROTOCOL))
    with output_dtypes(first_conv(model)) as dtypes:
        bf16 = metrics_of(evaluate(model, data, RSIDE_LIKE_PROTOCOL, amp="bf16"))
    assert dtypes == {torch.bfloat16}
    for key in ("rmse", "abs_rel", "log10"):
        assert bf16[key] == pytest.approx(fp32[key], rel=BF16_REL_TOL), key


def test_cuda_memory_probe_samples_nvml_through_the_fake(monkeypatch):
    """CudaMemory as a CUDA sweep drives it, with pynvml faked and torch.cuda's allocator counters stubbed:
    the NVML peak above the baseline becomes nvml_used_mib."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(used_mib=(1000, 1000, 1800, 1500)))
    for name in ("synchronize", "empty_cache", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 600 * MIB)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device=None: 700 * MIB)
    nvml, note = open_nvml(0)
    assert nvml is not None, note
    probe = CudaMemory(torch.device("cuda", 0), nvml, nvml_baseline=500 * MIB)
    probe.begin()
    while probe._sampler.n_samples < 4:  # the sampling thread reads every 10 ms
        pass
    peaks = probe.read_peaks()
    assert peaks["nvml_used_mib"] == 1300.0 and peaks["nvml_samples"] >= 4
    assert peaks["peak_allocated_mib"] <= peaks["peak_reserved_mib"] <= peaks["nvml_used_mib"]
    probe.end()
    assert not torch.cuda.is_initialized()


# --- on a GPU -------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_training_steps_on_cuda(tmp_path, amp):
    """DRNet-ResNet-18 trains three steps on CUDA in each precision; fp16 goes through the grad scaler."""
    torch.manual_seed(0)
    model = build_model("drnet", "resnet18")
    with output_dtypes(first_conv(model)) as dtypes:
        model, state, payload = train_tiny(tmp_path, amp, model, device="cuda", amp=amp)
    assert dtypes == {{"none": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]}
    assert state.finished and next(model.parameters()).is_cuda
    assert all(torch.isfinite(p).all() for p in model.parameters())
    scaler = payload["scaler"]
    if amp == "fp16":  # the scale was set, and either grew its tracker or backed off after an overflow
        assert scaler["scale"] > 0 and (scaler["_growth_tracker"] > 0 or scaler["scale"] < 2.0**16), scaler
    else:
        assert scaler == {}


@pytest.mark.gpu
@cuda
def test_evaluation_on_cuda_agrees_with_the_cpu():
    """The same weights and frames give the same metrics on CUDA and on the CPU, within EVAL_REL_TOL.

    Why 1e-4: both sides compute in fp32 (TF32 off), but cuDNN and the CPU sum each convolution in another
    order, so predictions differ by ~1e-6 relative; metrics average thousands of pixels, which leaves them
    within ~1e-5. 1e-4 is that with headroom; a real bug (a wrong resize, a mask, a dtype) moves them by far more.
    """
    torch.manual_seed(0)
    for arch in ("rside", "drnet"):
        model = Positive(build_model(arch, "resnet18")).eval()
        data = TinyDepthSet([1, 2, 3, 4, 5], hw=HW)
        cpu = metrics_of(evaluate(model, data, RSIDE_LIKE_PROTOCOL, batch_size=2))
        with no_tf32():
            gpu = metrics_of(evaluate(model.cuda(), data, RSIDE_LIKE_PROTOCOL, device="cuda", batch_size=2))
        for key, value in cpu.items():
            if key.startswith("delta"):
                assert gpu[key] == pytest.approx(value, abs=DELTA_ABS_TOL), (arch, key)
            elif isinstance(value, float):
                assert gpu[key] == pytest.approx(value, rel=EVAL_REL_TOL), (arch, key)


def cuda_sweep(tmp_path: Path, **options):
    settings = {"batch_sizes": (1, 2, 4), "warmup": 3, "repeats": 5, **options}
    config = SpeedConfig(targets=(SpeedTarget("drnet", "resnet18"),), device="cuda", input_hw=HW, **settings)
    return run_sweep(config, tmp_path)


@pytest.mark.gpu
@cuda
def test_speed_sweep_on_cuda_samples_nvml_in_fresh_processes(tmp_path):
    """With every point in a fresh process the NVML baseline precedes its CUDA context, so the three memory
    numbers must come in order: peak allocated <= peak reserved <= NVML used."""
    nvml, note = open_nvml(0)
    if nvml is None:
        pytest.fail(f"NVML does not answer on a CUDA machine: {note}")
    nvml.close()
    result = cuda_sweep(tmp_path, isolate=True, modes=("inference", "train"))
    assert result.points and all(p.status == "ok" for p in result.points), [p.note for p in result.points]
    for p in result.points:
        assert p.nvml_used_mib is not None and p.nvml_samples >= 1, p
        assert 0 < p.peak_allocated_mib <= p.peak_reserved_mib <= p.nvml_used_mib, p


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("option", ["channels_last", "compile"])
def test_channels_last_and_compile_sweeps_on_cuda(tmp_path, option):
    """The sweep runs in both layouts / compiled, and the network's output is the eager NCHW one (fp32, TF32
    off; compile and channels_last pick other kernels, hence rtol 1e-4 as for the evaluation)."""
    result = cuda_sweep(tmp_path, batch_sizes=(1, 2), **{option: True})
    assert all(p.status == "ok" for p in result.points), [p.note for p in result.points]
    torch.manual_seed(0)
    model = build_model("drnet", "resnet18").cuda().eval()
    x = torch.randn(2, 3, *HW, device="cuda")
    with no_tf32(), torch.inference_mode():
        reference = model(x)
        if option == "channels_last":
            out = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
        else:
            out = torch.compile(model)(x)
    assert torch.allclose(out.float(), reference, rtol=1e-4, atol=1e-5)


def ddp_rank(rank: int, root: str, port: int) -> None:
    """One of two NCCL processes, joined as under torchrun (environment variables, bench.distributed)."""
    from bench.distributed import init_distributed, shutdown_distributed

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    info = init_distributed("cuda")
    try:
        torch.manual_seed(0)
        model = build_model("drnet", "resnet18")
        config = tiny_config(input_size=HW, epochs=1, batch_size=4, device="cuda", checkpoint_every_steps=0)
        data = TinyDepthSet(list(range(1, 9)), hw=HW, train=True, split="train")
        fit(config, model, data, RunDir(Path(root) / "ddp"), info=info, stream=io.StringIO())
        total = sum(float(p.double().sum()) for p in model.parameters())
        Path(root, f"rank{rank}.txt").write_text(f"{model.parameters().__next__().device} {total!r}")
    finally:
        shutdown_distributed()


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
def test_ddp_over_nccl_with_two_processes(tmp_path):
    """Two processes train one run with DistributedDataParallel over NCCL: both end with the same weights,
    each on its own GPU, and rank 0 alone wrote the checkpoint."""
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "ddp").mkdir()
    mp.spawn(ddp_rank, args=(str(tmp_path), port), nprocs=2, join=True)
    (dev0, sum0), (dev1, sum1) = ((tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1))
    assert (dev0, dev1) == ("cuda:0", "cuda:1") and sum0 == sum1
    assert load_checkpoint(RunDir(tmp_path / "ddp").last_checkpoint)["state"]["global_step"] == 2
