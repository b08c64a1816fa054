"""A whole sweep: ``run_sweep`` checks the config (``preflight``), sets the CPU memory cap and torch's
settings, sweeps every model in every mode (``bench.speed.sweep``), and writes the files as it goes
(``bench.speed.output``): an interrupted sweep keeps what it measured.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bench.config import model_problem
from bench.io import write_csv_atomic, write_json_atomic, write_text_atomic
from bench.paths import DEFAULT_RUNS_DIR
from bench.provenance import collect_provenance
from bench.speed.gpu import Nvml
from bench.speed.memory import MIB, mem_available_bytes, rss_bytes
from bench.speed.output import (
    config_path,
    default_run_id,
    describe_point,
    describe_summary,
    load_average,
    rows,
    sweep_environment,
    sweep_header,
)
from bench.speed.records import (
    DTYPES,
    POINT_COLUMNS,
    SUMMARY_COLUMNS,
    SpeedConfig,
    SpeedPoint,
    SpeedResult,
    SpeedSummary,
    columns_markdown,
    parse_modes,
)
from bench.speed.sweep import nvml_with_baseline, summarize, sweep_target

__all__ = ["CPU_DEFAULT_LIMIT_FRACTION", "preflight", "run_sweep"]

CPU_DEFAULT_LIMIT_FRACTION = 0.4  # no --max-memory-mib on CPU: peak RSS <= RSS now + 40% of MemAvailable

Say = Callable[[str], None]


def run_sweep(
    config: SpeedConfig,
    out_dir: str | Path | None = None,
    progress: Say | None = None,
    overwrite: bool = False,
) -> SpeedResult:
    """Sweep every target of ``config``; write speed.csv, speed_summary.csv, speed_columns.md, config.json.

    ``out_dir`` None: ``runs/<default_run_id>`` under the working directory. speed.csv is rewritten
    (atomically) after every point and speed_summary.csv after every model, so an interrupted sweep keeps what
    it measured. config.json holds ``{"kind": "speed", "config", "provenance", "environment"}``; if the
    directory already has another producer's config.json (a training run), ours goes to speed_config.json.
    """
    say = progress or (lambda _msg: None)
    config = config.resolved()
    preflight(config)
    nvml, nvml_note, baseline = nvml_with_baseline(config)  # first: before this process touches CUDA
    try:
        config, notes = _cpu_memory_cap(config)
        gpu_name = nvml.name() if nvml is not None else None
        out = Path(out_dir) if out_dir is not None else DEFAULT_RUNS_DIR / default_run_id(config, gpu_name)
        for existing in ("speed.csv", "speed_summary.csv"):
            if (out / existing).exists() and not overwrite:
                raise FileExistsError(f"{out / existing} exists; choose another --out or pass --overwrite")
        with _torch_settings(config):
            record = _record(config, nvml, nvml_note, baseline, notes)
            environment, record_path = record["environment"], config_path(out)
            write_json_atomic(record_path, record)
            write_text_atomic(out / "speed_columns.md", columns_markdown())
            for warning in environment["warnings"] + notes:
                say(f"note: {warning}")
            say(sweep_header(config, gpu_name if config.device_kind == "cuda" else environment.get("cpu"), out))
            say(f"{nvml_note}")
            start = time.perf_counter()
            points, summaries = _sweep_all(config, out, nvml, baseline, gpu_name, say)
            if nvml is not None:
                environment["end"] = nvml.dynamic_info()
            environment["load_average_end"] = load_average()
            environment["wall_time_s"] = round(time.perf_counter() - start, 1)
            write_json_atomic(record_path, record)
            say(f"wrote {out / 'speed.csv'} and {out / 'speed_summary.csv'}")
            return SpeedResult(out, points, summaries, environment)
    finally:
        if nvml is not None:
            nvml.close()


def _cpu_memory_cap(config: SpeedConfig) -> tuple[SpeedConfig, list[str]]:
    """On CPU without ``max_memory_mib``: the cap RSS now + a fraction of MemAvailable, and a note saying so."""
    if config.device_kind != "cpu" or config.max_memory_mib is not None:
        return config, []
    available = mem_available_bytes()
    if available is None:
        return config, []
    limit = (rss_bytes() + CPU_DEFAULT_LIMIT_FRACTION * available) / MIB
    note = (
        f"CPU memory cap defaulted to current RSS + {CPU_DEFAULT_LIMIT_FRACTION:.0%} of "
        f"MemAvailable = {limit:.0f} MiB (set --max-memory-mib to change)"
    )
    return replace(config, max_memory_mib=round(limit, 1)), [note]


@contextmanager
def _torch_settings(config: SpeedConfig) -> Iterator[None]:
    """torch's CPU threads and cuDNN autotuning as the config says, restored afterwards."""
    saved_threads, saved_benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.backends.cudnn.benchmark = config.cudnn_benchmark
    try:
        yield
    finally:
        torch.set_num_threads(saved_threads)
        torch.backends.cudnn.benchmark = saved_benchmark


