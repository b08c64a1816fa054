"""One model over batch sizes: doubling until OOM, bisection, per-model summary, fresh subprocesses.

Where a model runs: with ``--isolate`` every point in a fresh ``python -m bench.speed --point <json>``
process (``point_main``); by default on CPU every (model, mode) in one fresh ``python -m bench.speed --model
<json>`` process (``model_main``), so that no model inherits another's heap and the RSS peaks do not depend
on the order of the models; otherwise (CUDA, or ``isolate_models`` off) in the sweep's own process. Children
print each row as one ``SPEEDPOINT {json}`` line (and a model child its stop reason as ``SPEEDSTOP <why>``).
Within a process, ``bench.speed.memory.CpuMemory`` keeps one point's heap out of the next point's RSS peak.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace

import numpy as np
import torch

from bench.paths import child_env
from bench.speed.gpu import Nvml, open_nvml
from bench.speed.measure import ModelSession, SlopeFit, classify, fit_slope
from bench.speed.records import (
    IDENTITY_COLUMNS,
    SLOPE_SOURCES,
    SpeedConfig,
    SpeedPoint,
    SpeedSummary,
    SpeedTarget,
    blank_point,
    peak_above_baseline_mib,
)

__all__ = [
    "POINT_PREFIX",
    "STOP_PREFIX",
    "child_env",
    "model_main",
    "nvml_with_baseline",
    "point_main",
    "session_summaries",
    "summarize",
    "sweep_batches",
    "sweep_target",
]

POINT_PREFIX = "SPEEDPOINT "  # the line a child prints each of its rows on
STOP_PREFIX = "SPEEDSTOP "  # the line a model child prints why its sweep stopped on


def sweep_batches(
    measure: Callable[[int, str], SpeedPoint], batch_sizes: Sequence[int] | None, max_batch: int
) -> tuple[list[SpeedPoint], str]:
    """Measure one model over batch sizes; returns the points and why the sweep stopped.

    ``batch_sizes`` None: 1, 2, 4, ... (capped at ``max_batch``) until the first OOM, then bisection between
    the last batch that fit and the first that did not. A list: each size in order, stopping at the first
    OOM or error. Stops: "oom", "max_batch", "list_end", "error".
    """
    points: list[SpeedPoint] = []
    if batch_sizes is not None:
        for b in batch_sizes:
            points.append(measure(b, "list"))
            if points[-1].status != "ok":
                return points, points[-1].status
        return points, "list_end"
    batch, last_ok = 1, 0
    while True:
        points.append(measure(batch, "double"))
        if points[-1].status == "error":
            return points, "error"
        if points[-1].status == "oom":
            break
        last_ok = batch
        if batch >= max_batch:
            return points, "max_batch"
        batch = min(2 * batch, max_batch)
    lo, hi = last_ok, batch
    while lo >= 1 and hi - lo > 1:
        mid = (lo + hi) // 2
        points.append(measure(mid, "bisect"))
        if points[-1].status == "ok":
            lo = mid
        elif points[-1].status == "oom":
            hi = mid
        else:
            return points, "error"
    return points, "oom"


# speed_summary.csv columns that are the median over sessions of each session's own value
_SESSION_MEDIANS = (
    "fps_b1",
    "fps_b1_iqr",
    "net_ram_mib",
    "net_ram_allocated_mib",
    "net_ram_loaded_mib",
    "mem_b1_mib",
    "ram_per_img_mib",
    "ram_per_img_r2",
    "mem_max_b_per_img_mib",
    *(f"ram_per_img_{source}_{part}" for source in SLOPE_SOURCES for part in ("mib", "r2")),
)


def summarize(points: Sequence[SpeedPoint], sweep_stop: str) -> SpeedSummary:
    """One model's Table 2 row from its points (all of one model and mode), over its timing sessions.

    One session: that session's row. Several: each number the median over the sessions of each session's own
    (``session_summaries``); fps_max the highest per-batch median over sessions; the largest batch that fits and
    why the sweep stopped (``sweep_stop``) from session 0, which searched for them; point counts over all."""
    per_session = session_summaries(points, sweep_stop)
    if len(per_session) == 1:
        return per_session[0]
    medians = {name: _median([getattr(s, name) for s in per_session]) for name in _SESSION_MEDIANS}
    b1 = [s.fps_b1 for s in per_session if s.fps_b1 is not None]
    ok = [p for p in points if p.status == "ok"]
    by_batch: dict[int, list[float]] = {}
    for p in ok:
        by_batch.setdefault(p.batch, []).append(p.fps_median)
    best = max(by_batch, key=lambda b: float(np.median(by_batch[b])), default=None)
    spreads = [s.rss_peak_spread_max_mib for s in per_session if s.rss_peak_spread_max_mib is not None]
    return replace(
        per_session[0],
        **medians,
        sessions=len(per_session),
        fps_b1_min=min(b1) if b1 else None,
        fps_b1_max=max(b1) if b1 else None,
        fps_max=float(np.median(by_batch[best])) if best is not None else None,
        fps_max_batch=best,
        rss_peak_spread_max_mib=max(spreads) if spreads else None,
        n_points=len(points),
        n_ok=len(ok),
        n_oom=sum(p.status == "oom" for p in points),
        n_error=sum(p.status == "error" for p in points),
    )


def session_summaries(points: Sequence[SpeedPoint], sweep_stop: str) -> list[SpeedSummary]:
    """One summary per timing session of one model and mode (speed.csv session), session 0 first; each from
    that session's points alone (speed_pairs.csv takes one ratio per pair of sessions from them)."""
    sessions = sorted({p.session for p in points})
    return [_summarize_session([p for p in points if p.session == k], sweep_stop) for k in sessions]


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.median(present)) if present else None


