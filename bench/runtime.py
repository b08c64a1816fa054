"""What every stage of a run shares at run time: the device, mixed precision, DataLoader workers and rank-0
messages.

Training (``bench.train``), evaluation (``bench.evaluate``) and the runner import these from here, so
evaluation does not depend on the training loop.
"""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, TextIO

import torch

from bench.distributed import DistInfo

if TYPE_CHECKING:
    from bench.config import RunConfig
    from bench.rundir import RunDir

__all__ = ["amp_autocast", "loader_workers", "resolve_device", "say", "usable_cores"]

_capped_notices: set[tuple[int, int]] = set()  # (asked, cap) pairs already announced by this process


def resolve_device(config: RunConfig, info: DistInfo) -> str:
    """The torch device string a run uses in this process: ``cuda:<local rank>`` or ``cpu``."""
    if config.device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device; use --device cpu")
        return f"cuda:{info.local_rank}"
    return "cpu"


def amp_autocast(amp: str, device: torch.device) -> AbstractContextManager:
    """``torch.autocast`` for ``amp``: "bf16" on a CUDA device or the CPU, "fp16" on a CUDA device; a no-op
    context for "none" (and for "fp16" off CUDA, which RunConfig refuses: fp16 needs CUDA's grad scaler).

    The CPU's bf16 path is the CUDA one with another device type, so CI runs it (tests/bench/test_gpu_selftest.py)."""
    if amp == "none" or device.type not in ("cuda", "cpu") or (amp == "fp16" and device.type != "cuda"):
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def say(info: DistInfo, run_dir: RunDir | None, stream: TextIO | None, message: str) -> None:
    """On rank 0: print ``message`` to ``stream`` (None: stdout) and append it to ``run_dir``'s log.txt."""
    if info.is_main:
        print(message, file=stream, flush=True)
        if run_dir is not None:
            run_dir.log(message)


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity mask where the OS has one (Linux), else os.cpu_count()."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def loader_workers(requested: int, stream: TextIO | None = None) -> int:
    """DataLoader worker processes: ``requested``, at most ``usable_cores()``. The first time a given request
    is capped, one line says so on ``stream`` (None: stderr) instead of torch's warning per DataLoader."""
    cap = usable_cores()
    if requested <= cap:
        return requested
    if (requested, cap) not in _capped_notices:
        _capped_notices.add((requested, cap))
        print(
            f"note: num_workers {requested} capped at {cap}, the CPU cores this process may use",
            file=stream if stream is not None else sys.stderr,
            flush=True,
        )
    return cap
