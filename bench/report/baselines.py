"""Regression baselines: metrics of small deterministic runs, checked in with explicit tolerances.

File format (JSON, ``tests/baselines/regression.json``)::

    {"format": 1, "suite": "regression", "command": "...how it was generated...",
     "generated": {"created_utc": ..., "commit": ..., "torch": ..., "device": ..., "threads": ...},
     "tolerance_rule": "|measured - value| <= abs + rel * |value|",
     "runs": {"<run_id>": {"n_frames": 8,
                           "metrics": {"rside.rmse": {"value": 0.81, "abs": 1e-05, "rel": 0.001}, ...}}}}

Metrics are ``<reduction>.<metric>`` from each run's metrics.json (what the runner wrote, not a recomputation),
for every reduction and every metric of ``bench.metrics.DEPTH_METRICS``. Each entry carries its own
tolerance, so one noisy metric can be loosened by hand without touching the rest; ``write_baselines`` keeps
hand-edited tolerances when it refreshes values. A run in the file but not in runs/ fails the check; a run in
runs/ but not in the file is reported and ignored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.io import write_json_atomic
from bench.metrics import DEPTH_METRICS, REDUCTIONS
from bench.provenance import utc_now
from bench.report.runs import EvalRun

__all__ = [
    "BASELINE_FORMAT",
    "DEFAULT_ABS_TOL",
    "DEFAULT_REL_TOL",
    "DELTA_ABS_TOL",
    "BaselineCheck",
    "BaselineError",
    "MetricCheck",
    "baseline_suite",
    "check_baselines",
    "default_tolerance",
    "write_baselines",
]

BASELINE_FORMAT = 1
# Default tolerances. The regression runs are bitwise repeatable on one machine with a fixed thread count, but
# a few training steps amplify float reassociation: running them with 1 instead of 2 CPU threads moved RMSE,
# AbsRel and SqRel by up to 1.4e-3 (relative) and the delta fractions by up to 1.6e-3 (absolute: a few pixels
# crossing a threshold). The defaults are about twice that, so CPU/BLAS differences pass and a change of
# model, loss, data or metric code (typically percent-level) fails. CI pins the thread count to 1.
DEFAULT_REL_TOL = 3e-3  # continuous metrics (rmse, abs_rel, sq_rel, log10, rmse_log)
DEFAULT_ABS_TOL = 1e-5
DELTA_ABS_TOL = 3e-3  # delta1..3 are fractions of pixels: an absolute tolerance


class BaselineError(ValueError):
    """The baseline file is missing or malformed (message names the file and the field)."""


@dataclass(frozen=True)
class MetricCheck:
    run_id: str
    metric: str
    baseline: float | None
    measured: float | None
    abs_tol: float
    rel_tol: float
    status: str  # ok | FAIL | missing run | missing metric | frames differ

    @property
    def tolerance(self) -> float:
        return self.abs_tol + self.rel_tol * abs(self.baseline or 0.0)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class BaselineCheck:
    path: Path
    checks: list[MetricCheck] = field(default_factory=list)
    extra_runs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def format(self, verbose: bool = False) -> str:
        """A readable report: failures as a table (baseline, measured, difference, tolerance)."""
        bad = [c for c in self.checks if not c.ok]
        shown = self.checks if verbose else bad
        n_runs = len({c.run_id for c in self.checks})
        head = (
            f"baseline check {'PASSED' if self.passed else 'FAILED'}: "
            f"{len(self.checks) - len(bad)}/{len(self.checks)} metrics of {n_runs} run(s) within tolerance "
            f"({self.path})"
        )
        lines = [head]
        if not self.checks:
            lines.append("  the baseline file lists no metric to check")
        if shown:
            w = max(len(c.run_id) for c in shown)
            lines.append(
                f"  {'run':<{w}}  {'metric':<16}{'baseline':>13}{'measured':>13}{'diff':>13}{'tolerance':>12}  status"
            )
            for c in shown:
                diff = (c.measured - c.baseline) if _finite(c.measured) and _finite(c.baseline) else math.nan
                lines.append(
                    f"  {c.run_id:<{w}}  {c.metric:<16}{_fmt(c.baseline):>13}{_fmt(c.measured):>13}"
                    f"{_fmt(diff, signed=True):>13}{'±' + _fmt(c.tolerance):>12}  {c.status}"
                )
        if self.extra_runs:
            lines.append(f"  not in the baseline file (ignored): {', '.join(self.extra_runs)}")
        lines += [f"  note: {n}" for n in self.notes]
        if not self.passed and self.checks:
            lines.append(
                "  if the change is intended, regenerate the file with the command recorded in it "
                "and commit it with the change that moved the metrics"
            )
        return "\n".join(lines)


def check_baselines(runs: Iterable[EvalRun], path: str | Path) -> BaselineCheck:
    """Compare the runs' metrics.json with the baseline file."""
    path = Path(path)
    spec = _read(path)
    by_id = {r.run_id: r for r in runs}
    result = BaselineCheck(path=path)
    for run_id, entry in spec["runs"].items():
        run = by_id.get(run_id)
        metrics = entry.get("metrics") or {}
        if run is None:
            result.checks += [
                MetricCheck(run_id, m, _value(e), None, e.get("abs", 0.0), e.get("rel", 0.0), "missing run")
                for m, e in metrics.items()
            ]
            continue
        if "n_frames" in entry and int(entry["n_frames"]) != int(run.metrics["n_frames"]):
            result.checks.append(
                MetricCheck(
                    run_id,
                    "n_frames",
                    float(entry["n_frames"]),
                    float(run.metrics["n_frames"]),
                    0.0,
                    0.0,
                    "frames differ",
                )
            )
        for name, e in metrics.items():
            base = _value(e)
            abs_tol, rel_tol = float(e.get("abs", DEFAULT_ABS_TOL)), float(e.get("rel", DEFAULT_REL_TOL))
            measured = _lookup(run.metrics, name)
            if measured is None:
                status = "missing metric"
            elif not _finite(base) or not _finite(measured):
                status = "ok" if (_isnan(base) and _isnan(measured)) else "FAIL"
            else:
                status = "ok" if abs(measured - base) <= abs_tol + rel_tol * abs(base) else "FAIL"
            result.checks.append(MetricCheck(run_id, name, base, measured, abs_tol, rel_tol, status))
    result.extra_runs = sorted(set(by_id) - set(spec["runs"]))
    want = (spec.get("generated") or {}).get("threads")
    used = sorted({t for r in by_id.values() if (t := _threads(r)) is not None})
    if want is not None and used and used != [want]:
        result.notes.append(
            f"the runs used {'/'.join(map(str, used))} CPU thread(s), the baseline {want}: thread "
            f"count changes float summation order (run with OMP_NUM_THREADS={want})"
        )
    return result