def _summarize_session(points: Sequence[SpeedPoint], sweep_stop: str) -> SpeedSummary:
    """One session's Table 2 row from its points."""
    first = points[0]
    ok = [p for p in points if p.status == "ok"]
    b1 = next((p for p in ok if p.batch == 1), None)
    best = max(ok, key=lambda p: p.fps_median) if ok else None
    fits: dict[str, SlopeFit | None] = {}
    for source, column in SLOPE_SOURCES.items():
        xy = [(p.batch, getattr(p, column)) for p in ok if getattr(p, column) is not None]
        fits[source] = fit_slope([b for b, _ in xy], [m for _, m in xy]) if xy else None
    if first.device_kind == "cuda":
        source = "nvml" if fits["nvml"] is not None else "reserved"
    else:
        source = "rss"
    main = fits[source]
    if ok:
        max_fit: int | None = max(p.batch for p in ok)
    else:
        max_fit = 0 if sweep_stop == "oom" else None
    extra = {}
    for s, fit in fits.items():
        extra[f"ram_per_img_{s}_mib"] = fit.slope if fit else None
        extra[f"ram_per_img_{s}_r2"] = fit.r2 if fit else None
    spreads = [p.rss_peak_spread_mib for p in ok if p.rss_peak_spread_mib is not None]
    net = next((p for p in points if p.net_ram_mib is not None), None)
    largest = max(ok, key=lambda p: p.batch) if ok else None
    above_b1 = _above_baseline(b1)
    above_max = _above_baseline(largest)
    identity = {name: getattr(first, name) for name in IDENTITY_COLUMNS}
    identity["device_name"] = next((p.device_name for p in points if p.device_name), None)
    return SpeedSummary(
        **identity,
        sessions=1,
        fps_b1=b1.fps_median if b1 else None,
        fps_b1_iqr=b1.fps_iqr if b1 else None,
        fps_b1_min=b1.fps_median if b1 else None,
        fps_b1_max=b1.fps_median if b1 else None,
        fps_max=best.fps_median if best else None,
        fps_max_batch=best.batch if best else None,
        max_batch_fit=max_fit,
        sweep_stop=sweep_stop,
        net_ram_mib=net.net_ram_mib if net else None,
        net_ram_allocated_mib=net.net_ram_allocated_mib if net else None,
        net_ram_loaded_mib=net.net_ram_loaded_mib if net else None,
        mem_b1_mib=above_b1,
        ram_per_img_mib=main.slope if main else None,
        ram_per_img_r2=main.r2 if main else None,
        mem_max_b_per_img_mib=above_max / largest.batch if above_max is not None and largest else None,
        mem_max_b_batch=largest.batch if largest else None,
        ram_per_img_source=source,
        ram_per_img_n=main.n if main else 0,
        n_points=len(points),
        n_ok=len(ok),
        n_oom=sum(p.status == "oom" for p in points),
        n_error=sum(p.status == "error" for p in points),
        rss_peak_spread_max_mib=max(spreads) if spreads else None,
        **extra,
    )


