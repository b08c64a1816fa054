"""``bench run --dry-run``: the plan (every run, its config, data, state on disk) and a cost estimate.

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
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch

from bench.config import RunConfig
from bench.rundir import RunDir
from bench.runner import DEFAULT_INPUT_SIZE, format_duration, load_datasets

__all__ = ["CostEstimate", "describe_plan", "estimate_cost", "gpu_class_estimates", "matmul_tflops"]

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
        train, test = load_datasets(config, DEFAULT_INPUT_SIZE)
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


def describe_plan(
    suite_name: str,
    description: str,
    configs: Sequence[RunConfig],
    defaults: RunConfig,
    speed: Sequence[dict[str, Any]],
    runs_dir: Path,
    problems: Sequence[str],
) -> str:
    """The text ``--dry-run`` prints."""
    lines = [f"suite {suite_name}: {len(configs)} training run(s), {len(speed)} speed sweep(s)"]
    if description:
        lines.append(f"  {description}")
    lines.append("")
    lines.append("defaults (every run, unless it says otherwise):")
    base = defaults.to_dict()
    for key in sorted(base):
        if key not in ("suite", "name", "tables"):
            lines.append(f"  {key} = {base[key]!r}")
    total_s: float = 0.0
    unknown_time = False
    unmeasured_gpu_tflop = 0.0  # FLOPs of runs planned on a CUDA device that is not here
    for c in configs:
        rd = RunDir.for_config(c, runs_dir)
        state = _safe_state(rd)
        cost = estimate_cost(c, imported=state == "imported")
        differ = {k: v for k, v in c.to_dict().items() if base.get(k) != v and k not in ("name", "seed", "suite")}
        lines.append("")
        lines.append(f"{c.run_id}  [{', '.join(c.tables) or 'no table'}]  -> {rd.root}  ({state})")
        lines.append(f"  model   {c.arch}-{c.backbone} options={dict(c.options)} weights={c.weights}")
        lines.append(
            f"  data    {c.data}:{c.data_path or '(default)'} train={c.train_split} test={c.test_split} "
            f"protocol={c.protocol}"
        )
        if differ:
            lines.append("  config  " + ", ".join(f"{k}={v!r}" for k, v in sorted(differ.items())))
        lines.append("  cost    " + _cost_text(cost, c))
        if cost.seconds is None:
            unknown_time = True
            if c.device == "cuda" and cost.total_tflop is not None:
                unmeasured_gpu_tflop += cost.total_tflop
        else:
            total_s += cost.seconds
    if speed:
        lines.append("")
        lines.append(f"Table 2 speed sweeps ({len(speed)}; run after the training runs via bench.speed):")
        for s in speed:
            extra = "".join(f" {key}={','.join(map(str, s[key]))}" for key in ("batch_sizes", "modes") if key in s)
            lines.append(f"  {s['name']}: {s['arch']}-{s['backbone']} options={s.get('options', {})}{extra}")
    tables: dict[str, dict[str, int]] = {}  # table -> run name -> seeds
    for c in configs:
        for t in c.tables:
            names = tables.setdefault(t, {})
            names[c.name] = names.get(c.name, 0) + 1
    if tables:
        lines.append("")
        for t in sorted(tables):
            counts = sorted(set(tables[t].values()))
            seeds = f" (x {', '.join(map(str, counts))} seed(s))" if max(counts) > 1 else ""
            lines.append(f"{t.replace('table', 'Table ')}: {len(tables[t])} run(s): {', '.join(tables[t])}{seeds}")
    lines.append("")
    lines += _seed_lines(configs, total_s)
    if total_s:
        lines.append(
            f"estimated time: {format_duration(total_s)}"
            + (" + the runs that could not be estimated" if unknown_time else "")
            + " (a lower bound: matmul throughput here)"
        )
    else:
        lines.append("estimated time: not available (no run could be timed on this machine)")
    if unmeasured_gpu_tflop:
        lines += gpu_class_estimates(unmeasured_gpu_tflop)
    if problems:
        lines.append("")
        lines.append(f"{len(problems)} problem(s) to fix before this can run:")
        lines += [f"  - {p}" for p in problems]
    return "\n".join(lines)


def _seed_lines(configs: Sequence[RunConfig], total_s: float) -> list[str]:
    """What the seeds cost: entries x seeds = runs, and the time one seed of every entry takes."""
    seeds: dict[str, list[int]] = {}
    for c in configs:
        seeds.setdefault(c.name, []).append(c.seed)
    if not seeds:
        return []
    counts = sorted({len(v) for v in seeds.values()})
    per_entry = ", ".join(str(n) for n in counts)
    text = (
        f"seeds: {len(seeds)} run entr{'y' if len(seeds) == 1 else 'ies'} x {per_entry} seed(s) = "
        f"{len(configs)} training run(s)"
    )
    if max(counts) > 1 and total_s:
        text += f"; one seed of each would take ~{format_duration(total_s / max(counts))}"
    out = [text]
    if min(counts) < 3:
        out.append("  (accuracy verdicts need >= 3 seeds per compared model; with fewer they are 'inconclusive')")
    return out


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


def _cost_text(cost: CostEstimate, c: RunConfig) -> str:
    parts = []
    if cost.train_images is not None:
        parts.append(
            f"{cost.train_images:,} train images ({c.epochs} epochs"
            + (f", <= {c.max_steps} steps" if c.max_steps else "")
            + f", batch {c.batch_size})"
        )
    if cost.eval_images is not None:
        parts.append(f"{cost.eval_images:,} eval images")
    if cost.gflop_per_image is not None:
        h, w = c.input_size or DEFAULT_INPUT_SIZE
        parts.append(f"{cost.gflop_per_image:.1f} GFLOP/image fwd at {h}x{w}")
    if cost.total_tflop is not None:
        parts.append(f"{cost.total_tflop:,.1f} TFLOP")
    if cost.seconds is not None:
        parts.append(
            f"~{format_duration(cost.seconds)} on {c.device} (matmul {matmul_tflops(c.device):.2f} TFLOP/s here)"
        )
    if cost.note:
        parts.append(cost.note)
    return "; ".join(parts) or "unknown"


def _safe_state(rd: RunDir) -> str:
    try:
        return rd.describe()
    except Exception as exc:  # damaged config.json: say so, the preflight reports it
        return f"unreadable: {exc}"


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