def _record(
    config: SpeedConfig, nvml: Nvml | None, nvml_note: str, baseline: float | None, notes: list[str]
) -> dict[str, Any]:
    """config.json's ``{"kind": "speed", "config", "provenance", "environment"}`` at the start of the sweep."""
    kind = config.device_kind
    environment = sweep_environment(config, nvml, nvml_note)
    environment["notes"] = notes
    environment["nvml_baseline_mib"] = round(baseline / MIB, 1) if baseline is not None else None
    # With children (--isolate, per-model processes) the parent never touches CUDA (its context would sit
    # on the GPU the children measure); provenance then describes the GPU from NVML.
    children = config.process != "shared"
    provenance = collect_provenance("cpu" if kind == "cuda" and children else config.device, seed=config.seed)
    if kind == "cuda" and children:
        provenance["device"] = {
            "device": config.device,
            **(environment.get("gpu") or {}),
            "source": "nvml (the parent of the measuring processes keeps CUDA uninitialised)",
        }
    return {"kind": "speed", "config": config.to_dict(), "provenance": provenance, "environment": environment}


def _sweep_all(
    config: SpeedConfig, out: Path, nvml: Nvml | None, baseline: float | None, gpu_name: str | None, say: Say
) -> tuple[list[SpeedPoint], list[SpeedSummary]]:
    """Every target in every one of its modes; speed.csv after each point, speed_summary.csv after each model."""
    points: list[SpeedPoint] = []
    summaries: list[SpeedSummary] = []

    def emit(point: SpeedPoint) -> SpeedPoint:
        points.append(point)
        write_csv_atomic(out / "speed.csv", rows(points), columns=list(POINT_COLUMNS))
        say(describe_point(point))
        return point

    jobs = [(target, mode) for target in config.targets for mode in config.modes_of(target)]
    for i, (target, mode) in enumerate(jobs, 1):
        options = json.dumps(dict(target.options), sort_keys=True)
        say(
            f"[{i}/{len(jobs)}] {target.label} ({target.arch}, {target.backbone}, options {options}), "
            f"mode {mode}, process: {config.process}"
        )
        model_points, stop = sweep_target(config, target, nvml, baseline, gpu_name, emit, say, mode)
        summaries.append(summarize(model_points, stop))
        write_csv_atomic(out / "speed_summary.csv", rows(summaries), columns=list(SUMMARY_COLUMNS))
        say(describe_summary(summaries[-1]))
    return points, summaries


def preflight(config: SpeedConfig) -> None:
    """Every error we can see before the first (possibly hour-long) measurement, with what was expected."""
    if not config.targets:
        raise ValueError("a speed sweep needs at least one model (targets is empty)")
    if config.dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {config.dtype!r}")
    kind = config.device_kind
    if kind not in ("cuda", "cpu"):
        raise ValueError(f"device must be cuda, cuda:N, cpu or auto, got {config.device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {config.device!r} requested but torch.cuda.is_available() is False (use --device cpu)"
        )
    for name, value, minimum in (
        ("warmup", config.warmup, 1),
        ("repeats", config.repeats, 1),
        ("max_batch", config.max_batch, 1),
    ):
        if value is None or value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    for target in config.targets:
        for modes in (config.modes, config.modes_of(target)):
            parse_modes(modes)  # ValueError naming the known modes
    if config.max_memory_mib is not None and config.max_memory_mib <= 0:
        raise ValueError(f"max_memory_mib must be positive, got {config.max_memory_mib}")
    problems = [
        f"{t.label}: {problem}"
        for t in config.targets
        if (problem := model_problem(t.arch, t.backbone, t.options)) is not None
    ]
    if problems:
        raise ValueError("cannot sweep:\n  " + "\n  ".join(problems))
