"""What a plan would cost, estimated before anything runs (``bench run --dry-run`` prints it).

The estimate counts forward FLOPs of each network once on the meta device (no weights, no memory:
``torch.utils.flop_counter``), multiplies by the images a run will see (training ~3x forward), and divides
by the matmul throughput measured here on the run's device. Convolutions rarely beat matmul throughput,
so the time is a rough lower bound; on CPU it was within ~1.5x of measured RSIDE training. Runs planned on
a GPU that is not here get an estimate per GPU class instead: FLOPs / (a stated fraction of that GPU's
peak fp32 rate from its datasheet), labelled as an estimate.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

from bench import datasets
from bench.config import RunConfig
from bench.datasets import DEFAULT_INPUT_SIZE
from bench.outcomes import format_duration

__all__ = [
    "GPU_ASSUMED_FRACTION",
    "GPU_PEAK_FP32_TFLOPS",
    "CostEstimate",
    "dataset_sizes",
    "estimate_cost",
    "forward_gflop",
    "gpu_class_estimates",
    "matmul_tflops",
]

TRAIN_FLOP_FACTOR = 3.0  # forward + backward ~ 3x forward
# Datasheet peak fp32 (non-tensor-core) TFLOP/s of common GPU classes, for planning without the GPU at hand.
GPU_PEAK_FP32_TFLOPS = {"P40": 11.8, "A100": 19.5, "H100 SXM": 66.9}
GPU_ASSUMED_FRACTION = 0.4  # of peak a conv net's training sustains, a planning guess (not measured here)


@dataclass(frozen=True)
class CostEstimate:
    """Images a run processes and what that costs: forward GFLOP per image, total TFLOP, seconds."""

    train_images: int | None
    eval_images: int | None
    gflop_per_image: float | None  # forward, at the network's input size
    total_tflop: float | None
    seconds: float | None  # total_tflop / measured matmul TFLOP/s on the run's device; None if unknown
    note: str = ""


def dataset_sizes(config: RunConfig) -> tuple[int | None, int | None, str]:
    """(train frames, test frames, note) without side effects (no synthetic file is generated)."""
    from architectures import data as data_lib
    from architectures.data.synthetic import synthetic_split

    try:
        if config.data == "synthetic" and config.data_path is None and not data_lib.default_synthetic_path().exists():
            split = synthetic_split(data_lib.DEFAULT_FRAMES)
            sizes = _limit(config, len(split["train"]), len(split["test"]))
            return sizes + ("synthetic file generated on first run",)
        train, test = datasets.load_datasets(config, DEFAULT_INPUT_SIZE)
        return len(train), len(test), ""
    except Exception as exc:
        note = f"data not available ({type(exc).__name__})"
        if config.data == "nyu-labeled":  # the official split sizes (splits.mat)
            sizes = _limit(config, data_lib.NYU_TRAIN_FRAMES, data_lib.NYU_TEST_FRAMES)
            return sizes + (f"{note}; official split sizes assumed",)
        return None, None, note


def _limit(config: RunConfig, train: int, test: int) -> tuple[int, int]:
    if config.train_frames is not None:
        train = min(train, config.train_frames)
    if config.eval_frames is not None:
        test = min(test, config.eval_frames)
    return train, test


@cache
def forward_gflop(arch: str, backbone: str, options: tuple[tuple[str, Any], ...], input_size: tuple[int, int]) -> float:
    """Forward GFLOP of one image (FLOPs = 2 x multiply-adds), counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    from architectures import build_model

    with torch.device("meta"):
        model = build_model(arch, backbone, weights=None, **dict(options)).eval()
        x = torch.empty(1, 3, *input_size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 1e9


@cache
def matmul_tflops(device: str, size: int = 2048, seconds: float = 0.3) -> float | None:
    """Sustained fp32 matmul TFLOP/s measured here on ``device`` (None if the device is absent)."""
    if device == "cuda" and not torch.cuda.is_available():
        return None
    dev = torch.device(device)
    a, b = torch.randn(size, size, device=dev), torch.randn(size, size, device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    a @ b
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
        sync()
    return 2 * size**3 * n / (time.perf_counter() - t0) / 1e12


def estimate_cost(config: RunConfig, imported: bool = False) -> CostEstimate:
    """Images, FLOPs and a rough time for one run (see the module docstring)."""
    train_frames, test_frames, note = dataset_sizes(config)
    size = tuple(config.input_size or DEFAULT_INPUT_SIZE)
    try:
        gflop = forward_gflop(config.arch, config.backbone, tuple(sorted(config.options.items())), size)
    except Exception as exc:
        gflop, note = None, _join(note, f"FLOPs unknown: {type(exc).__name__}: {exc}")
    train_images = eval_images = None
    if train_frames is not None:
        train_images = 0 if imported else train_frames * config.epochs
        if config.max_steps is not None and not imported:
            train_images = min(train_images, config.max_steps * config.batch_size)
    if test_frames is not None:
        evals = 1  # the final evaluation
        if not imported and config.eval_every_epochs:
            epochs_run = math.ceil((train_images or 0) / max(train_frames or 1, 1))
            evals = epochs_run // config.eval_every_epochs  # per-epoch ones; the last doubles as the final
            evals += int(evals == 0 or epochs_run % config.eval_every_epochs != 0)
            evals += int(config.checkpoint_select == "best")
        eval_images = test_frames * evals
    total = seconds = None
    if gflop is not None and train_images is not None and eval_images is not None:
        total = (TRAIN_FLOP_FACTOR * gflop * train_images + gflop * eval_images) / 1e3
        rate = matmul_tflops(config.device)
        if rate:
            seconds = total / rate
        else:
            note = _join(note, f"no {config.device} device here to time")
    return CostEstimate(train_images, eval_images, gflop, total, seconds, note)


def gpu_class_estimates(total_tflop: float) -> list[str]:
    """Lines estimating the GPU time of ``total_tflop`` (TFLOP) per GPU class, at an assumed fraction of peak."""
    lines = [
        f"GPU time estimate for the {total_tflop:,.1f} TFLOP planned on cuda (no CUDA device here to "
        f"time; an estimate at {GPU_ASSUMED_FRACTION:.0%} of each GPU's datasheet peak fp32 rate, not a "
        f"measurement):"
    ]
    for name, peak in GPU_PEAK_FP32_TFLOPS.items():
        seconds = total_tflop / (peak * GPU_ASSUMED_FRACTION)
        lines.append(f"  {name:<9} (peak {peak:g} TFLOP/s fp32): ~{format_duration(seconds)}")
    return lines


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
