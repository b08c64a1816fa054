from __future__ import annotations

import io
from contextlib import nullcontext

import pytest
import torch

import bench.evaluate
import bench.runner
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


@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_autocast_is_a_no_op_on_the_cpu(amp):
    assert isinstance(amp_autocast(amp, torch.device("cpu")), nullcontext)


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_autocast_on_cuda_picks_the_dtype():
    cuda = torch.device("cuda", 0)  # building the context does not touch the device
    assert isinstance(amp_autocast("none", cuda), nullcontext)
    assert amp_autocast("bf16", cuda).fast_dtype == torch.bfloat16
    assert amp_autocast("fp16", cuda).fast_dtype == torch.float16


def test_train_evaluate_and_runner_share_the_runtime_helpers():
    assert bench.train.say is say and bench.runner.say is say and bench.runner.resolve_device is resolve_device
    assert bench.evaluate.amp_autocast is amp_autocast and bench.train.amp_autocast is amp_autocast
