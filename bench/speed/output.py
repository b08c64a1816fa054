"""What a sweep writes and says: its run id, the environment record, the CSV rows, the progress lines and the
results table ``bench speed`` prints; and the finished sweep ``bench run`` may reuse.

A sweep's directory holds speed.csv (one row per point, rewritten after every point), speed_summary.csv (one
row per model and mode), speed_columns.md and config.json (``{"kind": "speed", "config", "provenance",
"environment"}``); ``bench.speed.run.run_sweep`` writes them as it goes.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from bench.provenance import UTC_STAMP_SUFFIX, busy_cpu_load, cpu_model, load_average, utc_stamp
from bench.speed.gpu import Nvml
from bench.speed.memory import MIB, mem_available_bytes, rss_method
from bench.speed.records import SpeedConfig, SpeedPair, SpeedPoint, SpeedSummary
from bench.speed.sessions import sessions_per_job

__all__ = [
    "config_path",
    "default_run_id",
    "describe_point",
    "describe_summary",
    "pairs_table",
    "results_table",
    "reusable_sweep",
    "rows",
    "sweep_environment",
    "sweep_header",
]


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
        if busy_cpu_load((env["load_average"] or [])[:1], os.cpu_count()):
            env["warnings"].append(
                f"load average {env['load_average'][0]:.1f} on {os.cpu_count()} CPUs: other work "
                "shares the cores, so CPU timings (and DRNet / RSIDE fps ratios) are disturbed; the report does "
                "not judge the speed claims on a sweep whose load stayed this high (its memory figures stand)"
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
    follows the RSS of the moment; a sweep written before timing sessions has no ``pairs`` and differs), and the
    same CPU model and core count. Complete: one speed_summary.csv row per model and mode, each over all
    ``pairs`` sessions."""
    config = config.resolved()
    if config.device_kind != "cpu":
        return None
    wanted = _comparable(config.to_dict(), ignore_memory_cap=config.max_memory_mib is None)
    sessions = sessions_per_job(config)
    base = UTC_STAMP_SUFFIX.sub("", default_run_id(config))
    for path in sorted(Path(runs_dir).glob(f"{base}-*"), reverse=True):
        try:
            record = json.loads((path / "config.json").read_text())
            env = record.get("environment") or {}
            same_cpu = (env.get("cpu"), env.get("cpu_count")) == (cpu_model(), os.cpu_count())
            same = _comparable(record["config"], config.max_memory_mib is None) == wanted
            with open(path / "speed_summary.csv", newline="") as f:
                summary = list(csv.DictReader(f))
            got = {(r["name"], r["mode"]): int(r["sessions"]) for r in summary}
            complete = got == sessions
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


def config_path(out_dir: Path) -> Path:
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


def rows(records: Sequence[SpeedPoint | SpeedSummary | SpeedPair]) -> list[dict[str, Any]]:
    """Records as CSV rows: floats to 7 significant digits, NaN as empty."""

    def clean(v: Any) -> Any:
        if isinstance(v, float):
            return None if math.isnan(v) else float(f"{v:.7g}")  # 7 significant digits
        return v

    return [{k: clean(v) for k, v in asdict(r).items()} for r in records]


def sweep_header(config: SpeedConfig, device_label: str | None, out: Path) -> str:
    """The progress line that opens a sweep: models, device, dtype, input, batches, repeats, modes, process."""
    return (
        f"speed: {len(config.targets)} model(s) on {config.device} ({device_label or 'unknown'}), "
        f"{config.dtype}, input {config.input_hw[0]}x{config.input_hw[1]}, batches {_batches_text(config)}, "
        f"warmup {config.warmup}, repeats {config.repeats}, modes {_modes_text(config)}, {config.pairs} timing "
        f"session(s) per model, process {config.process} -> {out}"
    )


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


def describe_point(p: SpeedPoint) -> str:
    """The progress line of one measured point."""
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


