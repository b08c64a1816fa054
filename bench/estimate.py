"""What a plan would cost, estimated before anything runs (``bench run --dry-run`` prints it).

The estimate counts forward FLOPs of each network once on the meta device (no weights, no memory:
``torch.utils.flop_counter``), multiplies by the images a run will see (training ~3x forward), and divides
by the matmul throughput measured here on the run's device. Convolutions rarely beat matmul throughput,
so the time is a rough lower bound; on CPU it was within ~1.5x of measured RSIDE training. Runs planned on
a GPU that is not here get an estimate per GPU class instead: FLOPs / (a stated fraction of that GPU's
peak fp32 rate from its datasheet), labelled as an estimate. Without the data at hand, the NYU sources' sizes
are known (the official 795 / 654 split; RSIDE's 50,688 training pairs and the 654 test frames), so a plan's
GPU hours are shown before anything is downloaded. ``campaign_costs`` and ``gpu_time_table`` give them per run,
per paper table and in all (``bench doctor``, ``bench run --dry-run``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
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
    "RunCost",
    "campaign_costs",
    "dataset_sizes",
    "estimate_cost",
    "forward_gflop",
    "gpu_class_estimates",
    "gpu_hours",
    "gpu_time_table",
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
    """(train frames, test frames, note) without side effects (no synthetic file is generated). Data that is
    not here has its published size where one is known (the NYU sources), said so in the note."""
    from architectures import data as data_lib
    from architectures.data.downloads import RSIDE_TRAIN_PAIRS
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
        if config.data == "rside-csv":  # RSIDE's nyu2_train.csv rows and the official test frames
            sizes = _limit(config, RSIDE_TRAIN_PAIRS, data_lib.NYU_TEST_FRAMES)
            return sizes + (f"{note}; RSIDE's {RSIDE_TRAIN_PAIRS:,} training pairs and 654 test frames assumed",)
        return None, None, note


def data_key(config: RunConfig) -> tuple[Any, ...]:
    """What ``dataset_sizes`` depends on: runs with equal keys have equal sizes (opened once per key)."""
    fields = ("data", "data_path", "train_split", "test_split", "protocol", "train_frames", "eval_frames")
    return tuple(getattr(config, f) for f in fields)


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


def estimate_cost(
    config: RunConfig, imported: bool = False, sizes: dict[tuple[Any, ...], tuple[Any, ...]] | None = None
) -> CostEstimate:
    """Images, FLOPs and a rough time for one run (see the module docstring). ``sizes``: a dict that keeps
    ``dataset_sizes`` per ``data_key`` across calls (a plan's runs share their data)."""
    sizes = {} if sizes is None else sizes
    key = data_key(config)
    if key not in sizes:
        sizes[key] = dataset_sizes(config)
    train_frames, test_frames, note = sizes[key]
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


@dataclass(frozen=True)
class RunCost:
    """One run entry of a plan (all its seeds) and what one seed costs."""

    name: str  # the suite's run name, e.g. "drnet-resnet152"
    seeds: int  # how many seeds of it are planned
    tables: tuple[str, ...]  # the paper tables it feeds
    device: str  # "cuda" | "cpu"
    cost: CostEstimate  # one seed

    @property
    def tflop(self) -> float | None:
        """All seeds' TFLOP (None when unknown)."""
        return None if self.cost.total_tflop is None else self.cost.total_tflop * self.seeds


def campaign_costs(
    configs: Sequence[RunConfig], imported: Callable[[RunConfig], bool] = lambda c: c.source == "imported"
) -> list[RunCost]:
    """The plan's runs by name (seeds share one estimate: only the seed differs), in plan order."""
    by_name: dict[str, list[RunConfig]] = {}
    for c in configs:
        by_name.setdefault(c.name, []).append(c)
    sizes: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    return [
        RunCost(name, len(group), group[0].tables, group[0].device, estimate_cost(group[0], imported(group[0]), sizes))
        for name, group in by_name.items()
    ]


def gpu_hours(seconds: float) -> str:
    """GPU time in hours as people plan it: ``126 h``, ``7.4 h``, ``0.25 h``."""
    hours = seconds / 3600
    return f"{hours:,.0f} h" if hours >= 10 else f"{hours:.1f} h" if hours >= 1 else f"{hours:.2f} h"


def gpu_time_table(
    costs: Sequence[RunCost],
    here: tuple[str, float] | None = None,
    measured: tuple[str, Mapping[str, float]] | None = None,
) -> list[str]:
    """GPU hours of the plan's CUDA runs per GPU class, at ``GPU_ASSUMED_FRACTION`` of each class's datasheet
    peak fp32 rate: one line per run (one seed), then per paper table and in all (every seed). ``here`` (name,
    matmul TFLOP/s measured on this machine's GPU) adds a column for it (a lower bound: matmul speed);
    ``measured`` (column name, seconds of one seed by run name) a column of times measured on it."""
    rows = [c for c in costs if c.device == "cuda" and c.tflop is not None]
    if not rows:
        return []
    columns: dict[str, Callable[[RunCost], float | None]] = {
        name: (lambda r, rate=peak * GPU_ASSUMED_FRACTION: (r.cost.total_tflop or 0.0) / rate)
        for name, peak in GPU_PEAK_FP32_TFLOPS.items()
    }
    if here is not None:
        columns[f"this GPU ({here[0]})"] = lambda r: (r.cost.total_tflop or 0.0) / here[1]
    if measured is not None:
        columns[measured[0]] = lambda r: measured[1].get(r.name)
    widths = [max(len(n), 7) + 2 for n in columns]
    totals = [
        (f"{t.replace('table', 'Table ')} ({_runs_text(m)})", m)
        for t in sorted({t for r in rows for t in r.tables})
        for m in [[r for r in rows if t in r.tables]]
    ]
    totals.append((f"all ({_runs_text(rows)})", rows))
    width = max(len(x) for x in [*(r.name for r in rows), *(t for t, _ in totals), "one run, one seed"]) + 1

    def line(label: str, members: Sequence[RunCost], seeds: bool) -> str:
        tflop = sum((r.tflop if seeds else r.cost.total_tflop) or 0.0 for r in members)
        cells = ""
        for fn, w in zip(columns.values(), widths, strict=True):
            times = [(fn(r), r.seeds if seeds else 1) for r in members]
            total = None if any(t is None for t, _ in times) else sum(t * n for t, n in times)
            cells += f"{gpu_hours(total) if total is not None else '-':>{w}}"
        return f"  {label:<{width}}{tflop:>12,.0f}{cells}"

    header = "".join(f"{n:>{w}}" for n, w in zip(columns, widths, strict=True))
    out = [f"  {'one run, one seed':<{width}}{'TFLOP':>12}{header}"]
    out += [line(r.name, [r], seeds=False) for r in rows]
    out.append("  every seed")
    out += [line(label, members, seeds=True) for label, members in totals]
    return out


def _runs_text(rows: Sequence[RunCost]) -> str:
    """ "7 runs x 3 seeds", or "12 runs with their seeds" when the seed counts differ."""
    seeds = {r.seeds for r in rows}
    if len(seeds) == 1:
        (k,) = seeds
        return f"{len(rows)} run{'s' * (len(rows) > 1)}" + (f" x {k} seeds" if k > 1 else "")
    return f"{sum(r.seeds for r in rows)} runs with their seeds"


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