def _above_baseline(point: SpeedPoint | None) -> float | None:
    if point is None:
        return None
    if point.peak_above_baseline_mib is not None:
        return point.peak_above_baseline_mib
    return peak_above_baseline_mib(point)  # rows written before the column existed


def sweep_target(
    config: SpeedConfig,
    target: SpeedTarget,
    nvml: Nvml | None,
    baseline: int | None,
    gpu_name: str | None,
    emit: Callable[[SpeedPoint], SpeedPoint],
    say: Callable[[str], None],
    mode: str = "inference",
) -> tuple[list[SpeedPoint], str]:
    """One model's sweep in one mode: in this process, one subprocess per point (``isolate``) or one fresh
    subprocess for the whole model (``isolate_models``); every point goes through ``emit``."""
    batch_sizes = config.batch_sizes_of(target)
    if config.isolate:
        return sweep_batches(
            lambda b, phase: emit(measure_isolated(config, target, b, phase, gpu_name, mode)),
            batch_sizes,
            config.max_batch,
        )
    if config.isolate_models:
        return sweep_in_child(config, target, mode, gpu_name, emit)
    return sweep_here(config, target, nvml, baseline, gpu_name, emit, say, mode)


def sweep_here(
    config: SpeedConfig,
    target: SpeedTarget,
    nvml: Nvml | None,
    baseline: int | None,
    gpu_name: str | None,
    emit: Callable[[SpeedPoint], SpeedPoint],
    say: Callable[[str], None],
    mode: str = "inference",
) -> tuple[list[SpeedPoint], str]:
    """One model's sweep in one mode in this process, one ``ModelSession`` for all its points."""
    batch_sizes = config.batch_sizes_of(target)
    try:
        session = ModelSession(config, target, nvml, baseline, mode)
    except Exception as exc:  # noqa: BLE001 - a model that cannot be built (or moved to the GPU) is recorded
        failed = classify(exc)  # every point fails alike: the sweep records its first and stops
        # (an empty batch_sizes tuple sweeps like auto here, as this path always did)
        return sweep_batches(
            lambda b, phase: emit(blank_point(config, target, b, phase, gpu_name, *failed, mode=mode)),
            batch_sizes or None,
            config.max_batch,
        )
    say(
        f"  net RAM {session.net_ram_mib:.1f} MiB (weights and buffers, {config.dtype}); model loaded: "
        f"+{session.net_ram_loaded_mib or 0:.1f} MiB; mode {mode}"
    )
    try:
        return sweep_batches(lambda b, phase: emit(session.measure(b, phase)), batch_sizes, config.max_batch)
    finally:
        session.close()


def _child_failure(returncode: int, stderr: str) -> str:
    why = f"killed by signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
    if returncode == -9:
        why += " (possibly the kernel's OOM killer)"
    tail = " | ".join(stderr.strip().splitlines()[-3:])
    return f"{why}; {tail}"


def measure_isolated(
    config: SpeedConfig, target: SpeedTarget, batch: int, phase: str, device_name: str | None, mode: str = "inference"
) -> SpeedPoint:
    """One point in a fresh ``python -m bench.speed --point`` process; a crash becomes an error row."""
    spec = {"config": config.to_dict(), "target": asdict(target), "batch": batch, "phase": phase, "mode": mode}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.speed", "--point", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=child_env(),
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(POINT_PREFIX):
            return SpeedPoint(**json.loads(line[len(POINT_PREFIX) :]))
    return blank_point(
        config,
        target,
        batch,
        phase,
        device_name,
        "error",
        f"isolated point process failed: {_child_failure(proc.returncode, proc.stderr)}"[:400],
        mode=mode,
    )