def describe_summary(s: SpeedSummary) -> str:
    """The progress line after one model and mode."""
    return (
        f"  -> {s.mode}: fps b1 {_num(s.fps_b1)}, fps max {_num(s.fps_max)} (b {s.fps_max_batch}), largest "
        f"fit {s.max_batch_fit} ({s.sweep_stop}), net {_num(s.net_ram_mib, '.1f')} MiB (loaded "
        f"+{_num(s.net_ram_loaded_mib, '.1f')}); per image: peak b1 {_num(s.mem_b1_mib, '.1f')}, slope "
        f"{_num(s.ram_per_img_mib, '.1f')} ({s.ram_per_img_source}, R^2 {_num(s.ram_per_img_r2, '.4f')}), "
        f"peak b{s.mem_max_b_batch}/b {_num(s.mem_max_b_per_img_mib, '.1f')} MiB"
    )


def results_table(summaries: Sequence[SpeedSummary], pairs: Sequence[SpeedPair] = ()) -> str:
    """The table ``bench speed`` prints at the end: per model and mode, its sessions, fps at batch 1 and at the
    fastest batch, the largest batch that fits, net RAM and memory per image by its three definitions (see
    SpeedSummary, medians over sessions); then ``pairs_table``."""
    lines = [
        f"{'model':<24}{'mode':>10}{'device':>8}{'sess':>5}{'fps (b 1)':>11}{'fps (max b)':>16}{'max b':>7}"
        f"{'net RAM':>12}{'peak b1':>12}{'slope/img':>12}{'peak/b max':>12}  source (R^2)"
    ]
    for s in summaries:
        fps_max = f"{_num(s.fps_max)} (b {s.fps_max_batch})" if s.fps_max is not None else "-"
        r2 = _num(s.ram_per_img_r2, ".3f")
        lines.append(
            f"{s.name:<24}{s.mode:>10}{s.device_kind:>8}{s.sessions:>5}{_num(s.fps_b1):>11}{fps_max:>16}"
            f"{_num(s.max_batch_fit, 'd'):>7}{_num(s.net_ram_mib, '.1f') + ' MiB':>12}"
            f"{_num(s.mem_b1_mib, '.1f') + ' MiB':>12}{_num(s.ram_per_img_mib, '.1f') + ' MiB':>12}"
            f"{_num(s.mem_max_b_per_img_mib, '.1f') + ' MiB':>12}  {s.ram_per_img_source} ({r2})"
        )
    return "\n".join(lines + ([pairs_table(pairs)] if pairs else []))


PAIR_RATIOS = (  # pairs_table: (what, speed_pairs.csv column)
    ("fps b1 DRNet/RSIDE", "speedup_b1"),
    ("memory RSIDE/DRNet: peak b1", "mem_ratio_b1"),
    ("slope", "mem_ratio_slope"),
    ("peak/b", "mem_ratio_max_b"),
)


def pairs_table(pairs: Sequence[SpeedPair]) -> str:
    """Per DRNet / RSIDE couple and mode: each ratio's geometric mean over the pairs of sessions with its 95 %
    interval, as ``bench report`` judges it (``bench.report.ratios``)."""
    from bench.report.ratios import ratio_interval  # numpy only (the report's judge of these ratios)

    groups: dict[tuple[str, str, str], list[SpeedPair]] = {}
    for p in pairs:
        groups.setdefault((p.drnet, p.rside, p.mode), []).append(p)
    lines = ["DRNet vs RSIDE over pairs of timing sessions: geometric mean [95 % CI]"]
    for (drnet, rside, mode), rows in groups.items():
        parts = []
        for what, column in PAIR_RATIOS:
            interval = ratio_interval(getattr(p, column) for p in rows)
            ci = f" [{interval.low:.2f}-{interval.high:.2f}]" if interval.judged else ""
            parts.append(f"{what} {interval.estimate:.2f}x{ci}" if interval.n else f"{what} -")
        n = len(rows)
        lines.append(f"  {drnet} / {rside}, {mode}, {n} pair{'s' if n != 1 else ''}: " + "; ".join(parts))
    if any(len(rows) < 2 for rows in groups.values()):
        lines.append("  (an interval, and a verdict in bench report, needs at least 2 pairs: --pairs)")
    return "\n".join(lines)


def _num(v: float | None, fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)
