"""A whole sweep: ``run_sweep`` checks the config (``preflight``), sets the CPU memory cap and torch's
settings, sweeps every model in every mode in alternating timing sessions (``bench.speed.sessions``,
``bench.speed.sweep``), and writes the files as it goes (``bench.speed.output``): an interrupted sweep keeps
what it measured.
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
from bench.provenance import collect_provenance, load_average
from bench.speed.gpu import Nvml
from bench.speed.memory import MIB, mem_available_bytes, rss_bytes
from bench.speed.output import (
    config_path,
    default_run_id,
    describe_point,
    describe_summary,
    rows,
    sweep_environment,
    sweep_header,
)
from bench.speed.records import (
    DTYPES,
    PAIR_COLUMNS,
    POINT_COLUMNS,
    SUMMARY_COLUMNS,
    SpeedConfig,
    SpeedPair,
    SpeedPoint,
    SpeedResult,
    SpeedSummary,
    columns_markdown,
    parse_modes,
)
from bench.speed.sessions import later_session_target, session_pairs, session_schedule, sessions_per_job
from bench.speed.sweep import nvml_with_baseline, session_summaries, summarize, sweep_target

__all__ = ["CPU_DEFAULT_LIMIT_FRACTION", "preflight", "run_sweep"]

CPU_DEFAULT_LIMIT_FRACTION = 0.4  # no --max-memory-mib on CPU: peak RSS <= RSS now + 40% of MemAvailable

Say = Callable[[str], None]


def run_sweep(
    config: SpeedConfig,
    out_dir: str | Path | None = None,
    progress: Say | None = None,
    overwrite: bool = False,
) -> SpeedResult:
    """Sweep every target of ``config`` in ``config.pairs`` alternating timing sessions each
    (``bench.speed.sessions``); write speed.csv, speed_summary.csv, speed_pairs.csv, speed_columns.md, config.json.

    ``out_dir`` None: ``runs/<default_run_id>`` under the working directory. speed.csv is rewritten
    (atomically) after every point, speed_summary.csv and speed_pairs.csv after every session, so an interrupted
    sweep keeps what it measured. config.json holds ``{"kind": "speed", "config", "provenance", "environment"}``; if the
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
            points, summaries, pairs = _sweep_all(config, out, nvml, baseline, gpu_name, say)
            if nvml is not None:
                environment["end"] = nvml.dynamic_info()
            environment["load_average_end"] = load_average()
            environment["wall_time_s"] = round(time.perf_counter() - start, 1)
            write_json_atomic(record_path, record)
            say(f"wrote {out / 'speed.csv'}, {out / 'speed_summary.csv'} and {out / 'speed_pairs.csv'}")
            return SpeedResult(out, points, summaries, environment, pairs)
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
) -> tuple[list[SpeedPoint], list[SpeedSummary], list[SpeedPair]]:
    """Every session of every (model, mode) in alternating order (``session_schedule``); speed.csv after each
    point, speed_summary.csv and speed_pairs.csv after each session."""
    points: list[SpeedPoint] = []
    runs: dict[tuple[str, str], list[tuple[list[SpeedPoint], str]]] = {}  # job -> (points, stop) per session
    order: dict[tuple[str, str, int], int] = {}
    jobs = [(t.label, mode) for t in config.targets for mode in config.modes_of(t)]
    schedule = session_schedule(config)
    per_job = sessions_per_job(config)
    summaries: list[SpeedSummary] = []
    pairs: list[SpeedPair] = []
    for i, session in enumerate(schedule, 1):
        target, mode, k = session.target, session.mode, session.index
        done = runs.setdefault(session.job, [])
        measured = target if k == 0 else later_session_target(target, done[0][0])

        def emit(point: SpeedPoint, k: int = k) -> SpeedPoint:
            point.session = k
            points.append(point)
            write_csv_atomic(out / "speed.csv", rows(points), columns=list(POINT_COLUMNS))
            say(describe_point(point))
            return point

        options = json.dumps(dict(target.options), sort_keys=True)
        say(
            f"[{i}/{len(schedule)}] {target.label} ({target.arch}, {target.backbone}, options {options}), "
            f"mode {mode}, session {k + 1}/{per_job[session.job]}, process: {config.process}"
        )
        order[(*session.job, k)] = i
        done.append(sweep_target(config, measured, nvml, baseline, gpu_name, emit, say, mode))
        summaries = [_job_summary(runs[job]) for job in jobs if job in runs]
        write_csv_atomic(out / "speed_summary.csv", rows(summaries), columns=list(SUMMARY_COLUMNS))
        per_session = {job: session_summaries(_all_points(r), r[0][1]) for job, r in runs.items()}
        pairs = session_pairs(per_session, order)
        write_csv_atomic(out / "speed_pairs.csv", rows(pairs), columns=list(PAIR_COLUMNS))
        if k == per_job[session.job] - 1:
            say(describe_summary(_job_summary(done)))
    return points, summaries, pairs


def _all_points(runs: list[tuple[list[SpeedPoint], str]]) -> list[SpeedPoint]:
    return [p for session_points, _ in runs for p in session_points]


def _job_summary(runs: list[tuple[list[SpeedPoint], str]]) -> SpeedSummary:
    """One (model, mode)'s speed_summary.csv row over the sessions so far (the sweep's stop from session 0)."""
    return summarize(_all_points(runs), runs[0][1])


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
        ("pairs", config.pairs, 1),
    ):
        if value is None or value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    for target in config.targets:
        for modes in (config.modes, config.modes_of(target)):
            parse_modes(modes)  # ValueError naming the known modes
        if config.pairs_of(target) < 1:
            raise ValueError(f"{target.label}: pairs must be >= 1, got {config.pairs_of(target)}")
    if config.max_memory_mib is not None and config.max_memory_mib <= 0:
        raise ValueError(f"max_memory_mib must be positive, got {config.max_memory_mib}")
    problems = [
        f"{t.label}: {problem}"
        for t in config.targets
        if (problem := model_problem(t.arch, t.backbone, t.options)) is not None
    ]
    if problems:
        raise ValueError("cannot sweep:\n  " + "\n  ".join(problems))
