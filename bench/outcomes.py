"""What happened to each planned run, and the words ``bench run`` uses for it.

``RunOutcome`` is built by one constructor per status (``trained``, ``evaluated``, ``reused``, ``failed``,
``locked``, ``interrupted``, ``not_started``), whichever launcher ran the run. ``summary_table`` is the table
printed at the end; the messages shared by the checks and the run lifecycle (a run reused, or refused because
its settings changed) are written here once. Torch-free: the dry run and the launchers format with it before
or without any training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.config import RunConfig
from bench.rundir import RunDir

__all__ = [
    "RunOutcome",
    "diff_message",
    "format_duration",
    "format_size",
    "headline_text",
    "reuse_notice",
    "reuse_refusal",
    "summary_table",
]


@dataclass
class RunOutcome:
    """What happened to one planned run, for the summary table."""

    run_id: str
    status: str  # "trained" | "evaluated" (imported weights) | "reused" (complete, same config) | "failed" |
    # "locked" (another runner is writing it: skipped) | "interrupted" (SIGTERM/SIGINT: resumable) |
    # "not started" (the suite stopped before its turn)
    config: RunConfig
    metrics: dict[str, Any] | None = None
    wall_time_s: float | None = None
    epochs: float | None = None
    steps: int | None = None
    message: str = ""
    size_bytes: int | None = None  # the run directory on disk after the run
    stopped_suite: bool = False  # the suite stopped after this run (a signal, a full disk): the rest not started

    @classmethod
    def trained(
        cls, config: RunConfig, metrics: dict[str, Any], wall_time_s: float, epochs: float | None, steps: int
    ) -> RunOutcome:
        return cls(config.run_id, "trained", config, metrics, wall_time_s, epochs, steps)

    @classmethod
    def evaluated(cls, config: RunConfig, metrics: dict[str, Any], wall_time_s: float) -> RunOutcome:
        """Imported weights evaluated (nothing trained)."""
        return cls(config.run_id, "evaluated", config, metrics, wall_time_s, None, 0)

    @classmethod
    def reused(cls, rd: RunDir, config: RunConfig) -> RunOutcome:
        """A complete run directory kept as it is: its metrics and the wall time it recorded."""
        metrics = rd.read_metrics()
        _, provenance = rd.read_config()
        return cls(
            config.run_id,
            "reused",
            config,
            metrics,
            provenance.get("wall_time_s"),
            metrics.get("epoch"),
            metrics.get("steps"),
            "already complete",
        )

    @classmethod
    def failed(cls, config: RunConfig, message: str, stopped_suite: bool = False) -> RunOutcome:
        return cls(config.run_id, "failed", config, message=message, stopped_suite=stopped_suite)

    @classmethod
    def locked(cls, config: RunConfig, holder: str) -> RunOutcome:
        """Skipped: another process holds the run's lock (``holder``: "locked by host:pid since ...")."""
        return cls(config.run_id, "locked", config, message=holder)

    @classmethod
    def interrupted(cls, config: RunConfig, message: str, steps: int | None = None) -> RunOutcome:
        """Stopped by SIGTERM/SIGINT with its checkpoint written: ``bench run --resume`` continues it."""
        return cls(config.run_id, "interrupted", config, steps=steps, message=message, stopped_suite=True)

    @classmethod
    def not_started(cls, config: RunConfig, why: str) -> RunOutcome:
        """Never started: the suite stopped before this run's turn (``why``)."""
        return cls(config.run_id, "not started", config, message=why)


# --- messages ---------------------------------------------------------------------------------------------


def reuse_notice(rd: RunDir) -> str:
    return f"reusing {rd.root}: complete, same configuration (--rerun trains it again)"


def diff_message(rd: RunDir, diff: Sequence[tuple[str, Any, Any]], what: str = "", hint: str = "") -> str:
    """``<dir>: <what> (field: stored in the run directory, planned now; ...). Run with ..., or <hint>.``"""
    fields = "; ".join(f"{k}: {a!r} in the run directory, {b!r} now" for k, a, b in diff)
    what = what or "cannot resume: the configuration differs"
    hint = hint or "move the directory away"
    return f"{rd.root}: {what} ({fields}). Run with the original settings, or {hint}."


def reuse_refusal(rd: RunDir, diff: Sequence[tuple[str, Any, Any]]) -> str:
    """Why a complete run is not reused for the planned one: how their settings differ."""
    return diff_message(
        rd,
        diff,
        "cannot reuse the finished run: the configuration differs",
        "pass --rerun to move it aside and train again",
    )


def headline_text(metrics: dict[str, Any]) -> str:
    """``rmse 0.5123 m, abs_rel 0.1412, delta1 0.8123`` from a metrics.json dict (its headline reduction)."""
    from bench.evaluate import headline_summary  # torch: only once there are metrics to show

    h = headline_summary(metrics)
    return f"rmse {h['rmse']:.4f} m, abs_rel {h['abs_rel']:.4f}, delta1 {h['delta1']:.4f}"


# --- the summary table ------------------------------------------------------------------------------------


def summary_table(outcomes: Sequence[RunOutcome]) -> str:
    """A fixed-width table: run, status, epochs, steps, headline rmse / abs_rel / delta1, wall time, disk."""
    from bench.evaluate import headline_summary

    header = ["run", "status", "epochs", "steps", "rmse", "abs_rel", "delta1", "reduction", "wall", "disk"]
    rows = []
    for o in outcomes:
        h = headline_summary(o.metrics) if o.metrics else {}
        rows.append(
            [
                o.run_id,
                o.status,
                _num(o.epochs, "{:g}"),
                _num(o.steps, "{:d}"),
                _num(h.get("rmse"), "{:.4f}"),
                _num(h.get("abs_rel"), "{:.4f}"),
                _num(h.get("delta1"), "{:.4f}"),
                (o.metrics or {}).get("headline_reduction", "-"),
                format_duration(o.wall_time_s),
                format_size(o.size_bytes),
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    out = [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    # why runs failed or were skipped; the run that stopped the suite is said last, by bench.pipeline
    notes = [o for o in outcomes if o.status in ("failed", "locked") and o.message and not o.stopped_suite]
    if notes:
        out.append("")
        out += [f"{o.status}: {o.run_id}: {o.message}" for o in notes]
    return "\n".join(out)


def _num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def format_size(n_bytes: int | None) -> str:
    """``412.3 MiB`` / ``1.2 GiB`` (binary units, as ``du -h``); ``-`` for None."""
    if n_bytes is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


def format_duration(seconds: float | None) -> str:
    """``12m05s`` / ``3h07m``; ``-`` for None."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