def write_baselines(runs: Iterable[EvalRun], path: str | Path, suite: str | None, command: str) -> Path:
    """Write (or refresh) the baseline file from the runs; per-metric tolerances already in it are kept."""
    path = Path(path)
    runs = sorted(runs, key=lambda r: r.run_id)
    if not runs:
        raise BaselineError(f"no evaluated runs{f' of suite {suite!r}' if suite else ''} to write to {path}")
    old = _read(path)["runs"] if path.is_file() else {}
    entries = {}
    for run in runs:
        kept = (old.get(run.run_id) or {}).get("metrics") or {}
        metrics = {}
        for red in REDUCTIONS:
            for m in DEPTH_METRICS:
                name = f"{red}.{m}"
                value = _lookup(run.metrics, name)
                if value is None:
                    continue
                prev = kept.get(name) or {}
                abs_tol, rel_tol = default_tolerance(m)
                metrics[name] = {"value": value, "abs": prev.get("abs", abs_tol), "rel": prev.get("rel", rel_tol)}
        entries[run.run_id] = {"n_frames": int(run.metrics["n_frames"]), "metrics": metrics}
    first = runs[0].provenance
    doc = {
        "format": BASELINE_FORMAT,
        "suite": suite,
        "command": command,
        "tolerance_rule": "|measured - value| <= abs + rel * |value|",
        "generated": {
            "created_utc": utc_now(),
            "commit": (first.get("git") or {}).get("commit"),
            "torch": (first.get("versions") or {}).get("torch"),
            "device": (first.get("device") or {}).get("name"),
            "threads": (first.get("device") or {}).get("threads"),
        },
        "runs": entries,
    }
    return write_json_atomic(path, doc)


def default_tolerance(metric: str) -> tuple[float, float]:
    """(abs, rel) tolerance written for a new metric entry; see DEFAULT_REL_TOL."""
    return (DELTA_ABS_TOL, 0.0) if metric.startswith("delta") else (DEFAULT_ABS_TOL, DEFAULT_REL_TOL)


def baseline_suite(path: str | Path) -> str | None:
    """The suite a baseline file was generated from (None when it does not say)."""
    return _read(Path(path)).get("suite")


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise BaselineError(
            f"{path}: baseline file not found (generate it with `bench report --write-baselines --baselines {path}`)"
        ) from err
    except (OSError, json.JSONDecodeError) as err:
        raise BaselineError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
        raise BaselineError(f'{path}: expected a JSON object with "format": {BASELINE_FORMAT}')
    if not isinstance(doc.get("runs"), dict):
        raise BaselineError(f"{path}: field 'runs' must be an object {{run_id: {{metrics: ...}}}}")
    for run_id, entry in doc["runs"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("metrics", {}), dict):
            raise BaselineError(f"{path}: runs.{run_id} must be an object with a 'metrics' object")
        for name, e in entry.get("metrics", {}).items():
            if not isinstance(e, dict) or "value" not in e:
                raise BaselineError(
                    f"{path}: runs.{run_id}.metrics.{name} must be an object with 'value' "
                    "(and optional 'abs', 'rel' tolerances)"
                )
    return doc


def _threads(run: EvalRun) -> int | None:
    threads = (run.provenance.get("device") or {}).get("threads")
    return int(threads) if isinstance(threads, int | float) else None


def _lookup(metrics: dict[str, Any], name: str) -> float | None:
    red, _, metric = name.partition(".")
    value = ((metrics.get("reductions") or {}).get(red) or {}).get(metric, "absent")
    if value == "absent":
        return None
    return math.nan if value is None else float(value)  # metrics.json writes NaN as null


def _value(e: dict[str, Any]) -> float:
    v = e.get("value")
    return math.nan if v is None else float(v)


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _isnan(v: float | None) -> bool:
    return v is not None and math.isnan(v)


def _fmt(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "—"
    if math.isnan(v):
        return "nan"
    return f"{v:+.6g}" if signed else f"{v:.6g}"
