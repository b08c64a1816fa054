"""Multi-process training through torch.distributed (``torchrun --nproc_per_node N -m bench run ...``).

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; ``init_distributed`` joins the process group (NCCL on CUDA,
gloo on CPU). Training wraps the model in DistributedDataParallel and shards batches with
DistributedSampler; rank 0 alone evaluates and writes the run directory, the others wait for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "all_mean", "barrier", "init_distributed", "on_rank0", "shutdown_distributed"]

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """This process's place: rank among world_size processes, local_rank on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); a no-op otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device == "cuda" else "gloo"
        if device == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of a scalar tensor over processes (identity in a single process)."""
    if not info.enabled:
        return value
    out = value.detach().clone().float()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / info.world_size


def on_rank0(info: DistInfo, fn: Callable[[], T]) -> T | None:
    """Run ``fn`` on rank 0 only; every rank returns its result (broadcast) or raises its error.

    Other ranks wait in the broadcast, so an exception on rank 0 stops all ranks instead of leaving them
    in a barrier until the timeout.
    """
    if not info.enabled:
        return fn()
    payload: list[Any] = [None]
    if info.is_main:
        try:
            payload = [("ok", fn())]
        except BaseException as exc:  # noqa: BLE001 - re-raised on every rank below
            payload = [("error", f"{type(exc).__name__}: {exc}")]
            dist.broadcast_object_list(payload, src=0)
            raise
    dist.broadcast_object_list(payload, src=0)
    status, value = payload[0]
    if status == "error":
        raise RuntimeError(f"rank 0 failed: {value}")
    return value
