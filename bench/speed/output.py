"""A whole sweep: ``run_sweep`` (preflight, every model, progress lines), the environment record, the files.

Writes speed.csv (one row per point, rewritten after every point), speed_summary.csv (one row per model),
speed_columns.md and config.json (``{"kind": "speed", "config", "provenance", "environment"}``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from bench.config import model_problem
from bench.io import write_csv_atomic, write_json_atomic, write_text_atomic
from bench.paths import DEFAULT_RUNS_DIR
from bench.provenance import UTC_STAMP_SUFFIX, collect_provenance, cpu_model, utc_stamp
from bench.speed.gpu import Nvml
from bench.speed.memory import MIB, mem_available_bytes, rss_bytes, rss_method
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

__all__ = ["CPU_DEFAULT_LIMIT_FRACTION", "default_run_id", "preflight", "run_sweep", "sweep_environment"]

CPU_DEFAULT_LIMIT_FRACTION = 0.4  # no --max-memory-mib on CPU: peak RSS <= RSS now + 40% of MemAvailable
BUSY_LOAD_PER_CPU = 1.5  # a CPU sweep warns above this 1-minute load average per core (its own work: <= 1)


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (os.getloadavg), rounded; None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def run_sweep(
    config: SpeedConfig,
    out_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> SpeedResult:
    """Sweep every target of ``config``; write speed.csv, speed_summary.csv, speed_columns.md, config.json.

    ``out_dir`` None: ``runs/<default_run_id>`` under the working directory. speed.csv is rewritten
    (atomically) after every point and speed_summary.csv after every model, so an interrupted sweep keeps what
    it measured. config.json holds
    ``{"kind": "speed", "config", "provenance", "environment"}``; if the directory already has another
    producer's config.json (a training run), ours goes to speed_config.json instead.
    """
    say = progress or (lambda _msg: None)
    config = config.resolved()
    preflight(config)
    kind = config.device_kind
    nvml, nvml_note, baseline = nvml_with_baseline(config)  # first: before this process touches CUDA
    notes: list[str] = []
    if kind == "cpu" and config.max_memory_mib is None:
        available = mem_available_bytes()
        if available is not None:
            limit = (rss_bytes() + CPU_DEFAULT_LIMIT_FRACTION * available) / MIB
            config = replace(config, max_memory_mib=round(limit, 1))
            notes.append(
                f"CPU memory cap defaulted to current RSS + {CPU_DEFAULT_LIMIT_FRACTION:.0%} of "
                f"MemAvailable = {limit:.0f} MiB (set --max-memory-mib to change)"
            )

    gpu_name = nvml.name() if nvml is not None else None
    out = Path(out_dir) if out_dir is not None else DEFAULT_RUNS_DIR / default_run_id(config, gpu_name)
    for existing in ("speed.csv", "speed_summary.csv"):
        if (out / existing).exists() and not overwrite:
            raise FileExistsError(f"{out / existing} exists; choose another --out or pass --overwrite")
    config_path = _config_path(out)

    saved_threads, saved_benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.backends.cudnn.benchmark = config.cudnn_benchmark
    try:
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
        record = {"kind": "speed", "config": config.to_dict(), "provenance": provenance, "environment": environment}
        write_json_atomic(config_path, record)
        write_text_atomic(out / "speed_columns.md", columns_markdown())
        for warning in environment["warnings"] + notes:
            say(f"note: {warning}")
        device_label = gpu_name if kind == "cuda" else environment.get("cpu")
        batches = _batches_text(config)
        say(
            f"speed: {len(config.targets)} model(s) on {config.device} ({device_label or 'unknown'}), "
            f"{config.dtype}, input {config.input_hw[0]}x{config.input_hw[1]}, batches {batches}, "
            f"warmup {config.warmup}, repeats {config.repeats}, modes {_modes_text(config)}, process "
            f"{config.process} "
            f"-> {out}"
        )
        say(f"{nvml_note}")

        points: list[SpeedPoint] = []
        summaries: list[SpeedSummary] = []

        def emit(point: SpeedPoint) -> SpeedPoint:
            points.append(point)
            write_csv_atomic(out / "speed.csv", _rows(points), columns=list(POINT_COLUMNS))
            say(_describe_point(point))
            return point

        start = time.perf_counter()
        jobs = [(target, mode) for target in config.targets for mode in config.modes_of(target)]
        for i, (target, mode) in enumerate(jobs, 1):
            options = json.dumps(dict(target.options), sort_keys=True)
            say(
                f"[{i}/{len(jobs)}] {target.label} ({target.arch}, {target.backbone}, options {options}), "
                f"mode {mode}, process: {config.process}"
            )
            model_points, stop = sweep_target(config, target, nvml, baseline, gpu_name, emit, say, mode)
            summaries.append(summarize(model_points, stop))
            write_csv_atomic(out / "speed_summary.csv", _rows(summaries), columns=list(SUMMARY_COLUMNS))
            say(_describe_summary(summaries[-1]))

        if nvml is not None:
            environment["end"] = nvml.dynamic_info()
        environment["load_average_end"] = load_average()
        environment["wall_time_s"] = round(time.perf_counter() - start, 1)
        write_json_atomic(config_path, record)
        say(f"wrote {out / 'speed.csv'} and {out / 'speed_summary.csv'}")
        return SpeedResult(out, points, summaries, environment)
    finally:
        torch.set_num_threads(saved_threads)
        torch.backends.cudnn.benchmark = saved_benchmark
        if nvml is not None:
            nvml.close()


def _tf32_and_cudnn(kind: str) -> dict[str, Any]:
    if kind != "cuda":
        na = "N/A (cpu)"
        return {
            "cudnn_version": na,
            "cudnn_benchmark": na,
            "cudnn_deterministic": na,
            "tf32_matmul": na,
            "tf32_cudnn": na,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
        }
    return {
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def sweep_environment(config: SpeedConfig, nvml: Nvml | None, nvml_note: str) -> dict[str, Any]:
    """The machine state a sweep ran in (start); ``run_sweep`` adds the end state. Never initialises CUDA."""
    kind = config.device_kind
    env: dict[str, Any] = {
        "device_kind": kind,
        "device": config.device,
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        **_tf32_and_cudnn(kind),
        "nvml": nvml_note,
        "warnings": [],
    }
    if kind == "cpu":
        available = mem_available_bytes()
        env.update(
            cpu=cpu_model(),
            cpu_count=os.cpu_count(),
            mem_available_mib=round(available / MIB, 1) if available else None,
            rss_method=rss_method(),
            load_average=load_average(),
        )
        busy = env["load_average"] and env["load_average"][0] > BUSY_LOAD_PER_CPU * (os.cpu_count() or 1)
        if busy:
            env["warnings"].append(
                f"load average {env['load_average'][0]:.1f} on {os.cpu_count()} CPUs: other work "
                "shares the cores, so CPU timings (and DRNet / RSIDE fps ratios) are disturbed"
            )
        return env
    if nvml is not None:
        env["gpu"] = nvml.static_info()
        env["start"] = nvml.dynamic_info()
        others = nvml.other_processes()
        env["other_processes"] = others
        if others:
            pids = ", ".join(str(p["pid"]) for p in others)
            env["warnings"].append(
                f"{len(others)} other process(es) on the GPU (pids {pids}): timings and NVML memory may be disturbed"
            )
    return env


def reusable_sweep(config: SpeedConfig, runs_dir: str | Path) -> Path | None:
    """The newest complete sweep under ``runs_dir`` of exactly this setup on this CPU, for ``bench run`` to reuse
    when a suite is run again; None if there is none (or on CUDA, whose GPU identity needs NVML: re-measured).

    Same setup: every setting equal (the CPU memory cap aside when ``config`` leaves it to the default, which
    follows the RSS of the moment), and the same CPU model and core count. Complete: one speed_summary.csv row
    per model and mode."""
    config = config.resolved()
    if config.device_kind != "cpu":
        return None
    wanted = _comparable(config.to_dict(), ignore_memory_cap=config.max_memory_mib is None)
    jobs = sum(len(config.modes_of(t)) for t in config.targets)
    base = UTC_STAMP_SUFFIX.sub("", default_run_id(config))
    for path in sorted(Path(runs_dir).glob(f"{base}-*"), reverse=True):
        try:
            record = json.loads((path / "config.json").read_text())
            env = record.get("environment") or {}
            same_cpu = (env.get("cpu"), env.get("cpu_count")) == (cpu_model(), os.cpu_count())
            same = _comparable(record["config"], config.max_memory_mib is None) == wanted
            with open(path / "speed_summary.csv", newline="") as f:
                complete = sum(1 for _ in csv.DictReader(f)) == jobs
        except (OSError, ValueError, KeyError, TypeError, csv.Error):
            continue
        if same and same_cpu and complete:
            return path
    return None


def _comparable(config: dict[str, Any], ignore_memory_cap: bool) -> dict[str, Any]:
    """A sweep config as JSON would hold it (tuples as lists), without the memory cap when it was a default."""
    plain = json.loads(json.dumps(config))
    if ignore_memory_cap:
        plain.pop("max_memory_mib", None)
    return plain


def default_run_id(config: SpeedConfig, gpu_name: str | None = None, now: datetime | None = None) -> str:
    """The run id names the setup like timm's benchmark files.

    speed-<suite|arch-backbone>-<cpu|cuda-gpu>-<dtype>-<nchw|nhwc>[-compile]-pt<torch>-<UTC time>
    """
    c = config.resolved()
    if c.suite:
        what = c.suite
    elif 1 <= len(c.targets) <= 3:
        what = "-".join(t.label for t in c.targets)
    else:
        what = f"{len(c.targets)}models"
    kind = c.device_kind
    device = kind if kind == "cpu" or not gpu_name else f"cuda-{_slug(gpu_name)}"
    torch_tag = "pt" + "".join(re.findall(r"\d+", torch.__version__.split("+")[0])[:3])
    stamp = utc_stamp(now)
    parts = ["speed", _slug(what), device, c.dtype, "nhwc" if c.channels_last else "nchw"]
    parts += ["compile"] if c.compile else []
    return "-".join(parts + [torch_tag, stamp])


def _slug(text: str) -> str:
    text = re.sub(r"^nvidia\s+", "", text.strip(), flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


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


def _config_path(out_dir: Path) -> Path:
    """config.json, unless the directory already holds another producer's (a training run's) config.json."""
    path = out_dir / "config.json"
    if path.exists():
        try:
            if json.loads(path.read_text()).get("kind") == "speed":
                return path
        except (OSError, ValueError):
            pass
        return out_dir / "speed_config.json"
    return path


def _rows(records: Sequence[SpeedPoint | SpeedSummary]) -> list[dict[str, Any]]:
    def clean(v: Any) -> Any:
        if isinstance(v, float):
            return None if math.isnan(v) else float(f"{v:.7g}")  # 7 significant digits
        return v

    return [{k: clean(v) for k, v in asdict(r).items()} for r in records]


def _batches_text(config: SpeedConfig) -> str:
    """The batch sizes of a sweep for its header line: the config's, or each model's own (suite entries)."""

    def text(sizes: tuple[int, ...] | None) -> str:
        return ",".join(map(str, sizes)) if sizes else f"auto (max {config.max_batch})"

    own = {text(config.batch_sizes_of(t)) for t in config.targets}
    return (
        own.pop()
        if len(own) == 1
        else "per model: " + "; ".join(f"{t.label} {text(config.batch_sizes_of(t))}" for t in config.targets)
    )


def _modes_text(config: SpeedConfig) -> str:
    own = {",".join(config.modes_of(t)) for t in config.targets}
    return (
        own.pop()
        if len(own) == 1
        else "per model: " + "; ".join(f"{t.label} {','.join(config.modes_of(t))}" for t in config.targets)
    )


def _describe_point(p: SpeedPoint) -> str:
    head = f"  b={p.batch:<5} {p.phase:<6} {p.status:<5}"
    if p.status != "ok":
        return f"{head} {p.note}"
    if p.device_kind == "cuda":
        nvml = f" / nvml {p.nvml_used_mib:.0f}" if p.nvml_used_mib is not None else ""
        memory = f"allocated {p.peak_allocated_mib:.0f} / reserved {p.peak_reserved_mib:.0f}{nvml} MiB"
    else:
        memory = f"rss peak {p.rss_peak_mib:.0f} MiB"
    return (
        f"{head} {p.fps_median:9.3f} img/s (IQR {p.fps_iqr:.3f}, n={p.n_repeats}, {p.time_median_ms:.1f} ms)  {memory}"
    )


def _describe_summary(s: SpeedSummary) -> str:
    def num(v: float | None, fmt: str = ".2f") -> str:
        return "-" if v is None else format(v, fmt)

    return (
        f"  -> {s.mode}: fps b1 {num(s.fps_b1)}, fps max {num(s.fps_max)} (b {s.fps_max_batch}), largest "
        f"fit {s.max_batch_fit} ({s.sweep_stop}), net {num(s.net_ram_mib, '.1f')} MiB (loaded "
        f"+{num(s.net_ram_loaded_mib, '.1f')}); per image: peak b1 {num(s.mem_b1_mib, '.1f')}, slope "
        f"{num(s.ram_per_img_mib, '.1f')} ({s.ram_per_img_source}, R^2 {num(s.ram_per_img_r2, '.4f')}), "
        f"peak b{s.mem_max_b_batch}/b {num(s.mem_max_b_per_img_mib, '.1f')} MiB"
    )
