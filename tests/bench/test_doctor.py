"""bench doctor: what it finds on this CPU machine, and its GPU section against a fake NVML and fake CUDA devices."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from fake_nvml import H100, fake_pynvml
from test_cli_startup import probe

import bench.io
import bench.rundir
from bench import doctor as doc
from bench.config import RunConfig
from bench.fetch import plan_for_configs
from bench.plan import RunRequest, make_plan
from bench.rundir import RunDir

GIB = 2**30


def findings_text(findings) -> list[str]:
    return [f"{f.status} {f.text}" + (f" -> {f.fix}" if f.fix else "") for f in findings]


@pytest.fixture
def bare_machine(tmp_path, monkeypatch):
    """This machine as a renter finds it: no GPU, no NVIDIA driver, no data, an empty torch hub cache, and 1 PB
    free on every filesystem (the disk checks have their own tests; a full /tmp must not change these counts)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench.io, "free_bytes", lambda path: 10**15)
    monkeypatch.setattr(bench.rundir, "free_bytes", lambda path: 10**15)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(fail_init=True))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    return tmp_path


def test_doctor_on_a_bare_machine_fails_and_says_what_to_fetch(bare_machine):
    out = io.StringIO()
    request = doc.DoctorRequest("paper", only="drnet-resnet50,rside-resnet50", seeds="0")
    assert doc.doctor(request, out) == doc.EXIT_FAIL
    text = out.getvalue()
    sections = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert sections[1:7] == ["GPUs", "host", "disk", "data", "weights", "run directories"]
    assert "FAIL  torch " in text and "sees no CUDA device: NVML does not answer (nvmlInit" in text
    assert "FAIL  rside-csv:data cannot be used" in text and "-> bench fetch rside-data --data-dir data" in text
    assert "FAIL  resnet50: no ImageNet weights in " in text and "resnet50-0676ba61.pth expected" in text
    assert "OK    runs/: 2 to train" in text
    assert "needs ~" in text and "rside-data ~8.20 GB while unpacking" in text and " free, " in text
    assert "Table 1 (2 runs)" in text and "H100 SXM" in text and "654 test frames assumed" in text
    assert "bench fetch rside-data weights --data-dir data --backbone resnet50   (~4.20 GB" in text
    last = "bench run --suite paper --only drnet-resnet50,rside-resnet50 --seeds 0"
    assert "python -m pytest -m gpu -q" in text and text.rstrip().endswith(last)
    assert not (bare_machine / "runs").exists() and not (bare_machine / "data").exists()  # it writes nothing


def test_a_check_that_breaks_is_a_fail_and_the_others_still_run(bare_machine, monkeypatch):
    def broken(configs):
        raise OSError("an unforeseen machine")

    monkeypatch.setattr(doc, "host_findings", broken)
    out = io.StringIO()
    assert doc.doctor(doc.DoctorRequest("smoke", only="rside-*"), out) == doc.EXIT_FAIL
    text = out.getvalue()
    assert "host\n  FAIL  the check itself failed: OSError: an unforeseen machine" in text
    assert "\nrun directories\n  OK    runs/: 1 to train" in text and "1 FAIL, 0 WARN" in text


def test_a_request_bench_run_would_refuse_exits_2_without_torch():
    result, out = probe("doctor", "--suite", "no-such-suite")
    assert result == {"code": 2, "heavy": []} and "error: " in out


# --- GPUs: fake NVML, fake CUDA devices ---------------------------------------------------------------------


def fake_cuda(monkeypatch, count=2, cap=(9, 0), arch=("sm_80", "sm_90"), runtime="12.4"):
    """torch.cuda answering for ``count`` H100-like devices (UUIDs as fake_nvml gives them)."""
    props = [
        SimpleNamespace(name=H100[0], major=cap[0], minor=cap[1], total_memory=80 * GIB, uuid=f"{1234 + i}")
        for i in range(count)
    ]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props[i])
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(arch))
    monkeypatch.setattr(torch.version, "cuda", runtime)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: cap[0] >= 8)


