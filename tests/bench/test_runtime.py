from __future__ import annotations

import io
from contextlib import nullcontext

import pytest
import torch

import bench.evaluate
import bench.lifecycle
import bench.train
from bench.config import RunConfig
from bench.distributed import DistInfo
from bench.rundir import RunDir
from bench.runtime import amp_autocast, resolve_device, say


def test_say_prints_and_logs_on_rank0_only(tmp_path):
    rd = RunDir(tmp_path / "run")
    out = io.StringIO()
    say(DistInfo(), rd, out, "hello")
    say(DistInfo(rank=1, world_size=2, local_rank=1), rd, out, "from rank 1")
    assert out.getvalue() == "hello\n"
    log = (rd.root / "log.txt").read_text()
    assert "hello" in log and "rank 1" not in log


def test_resolve_device():
    assert resolve_device(RunConfig(device="cpu"), DistInfo(local_rank=3)) == "cpu"
    if torch.cuda.is_available():
        assert resolve_device(RunConfig(device="cuda"), DistInfo(local_rank=0)) == "cuda:0"
    else:
        with pytest.raises(RuntimeError, match="torch sees no CUDA device; use --device cpu"):
            resolve_device(RunConfig(device="cuda"), DistInfo())


@pytest.mark.parametrize("amp", ["none", "fp16"])
def test_autocast_on_the_cpu_is_a_no_op_without_bf16(amp):
    assert isinstance(amp_autocast(amp, torch.device("cpu")), nullcontext)  # fp16 needs CUDA (RunConfig refuses it)


def test_bf16_autocast_runs_on_the_cpu_too():
    context = amp_autocast("bf16", torch.device("cpu"))
    assert (context.device, context.fast_dtype) == ("cpu", torch.bfloat16)
    with context:
        assert torch.nn.functional.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 1, 1)).dtype == torch.bfloat16


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_autocast_on_cuda_picks_the_dtype():
    cuda = torch.device("cuda", 0)  # building the context does not touch the device
    assert isinstance(amp_autocast("none", cuda), nullcontext)
    assert amp_autocast("bf16", cuda).fast_dtype == torch.bfloat16
    assert amp_autocast("fp16", cuda).fast_dtype == torch.float16


def test_train_evaluate_and_runner_share_the_runtime_helpers():
    assert bench.train.say is say and bench.lifecycle.say is say and bench.lifecycle.resolve_device is resolve_device
    assert bench.evaluate.amp_autocast is amp_autocast and bench.train.amp_autocast is amp_autocast


def test_loader_workers_caps_at_usable_cores_with_one_notice(monkeypatch):
    import bench.runtime as runtime

    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    monkeypatch.setattr(runtime, "_capped_notices", set())
    out = io.StringIO()
    assert runtime.loader_workers(1, out) == 1 and runtime.loader_workers(2, out) == 2
    assert out.getvalue() == ""
    assert runtime.loader_workers(4, out) == 2
    assert runtime.loader_workers(4, out) == 2  # the same cap is announced once
    assert out.getvalue() == "note: num_workers 4 capped at 2, the CPU cores this process may use\n"


def test_usable_cores_follows_the_affinity_mask(monkeypatch):
    import bench.runtime as runtime

    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert runtime.usable_cores() == 3
    monkeypatch.delattr(runtime.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 7)
    assert runtime.usable_cores() == 7