def sweep_in_child(
    config: SpeedConfig,
    target: SpeedTarget,
    mode: str,
    device_name: str | None,
    emit: Callable[[SpeedPoint], SpeedPoint],
) -> tuple[list[SpeedPoint], str]:
    """One model's sweep in one mode in a fresh ``python -m bench.speed --model`` process, its rows emitted as
    they arrive; a child that dies leaves an error row for the point it was measuring."""
    spec = {"config": config.to_dict(), "target": asdict(target), "mode": mode}
    points: list[SpeedPoint] = []
    stop = ""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.speed", "--model", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=child_env(),
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(POINT_PREFIX):
                points.append(emit(SpeedPoint(**json.loads(line[len(POINT_PREFIX) :]))))
            elif line.startswith(STOP_PREFIX):
                stop = line[len(STOP_PREFIX) :].strip()
        returncode = proc.wait()
        err.seek(0)
        stderr = err.read()
    if stop:
        return points, stop
    batch, phase = _next_point(config.batch_sizes_of(target), points)
    note = f"model process failed: {_child_failure(returncode, stderr)}"[:400]
    points.append(emit(blank_point(config, target, batch, phase, device_name, "error", note, mode=mode)))
    return points, "error"


def _next_point(batch_sizes: Sequence[int] | None, done: Sequence[SpeedPoint]) -> tuple[int, str]:
    """The (batch, phase) a model child was most likely measuring when it died (for its error row)."""
    if batch_sizes:
        seen = {p.batch for p in done}
        return next((b for b in batch_sizes if b not in seen), batch_sizes[-1]), "list"
    return (2 * done[-1].batch if done else 1), "double"


def nvml_with_baseline(config: SpeedConfig) -> tuple[Nvml | None, str, int | None]:
    """NVML for the config's GPU, a note on it, and the device memory used now (bytes; the nvml_used baseline).

    Call it before this process creates its CUDA context, so that nvml_used includes the context.
    """
    if config.device_kind != "cuda":
        return None, "NVML not used on cpu", None
    nvml, note = open_nvml(torch.device(config.device).index or 0)
    if nvml is None:
        return None, note, None
    if torch.cuda.is_initialized():
        note += "; CUDA context existed before the baseline: nvml_used_mib excludes it"
    return nvml, note, nvml.used_bytes()


def _child_setup(spec_json: str) -> tuple[dict, SpeedConfig, SpeedTarget, Nvml | None, int | None]:
    """A child's spec, config and target; threads and cuDNN set; the NVML baseline read before CUDA exists."""
    spec = json.loads(spec_json)
    config = SpeedConfig.from_dict(spec["config"])
    target = SpeedTarget.from_dict(spec["target"])
    if config.threads:
        torch.set_num_threads(config.threads)
    nvml, _, baseline = nvml_with_baseline(config)
    if config.device_kind == "cuda":
        torch.backends.cudnn.benchmark = config.cudnn_benchmark
    return spec, config, target, nvml, baseline


def point_main(spec_json: str) -> int:
    """Child side of --isolate: read the NVML baseline before CUDA exists, measure one point, print it."""
    spec, config, target, nvml, baseline = _child_setup(spec_json)
    mode = spec.get("mode", "inference")
    try:
        session = ModelSession(config, target, nvml, baseline, mode)
    except Exception as exc:  # noqa: BLE001
        point = blank_point(config, target, spec["batch"], spec["phase"], None, *classify(exc), mode=mode)
    else:
        point = session.measure(spec["batch"], spec["phase"])
    print(POINT_PREFIX + json.dumps(asdict(point)), flush=True)
    return 0


def model_main(spec_json: str) -> int:
    """Child side of a per-model process: one model's sweep in one mode, each row printed as it is measured."""
    spec, config, target, nvml, baseline = _child_setup(spec_json)

    def emit(point: SpeedPoint) -> SpeedPoint:
        print(POINT_PREFIX + json.dumps(asdict(point)), flush=True)
        return point

    _, stop = sweep_here(config, target, nvml, baseline, None, emit, lambda _msg: None, spec.get("mode", "inference"))
    print(STOP_PREFIX + stop, flush=True)
    return 0