def cuda_configs(**changes) -> list[RunConfig]:
    return [RunConfig(device="cuda", **changes)]


def test_gpu_section_reads_each_device_the_driver_and_nvml(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake = fake_pynvml(devices=(H100, H100), processes=[(4242, 2048)], used_mib=(3072,))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    fake_cuda(monkeypatch)
    lines = findings_text(doc.gpu_findings(cuda_configs()))
    assert lines[0].startswith("OK torch ") and "(CUDA 12.4 runtime, cuDNN" in lines[0]
    assert lines[0].endswith("driver 550.54.15 (CUDA 12.4)")
    assert "OK NVML answers: 2 GPU(s) (device memory in Table 2, other processes)" in lines
    for i in (0, 1):
        assert f"OK cuda:{i} NVIDIA H100 80GB HBM3, compute capability 9.0, 80.0 GiB, 3.0 GiB in use" in lines
        assert any(line.startswith(f"WARN cuda:{i}: 1 other process(es) on it (pids 4242, 2.0 GiB)") for line in lines)
        assert any(line.startswith(f"WARN cuda:{i}: cuDNN convolutions run in TF32 here") for line in lines)
    assert not any(line.startswith("FAIL") for line in lines)
    assert fake.state["init"] == 1 and ("nvmlShutdown", ()) in fake.calls  # one NVML session, closed


def test_no_tf32_warning_when_it_is_off_or_the_runs_use_amp(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    fake_cuda(monkeypatch, count=1)
    assert not any("TF32" in line for line in findings_text(doc.gpu_findings(cuda_configs(amp="bf16"))))
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    assert not any("TF32" in line for line in findings_text(doc.gpu_findings(cuda_configs())))


@pytest.mark.parametrize(
    ("driver", "runtime", "status"),
    [(12000, "13.0", "FAIL"), (12020, "12.4", "WARN"), (12040, "12.4", None), (13000, "12.4", None)],
    ids=str,
)
def test_a_driver_older_than_torchs_cuda(monkeypatch, driver, runtime, status):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(cuda_driver=driver))
    fake_cuda(monkeypatch, count=1, runtime=runtime)
    lines = [line for line in findings_text(doc.gpu_findings(cuda_configs())) if "torch is built for" in line]
    if status is None:
        assert lines == []
    else:
        version = f"{driver // 1000}.{driver % 1000 // 10}"
        assert lines[0].startswith(f"{status} the driver supports CUDA {version}, torch is built for CUDA {runtime}")
        assert lines[0].endswith(
            "-> update the NVIDIA driver, or install a torch build for the driver's CUDA (pytorch.org)"
        )


def test_no_cuda_explains_why(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(devices=(H100,)))
    monkeypatch.setattr(torch.version, "cuda", None)  # pip's CPU wheel on a GPU machine
    (first, nvml) = findings_text(doc.gpu_findings(cuda_configs()))
    assert first.startswith("FAIL torch ") and "a CPU-only build" in first and "NVML sees 1 GPU(s)" in first
    assert first.endswith(
        "-> pip install torch from a CUDA index (pytorch.org, 'Get started'), or run on a GPU machine"
    )
    assert nvml == "WARN NVML: GPU 0 NVIDIA H100 80GB HBM3 (80 GiB)"
    monkeypatch.setattr(torch.version, "cuda", "12.4")  # a CUDA build the driver cannot serve
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    first = findings_text(doc.gpu_findings(cuda_configs()))[0]
    assert "driver 550.54.15 supports CUDA 12.4; torch needs CUDA 12.4; CUDA_VISIBLE_DEVICES=''" in first
    assert findings_text(doc.gpu_findings([RunConfig(device="cpu")]))[0].startswith("OK no CUDA device, none planned")


@pytest.mark.parametrize(
    ("cap", "arch", "expected"),
    [
        ((9, 0), ["sm_80", "sm_90"], ""),
        ((8, 6), ["sm_80", "sm_90"], ""),  # the same major version runs sm_80's binaries
        ((6, 1), ["sm_75", "sm_80", "sm_90"], "no kernels for sm_61"),  # a P40 under a build without Pascal
        ((10, 0), ["sm_80", "sm_90", "compute_90"], "runs through PTX JIT"),
    ],
)
def test_kernels_for_the_gpus_compute_capability(cap, arch, expected):
    found = doc._arch_support(*cap, arch)
    assert (expected in found) if expected else found == ""


# --- data, weights, disk, run directories ----------------------------------------------------------------------


def rside_configs(root: Path) -> list[RunConfig]:
    return list(make_plan(RunRequest("paper", data_spec=f"rside-csv:{root}", only="drnet-resnet50")).configs)


def test_rside_data_with_the_official_test_frames_and_a_short_training_csv(tmp_path):
    from architectures.data.common import official_split
    from architectures.data.rside_csv import write_rside_fixture

    names = tuple(f - 1 for f in official_split("test"))  # RSIDE names test frames by their 0-based index
    root = write_rside_fixture(tmp_path / "rside", train_rows=4, test_names=names, height=48, width=64)
    lines = findings_text(doc.data_findings(rside_configs(root)))
    spec = f"rside-csv:{root}"
    assert lines[0] == f"OK {spec}: 4 training frames (rside-4), 654 test frames"
    assert f"WARN {spec}: 4 training pairs, not RSIDE's 50,688: another or partial nyu2_train.csv" in lines[1]
    assert lines[2] == f"OK {spec}: the test split is the 654 official test frames (splits.mat)"
    assert len(lines) == 3  # and the first frame of each split was read


def test_test_frames_other_than_the_official_654_fail(tmp_path):
    from architectures.data.rside_csv import write_rside_fixture

    root = write_rside_fixture(tmp_path / "rside", train_rows=2, test_names=(0, 1, 8), height=48, width=64)
    lines = findings_text(doc.data_findings(rside_configs(root)))
    assert any(line.startswith("FAIL") and "the test split has 3 frames, not the 654 official ones" in line
               for line in lines)  # fmt: skip


def test_weights_are_checked_against_the_hash_in_their_name(tmp_path, monkeypatch):
    from architectures import backbones

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = backbones.imagenet_cache_dir()
    cache.mkdir(parents=True)
    payload = b"weights" * 1000
    good = f"resnet50-{hashlib.sha256(payload).hexdigest()[:8]}.pth"
    (cache / good).write_bytes(payload)
    spec = backbones.BACKBONES["resnet50"]
    monkeypatch.setitem(backbones.BACKBONES, "resnet50", dataclasses.replace(spec, weight_files=(good,)))
    (cache / "resnet152-394f9c45.pth").write_bytes(b"a partial download")
    configs = [RunConfig(backbone=b, weights="imagenet", arch="drnet") for b in ("resnet50", "resnet152", "senet154")]
    lines = findings_text(doc.weights_findings(configs))
    assert lines[0].startswith(f"FAIL resnet152: {cache}/resnet152-394f9c45.pth has sha256 ")
    assert lines[0].endswith(f"-> rm {cache}/resnet152-394f9c45.pth && bench fetch weights --backbone resnet152")
    assert lines[1].startswith(f"OK resnet50: {cache}/{good} (7.0 kB), sha256 ")
    assert lines[2].startswith("FAIL senet154: no ImageNet weights in ") and lines[2].endswith(
        "-> bench fetch weights --backbone senet154"
    )
    assert findings_text(doc.weights_findings(configs, verify=False))[0].startswith("OK resnet152")


def test_disk_needs_against_free_space_with_both_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # the weights' cache on the same filesystem
    configs = rside_configs(tmp_path / "nowhere")
    missing = plan_for_configs(configs)
    monkeypatch.setattr(bench.io, "free_bytes", lambda path: 10**15)
    (line,) = findings_text(doc.disk_findings(configs, tmp_path / "runs", missing))
    assert line.startswith(f"OK {tmp_path}: 1000000.00 GB free, needs ~")
    assert "3 run(s) to train" in line and "rside-data ~8.20 GB while unpacking" in line
    assert "ImageNet weights of 1 encoder ~102.5 MB" in line
    need = float(line.split("needs ~")[1].split(" GB")[0]) * 1e9
    for free, status in ((need * 1.1, "WARN"), (need * 0.9, "FAIL")):
        monkeypatch.setattr(bench.io, "free_bytes", lambda path, free=free: free)
        (line,) = findings_text(doc.disk_findings(configs, tmp_path / "runs", missing))
        assert line.startswith(f"{status} {tmp_path}: ")


def test_run_directories_reused_resumed_or_refused(tmp_path):
    configs = rside_configs(tmp_path / "data")
    complete, started, other = (RunDir.for_config(c, tmp_path) for c in configs)
    for rd, config in ((complete, configs[0]), (started, configs[1]), (other, configs[2].replace(epochs=3))):
        rd.root.mkdir(parents=True)
        rd.write_config(config, {})
    for rd in (complete, other):
        rd.metrics_path.write_text(json.dumps({}))
    lines = findings_text(doc.run_dir_findings(configs, tmp_path))
    assert lines[0] == f"OK {tmp_path}/: 1 complete (reused)"
    assert lines[1] == f"WARN {started.root} was interrupted: bench run --resume continues it"
    assert lines[2].startswith(f"FAIL {other.root} holds another configuration (epochs): bench run stops there")


def test_one_fetch_command_for_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    configs = rside_configs(tmp_path / "d") + [RunConfig(backbone="resnet152", weights="imagenet")]
    command = doc.fetch_command(plan_for_configs(configs))
    assert command == f"bench fetch rside-data weights --data-dir {tmp_path / 'd'} --backbone resnet50,resnet152"
    assert doc.fetch_command([]) == ""


def test_measured_training_steps_become_hours():
    """--measure's code path on the CPU with a tiny network (on a GPU it times each run's own network)."""
    from runner_fixtures import tiny_config

    from bench.estimate import CostEstimate, RunCost, gpu_time_table

    configs = [tiny_config(input_size=(32, 40), batch_size=2, seed=s) for s in (0, 1)]
    configs.append(configs[0].replace(name="unknown", arch="no-such-arch"))
    steps = doc.measure_steps(configs, "cpu", warmup=1, repeats=3)
    assert isinstance(steps["tiny"], float) and steps["tiny"] > 0
    assert steps["unknown"].startswith("error: KeyError") and "no-such-arch" in steps["unknown"]
    cost = CostEstimate(train_images=100, eval_images=30, gflop_per_image=1.0, total_tflop=1.0, seconds=None)
    assert doc.run_seconds(cost, step_s=0.5, batch=10) == 10 * 0.5 + 30 / 10 * 0.5 / 3  # evaluations: forward only
    table = gpu_time_table([RunCost("tiny", 3, ("table1",), "cuda", cost)], measured=("measured", {"tiny": 7200.0}))
    assert table[0].rstrip().endswith("measured") and table[1].endswith("2.0 h") and table[-1].endswith("6.0 h")


def test_time_section_on_a_gpu_machine(monkeypatch, tmp_path):
    import bench.estimate

    plan = make_plan(RunRequest("paper", data_spec=f"rside-csv:{tmp_path}", only="drnet-resnet50", seeds="0,1"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Fake GPU")
    monkeypatch.setattr(bench.estimate, "matmul_tflops", lambda device: 20.0)
    lines = doc.time_lines(plan)
    assert "this GPU: at its fp32 matmul rate measured now, a lower bound" in lines[0]
    assert lines[1].rstrip().endswith("this GPU (Fake GPU)") and "bench doctor --measure" in lines[-1]
    monkeypatch.setattr(doc, "measure_steps", lambda configs, device: {"drnet-resnet50": 0.05})
    lines = doc.time_lines(plan, measure=True)
    assert "training steps timed now" in lines[0] and lines[1].rstrip().endswith("measured on Fake GPU")
    hours = (126_720 * 0.05 + 654 * 20 / 8 * 0.05 / 3) / 3600  # 126,720 steps of 50 ms, 20 evaluations
    assert lines[2].endswith(f"{hours:.1f} h") and lines[-3].endswith(f"{2 * hours:.1f} h")  # one seed; both
