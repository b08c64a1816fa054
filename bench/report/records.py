"""What the report writes: one dataclass per table, one field per column, each with its doc and unit.

Every column of table1.csv, table2.csv, table2_modes.csv, table3.csv, paired.csv, summary.csv and
missing_runs.csv is a field of a record below (``column``: ``metadata["doc"]``, ``["unit"]`` and ``["label"]``,
the short header report.html shows). A field made with ``cells`` holds a small record of its own (a metric's
paper value, measured value, difference and interval) and is written as the columns ``<field>_<cell>``.
The CSV header and order (``columns``, ``csv_text``), the HTML headers' text and tooltips (``Column.label``,
``Column.tooltip``) and report_columns.md (``columns_markdown``) are all generated from these fields.

Numbers read from a sweep's speed_summary.csv reach Table 2 as pandas read them (an int column with an
empty cell is read as floats), so the CSVs write them as before.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from functools import cache
from typing import Any

import pandas as pd

__all__ = [
    "ERROR",
    "MEASURED",
    "METRIC_LABELS",
    "MISSING_ROW",
    "NOT_IN_HARNESS",
    "NO_PAPER",
    "REPORT_CSVS",
    "STATUSES",
    "TABLE1_METRICS",
    "TABLE3_METRICS",
    "Claim",
    "Column",
    "MetricCells",
    "MissingRow",
    "PairedCells",
    "PairedRow",
    "ProvenanceRow",
    "RelativeCells",
    "RepeatedRow",
    "SpreadCells",
    "Table1Row",
    "Table2ModeRow",
    "Table2Row",
    "Table3Row",
    "column",
    "column_of",
    "columns",
    "columns_markdown",
    "csv_text",
    "frame",
    "from_frame",
    "from_values",
    "row_values",
]

NAN = math.nan
# Status of a table row (the ``status`` column of Tables 1-3).
MEASURED, MISSING_ROW, NOT_IN_HARNESS, NO_PAPER, ERROR = (
    "measured",
    "missing",
    "not in harness",
    "no paper value",
    "error",
)
STATUSES = {
    MEASURED: "a run fills the row and the paper has values for it",
    MISSING_ROW: "no run (Tables 1 and 3) or sweep (Table 2) fills the row",
    NOT_IN_HARNESS: "a method the paper quotes that this harness does not implement",
    NO_PAPER: "measured here, but the paper has no value for it",
    ERROR: "the row's runs cannot be estimated (see note)",
}
_STATUS_DOC = "row status: " + "; ".join(f"{k} = {v}" for k, v in STATUSES.items())


# ---------------------------------------------------------------------------------------------- machinery


def column(doc: str, unit: str = "", label: str = "", default: Any = MISSING) -> Any:
    """A dataclass field that is one column: ``doc`` defines it, ``unit`` its unit, ``label`` its short
    header in report.html (default: the column name)."""
    return field(default=default, metadata={"doc": doc, "unit": unit, "label": label})


def cells(kind: type, doc: str, unit: str = "", label: str = "") -> Any:
    """A field holding a ``kind`` record, written as the columns ``<field>_<cell>`` (one per field of ``kind``).
    A cell whose unit is ``"{unit}"`` takes ``unit`` (the metric's), others keep their own."""
    return field(default_factory=kind, metadata={"doc": doc, "unit": unit, "label": label, "cells": kind})


@dataclass(frozen=True)
class Column:
    """One CSV column of a record: its header, definition, unit, report.html label and where its value is."""

    name: str
    doc: str
    unit: str
    label: str
    path: tuple[str, ...]  # attribute names from the row to the value: ("run",) or ("rmse", "ci_low")
    group: str = ""  # label of the cells field it belongs to (report.html's group header); "" for plain columns

    @property
    def tooltip(self) -> str:
        """The definition with its unit, as report.html shows it over a header."""
        return f"{self.doc} ({self.unit})" if self.unit else self.doc


@cache
def columns(record: type) -> tuple[Column, ...]:
    """The columns of ``record`` in CSV order: its fields, each cells field expanded in place."""
    out = []
    for f in fields(record):
        meta = f.metadata
        kind = meta.get("cells")
        if kind is None:
            out.append(Column(f.name, meta["doc"], meta["unit"], meta["label"] or f.name, (f.name,)))
            continue
        for c in fields(kind):
            unit = meta["unit"] if c.metadata["unit"] == "{unit}" else c.metadata["unit"]
            doc = f"{meta['doc']}: {c.metadata['doc']}"
            name = f"{f.name}_{c.name}"
            out.append(Column(name, doc, unit, c.metadata["label"] or name, (f.name, c.name), meta["label"]))
    return tuple(out)


def column_of(record: type, name: str) -> Column:
    """The column ``name`` of ``record``, or the group of columns a cells field ``name`` holds (KeyError listing
    the record's columns if it has neither)."""
    for c in columns(record):
        if c.name == name:
            return c
    for f in fields(record):
        if f.name == name and "cells" in f.metadata:
            meta = f.metadata
            return Column(name, meta["doc"], meta["unit"], meta["label"] or name, (name,))
    raise KeyError(f"{record.__name__} has no column {name!r}; columns: {', '.join(c.name for c in columns(record))}")


def row_values(row: Any) -> dict[str, Any]:
    """Column name -> value of one record, in CSV order."""
    out = {}
    for c in columns(type(row)):
        value = row
        for attr in c.path:
            value = getattr(value, attr)
        out[c.name] = value
    return out


def from_values(record: type, values: Mapping[str, Any]) -> Any:
    """The ``record`` whose columns hold ``values`` (column name -> value; the inverse of ``row_values``).
    Columns not given take their defaults; a name that is no column of ``record`` is a KeyError."""
    unknown = set(values) - {c.name for c in columns(record)}
    if unknown:
        raise KeyError(f"{record.__name__} has no column(s) {', '.join(sorted(unknown))}")
    kwargs = {}
    for f in fields(record):
        kind = f.metadata.get("cells")
        if kind is None:
            if f.name in values:
                kwargs[f.name] = values[f.name]
            continue
        given = {c.name: values[f"{f.name}_{c.name}"] for c in fields(kind) if f"{f.name}_{c.name}" in values}
        kwargs[f.name] = kind(**given)
    return record(**kwargs)


def from_frame(df: pd.DataFrame, record: type) -> list[Any]:
    """The rows of a DataFrame with ``record``'s columns (e.g. a report CSV read back) as records."""
    return [from_values(record, r) for r in df.to_dict("records")]


def frame(rows: Iterable[Any], record: type) -> pd.DataFrame:
    """The rows as a DataFrame with ``record``'s columns (what the CSV holds; also for analysis)."""
    return pd.DataFrame([row_values(r) for r in rows], columns=[c.name for c in columns(record)])


def csv_text(rows: Iterable[Any], record: type) -> str:
    """The CSV of the rows: header from ``record``; pandas writes the values (floats as repr, NaN empty)."""
    return frame(rows, record).to_csv(index=False)


# ------------------------------------------------------------------------------------- cells of a metric

METRIC_INFO = {  # metric -> (what it is, unit, report.html group header)
    "rmse": ("RMSE, root mean squared depth error", "m", "RMSE (m)"),
    "log10": ("log10 error, mean |log10(pred) - log10(gt)|", "", "log10"),
    "delta1": ("delta1, share of pixels with max(pred/gt, gt/pred) within 1.25", "fraction", "δ<1.25"),
    "delta2": ("delta2, share of pixels with max(pred/gt, gt/pred) within 1.25^2", "fraction", "δ<1.25²"),
    "delta3": ("delta3, share of pixels with max(pred/gt, gt/pred) within 1.25^3", "fraction", "δ<1.25³"),
}
METRIC_LABELS = {m: label for m, (_, _, label) in METRIC_INFO.items()} | {"abs_rel": "AbsRel"}


def metric_cells(metric: str, kind: type) -> Any:
    """The cells field of ``metric`` (its doc, unit and header from METRIC_INFO)."""
    doc, unit, label = METRIC_INFO[metric]
    return cells(kind, doc, unit, label)


@dataclass
class MetricCells:
    """A metric of a Table 1 or Table 3 row: the paper's value, the measured one and its interval."""

    paper: float = column("the paper's value (empty where the paper has none)", "{unit}", "paper", NAN)
    measured: float = column(
        "measured here: the mean over seeds of each seed's value on its test frames (the report's reduction,"
        " rside unless --reduction)",
        "{unit}",
        "measured",
        NAN,
    )
    diff: float = column("measured - paper", "{unit}", "Δ", NAN)
    ci_low: float = column(
        "lower end of the measured value's 95 % interval (one seed: percentile bootstrap over test frames;"
        " several: t-interval covering training seeds and test frames)",
        "{unit}",
        "95% CI",
        NAN,
    )
    ci_high: float = column("upper end of that interval", "{unit}", "95% CI", NAN)
    seed_std: float = column("standard deviation over seeds (ddof 1); empty with one seed", "{unit}", "± std", NAN)


@dataclass
class PairedCells:
    """A metric of a paired comparison (DRNet - RSIDE on the frames both evaluated)."""

    diff: float = column("DRNet - RSIDE on their common frames (each model's mean over seeds)", "{unit}", "Δ", NAN)
    ci_low: float = column(
        "lower end of the difference's 95 % interval (paired bootstrap: both models on the same resampled"
        " frames; several seeds: t-interval covering training seeds too)",
        "{unit}",
        "95% CI",
        NAN,
    )
    ci_high: float = column("upper end of that interval", "{unit}", "95% CI", NAN)
    p: float = column("two-sided p-value of the difference (H0: equal)", "", "p", NAN)


@dataclass
class RelativeCells:
    """A relative paired difference, (DRNet - RSIDE) / RSIDE."""

    diff: float = column("(DRNet - RSIDE) / RSIDE on their common frames", "fraction", "Δ / RSIDE", NAN)
    ci_low: float = column("lower end of its 95 % interval (paired, as the differences)", "fraction", "95% CI", NAN)
    ci_high: float = column("upper end of that interval", "fraction", "95% CI", NAN)


@dataclass
class SpreadCells:
    """What a paired interval's width is made of, for the estimate of the seeds that would decide it
    (bench.report.stats.seeds_to_decide); empty with one seed of either model."""

    seed_var_a: float = column(
        "the first model's seed-to-seed variance of one seed's value, on the interval's scale (relative:"
        " delta method); n seeds contribute it / n",
        "{unit}",
        default=NAN,
    )
    seed_var_b: float = column("the same for the second model", "{unit}", default=NAN)
    frame_var: float = column(
        "the frame term's part common to every seed (the test frames' own; more seeds leave it): from the"
        " bootstrap variances over test frames of the seed-mean statistic and of single seeds, x N/(N - 1)",
        "{unit}",
        default=NAN,
    )
    frame_seed_var: float = column(
        "the frame term's part that differs between seeds, for one seed of each model (n seeds: / n)",
        "{unit}",
        default=NAN,
    )
    wall_s_a: float = column("mean recorded wall time of one run of the first model", "s", default=NAN)
    wall_s_b: float = column("mean recorded wall time of one run of the second model", "s", default=NAN)


# ----------------------------------------------------------------------------------- Tables 1 and 3

# Columns Tables 1 and 3 share (after their identity columns): one definition each.
_RUN_DOCS = {
    "status": (_STATUS_DOC, ""),
    "run": ("the run group behind the measured values: run id with its seeds (paper-drnet-resnet50-s{0,1,2})", ""),
    "seeds": ("training seeds behind the measured values (0 without a run)", ""),
    "n_frames": ("test frames each seed evaluated", "frames"),
    "regime": (
        "what the runs were trained on: data, optimiser steps taken, seeds, options off the current defaults"
        " (bench.report.regime.short_regime), e.g. 'labeled-795, 2.0k steps, 3 seeds' or 'imported official'",
        "",
    ),
    "paper_regime": ("'matches' or 'differs: <what>' against the paper's regime (bench.report.regime)", ""),
    "ci_covers": ("what the 95 % intervals cover: test frames only (one seed) or training seeds and test frames", ""),
    "test_selected": (
        "runs of the row whose evaluated weights were chosen by their test RMSE (checkpoint_select = best): the"
        " values are optimistic and no verdict rests on them (report.html marks the row); empty: none",
        "",
    ),
    "note": ("why the row could not be estimated (status error); else empty", ""),
}
_RUN_LABELS = {"paper_regime": "paper's regime?", "test_selected": "selected on test?"}


def _run_column(name: str, default: Any) -> Any:
    doc, unit = _RUN_DOCS[name]
    return column(doc, unit, _RUN_LABELS.get(name, ""), default)


_CONVERGENCE_UNKNOWN_DOC = (
    "trained runs of the pair whose convergence cannot be told (no history.csv, an unreadable one, fewer than 4"
    " test evaluations, no reference.constant_rmse in metrics.json), and why; empty: none"
)
_TEST_SELECTED_DOC = (
    "runs of the pair whose evaluated weights were chosen by their test RMSE (checkpoint best); empty: none"
)
_NOTES_DOC = (
    "what every verdict on the pair must say besides its numbers ('; '-separated): accepted code drift, runs"
    " counted once, imported weights without a training curve; empty: none"
)
_ARCH_DOC = "architecture as registered (rside, drnet), or a method the paper quotes (fcrn, dorn, cream)"
_SOURCE_DOC = (
    "who measured the paper's values: drnet-paper, rside-paper, drnet-reproduced or cited (bench/report/paper.py);"
    " empty for a row the paper lacks"
)


@dataclass(kw_only=True)
class Table1Row:
    """One row of table1.csv: a Table 1 method, the paper's accuracy and the accuracy measured here."""

    method: str = column("the paper's row name (e.g. 'DRNet ResNet-50'); '<arch> <backbone>' for a row it lacks")
    arch: str = column(_ARCH_DOC)
    backbone: str = column("encoder backbone; empty for quoted methods")
    source: str = column(_SOURCE_DOC, default="")
    status: str = _run_column("status", MISSING_ROW)
    run: str = _run_column("run", "")
    seeds: int = _run_column("seeds", 0)
    n_frames: float = _run_column("n_frames", NAN)
    regime: str = _run_column("regime", "")
    paper_regime: str = _run_column("paper_regime", "")
    ci_covers: str = _run_column("ci_covers", "")
    test_selected: str = _run_column("test_selected", "")
    rmse: MetricCells = metric_cells("rmse", MetricCells)
    log10: MetricCells = metric_cells("log10", MetricCells)
    delta1: MetricCells = metric_cells("delta1", MetricCells)
    delta2: MetricCells = metric_cells("delta2", MetricCells)
    delta3: MetricCells = metric_cells("delta3", MetricCells)
    note: str = _run_column("note", "")

    def metric(self, name: str) -> MetricCells:
        """The cells of metric ``name`` (one of TABLE1_METRICS)."""
        return _metric(self, name, TABLE1_METRICS)


@dataclass(kw_only=True)
class Table3Row:
    """One row of table3.csv: a DRNet switch combination on one backbone, its accuracy, and the paired change
    in RMSE against the full model of that backbone."""

    variant: str = column(
        "the paper's row name for the switches (e.g. 'no second branch'); other combinations"
        " 'no diagonal, no aux losses'"
    )
    arch: str = column("always drnet", default="drnet")
    backbone: str = column("encoder backbone (the paper's values belong to resnet152 rows only)")
    diagonal: bool = column("DRNet's diagonal connections on")
    aux_losses: bool = column("DRNet's auxiliary losses on")
    second_branch: bool = column("DRNet's second upsampling branch on")
    source: str = column(_SOURCE_DOC, default="")
    status: str = _run_column("status", MISSING_ROW)
    run: str = _run_column("run", "")
    seeds: int = _run_column("seeds", 0)
    n_frames: float = _run_column("n_frames", NAN)
    regime: str = _run_column("regime", "")
    paper_regime: str = _run_column("paper_regime", "")
    ci_covers: str = _run_column("ci_covers", "")
    test_selected: str = _run_column("test_selected", "")
    rmse: MetricCells = metric_cells("rmse", MetricCells)
    delta1: MetricCells = metric_cells("delta1", MetricCells)
    delta2: MetricCells = metric_cells("delta2", MetricCells)
    delta3: MetricCells = metric_cells("delta3", MetricCells)
    note: str = _run_column("note", "")
    rmse_vs_full_paper: float = column(
        "the paper's RMSE of this variant minus its full model's (resnet152 rows only)", "m", "paper", NAN
    )
    vs_full_not_comparable: str = column(
        "regime fields on which this variant's runs and the full model's differ ('; '-separated; empty: comparable)",
        default="",
    )
    vs_full_not_converged: str = column(
        "runs of the pair that had not converged (bench.report.curves); empty: none", default=""
    )
    vs_full_convergence_unknown: str = column(_CONVERGENCE_UNKNOWN_DOC, default="")
    vs_full_test_selected: str = column(_TEST_SELECTED_DOC, default="")
    vs_full_notes: str = column(_NOTES_DOC, default="")
    vs_full_seeds: float = column("seeds of whichever of the two models (variant, full) has fewer", default=NAN)
    rmse_vs_full_measured: float = column(
        "RMSE(variant) - RMSE(full model) on their common frames (paired; each model's mean over seeds)",
        "m",
        "measured",
        NAN,
    )
    rmse_vs_full_ci_low: float = column("lower end of that difference's 95 % interval (paired)", "m", "95% CI", NAN)
    rmse_vs_full_ci_high: float = column("upper end of that interval", "m", "95% CI", NAN)
    rmse_vs_full_p: float = column("two-sided p-value of that difference (H0: no change)", "", "p", NAN)
    rmse_vs_full_rel: float = column("(RMSE(variant) - RMSE(full)) / RMSE(full)", "fraction", default=NAN)
    rmse_vs_full_rel_ci_low: float = column("lower end of its 95 % interval (paired)", "fraction", default=NAN)
    rmse_vs_full_rel_ci_high: float = column("upper end of that interval", "fraction", default=NAN)
    rmse_vs_full_frames: float = column("common frames of the variant and the full model", "frames", default=NAN)
    vs_full_spread: SpreadCells = cells(
        SpreadCells,
        "what the interval of the relative RMSE change is made of (a = this variant, b = the full model)",
        "fraction^2",
    )
    second_branch_gap_measured: float = column(
        "RMSE('no second branch') - RMSE(this variant) on their common frames (paired; each model's mean over"
        " seeds): how much more removing the second branch hurts than removing this element; on the other"
        " single ablations of the backbone only (Table 3's 'largest improvement' is judged on it)",
        "m",
        default=NAN,
    )
    second_branch_gap_ci_low: float = column(
        "lower end of that difference's 95 % interval (paired; several seeds: covers training seeds too)",
        "m",
        default=NAN,
    )
    second_branch_gap_ci_high: float = column("upper end of that interval", "m", default=NAN)
    second_branch_gap_p: float = column("two-sided p-value of that difference (H0: equal)", default=NAN)

    @property
    def switches(self) -> tuple[bool, bool, bool]:
        """(diagonal, aux_losses, second_branch)."""
        return self.diagonal, self.aux_losses, self.second_branch

    def metric(self, name: str) -> MetricCells:
        """The cells of metric ``name`` (one of TABLE3_METRICS)."""
        return _metric(self, name, TABLE3_METRICS)


def _metric(row: Any, name: str, metrics: Sequence[str]) -> Any:
    if name not in metrics:
        raise KeyError(f"{type(row).__name__} has no metric {name!r}; metrics: {', '.join(metrics)}")
    return getattr(row, name)


def _metrics_of(record: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record) if f.metadata.get("cells") in (MetricCells, PairedCells))


TABLE1_METRICS = _metrics_of(Table1Row)  # rmse, log10, delta1..3
TABLE3_METRICS = _metrics_of(Table3Row)  # rmse, delta1..3


@dataclass(kw_only=True)
class PairedRow:
    """One row of paired.csv: DRNet vs RSIDE on one backbone, on the frames both evaluated."""

    backbone: str = column("encoder backbone of both models")
    data: str = column("data source(s) of the two models' runs, '/'-joined (metrics.json data.source)", default="")
    drnet_run: str = column("DRNet's run group (run id with its seeds)", label="DRNet run", default="")
    rside_run: str = column("RSIDE's run group", label="RSIDE run", default="")
    drnet_regime: str = column(
        "DRNet's regime (bench.report.regime.short_regime)", label="regimes (DRNet / RSIDE)", default=""
    )
    rside_regime: str = column("RSIDE's regime", default="")
    not_comparable: str = column(
        "regime fields on which the two models' runs differ ('; '-separated; empty: comparable)",
        label="comparable?",
        default="",
    )
    not_converged: str = column(
        "runs of the pair that had not converged (bench.report.curves); empty: none", default=""
    )
    convergence_unknown: str = column(_CONVERGENCE_UNKNOWN_DOC, default="")
    test_selected: str = column(_TEST_SELECTED_DOC, default="")
    notes: str = column(_NOTES_DOC, default="")
    paper_regime: str = column("'matches' when both models are in the paper's regime, else the first's differences")
    seeds_drnet: int = column("DRNet's training seeds", default=0)
    seeds_rside: int = column("RSIDE's training seeds", default=0)
    ci_covers: str = column(_RUN_DOCS["ci_covers"][0], default="")
    frames_common: int = column("test frames both models evaluated (the pairing's frames)", "frames", "frames", 0)
    frames_drnet: int = column("test frames DRNet evaluated", "frames", default=0)
    frames_rside: int = column("test frames RSIDE evaluated", "frames", default=0)
    same_frames: bool = column("both evaluated exactly the same frames", default=True)
    rmse_drnet: float = column("DRNet's RMSE on the common frames (mean over seeds)", "m", default=NAN)
    rmse_rside: float = column("RSIDE's RMSE on the common frames (mean over seeds)", "m", default=NAN)
    rmse_diff_paper: float = column("the paper's DRNet RMSE minus its RSIDE RMSE (Table 1)", "m", default=NAN)
    rmse_rel_paper: float = column(
        "the paper's own gap: (DRNet - RSIDE) / RSIDE of its Table 1 RMSEs (DRNet's row and RSIDE's paper row)",
        "fraction",
        default=NAN,
    )
    rmse: PairedCells = metric_cells("rmse", PairedCells)
    log10: PairedCells = metric_cells("log10", PairedCells)
    delta1: PairedCells = metric_cells("delta1", PairedCells)
    delta2: PairedCells = metric_cells("delta2", PairedCells)
    delta3: PairedCells = metric_cells("delta3", PairedCells)
    rmse_rel: RelativeCells = cells(RelativeCells, "relative RMSE", label="relative RMSE")
    rmse_rel_spread: SpreadCells = cells(
        SpreadCells, "what the relative RMSE interval is made of (a = DRNet, b = RSIDE)", "fraction^2"
    )

    def metric(self, name: str) -> PairedCells:
        """The paired cells of metric ``name`` (one of TABLE1_METRICS)."""
        return _metric(self, name, TABLE1_METRICS)


# ---------------------------------------------------------------------------------------------- Table 2

_MODE_DOC = (
    "the sweep mode every number of the row was measured in: inference (eval, inference_mode), autograd (eval,"
    " gradients on), train (forward + loss + backward + Adam step)"
)


@dataclass(kw_only=True)
class Table2Row:
    """One row of table2.csv: a Table 2 model, the paper's Tesla P40 numbers, and one sweep's measurement of it
    in one mode. Ratios (DRNet vs RSIDE, same backbone) are on DRNet rows, taken within one sweep and mode."""

    method: str = column("the paper's row name; '<arch> <backbone>' for a model it lacks")
    arch: str = column("architecture (rside, drnet)")
    backbone: str = column("encoder backbone")
    source: str = column("who measured the paper's values (drnet-paper, drnet-reproduced); empty: not in the paper")
    status: str = column(_STATUS_DOC)
    sweep: str = column("the speed sweep (run directory) the measured values come from", default="")
    device_kind: str = column("cuda or cpu", default="")
    device_name: str = column("the measured device: GPU name or CPU model", label="device", default="")
    dtype: str = column("weights and input dtype of the sweep (fp32 | fp16 | bf16)", default="")
    input: str = column("input size HxW of the sweep, pixels", default="")
    mode: str = column(_MODE_DOC, default="")
    cpu_load_max: float = column(
        "CPU sweeps: the highest 1-minute load average recorded (sweep start and end, after each point); above"
        " 1.5 x cpu_count other work shared the cores, and the speed claims are not judged on this sweep",
        "",
        "load",
        NAN,
    )
    cpu_count: float = column("CPU sweeps: the machine's CPU count (os.cpu_count)", "", "CPUs", NAN)
    paper_device: str = column("the paper's device (Tesla P40)", default="")
    fps_b1_paper: float = column("the paper's fps at batch 1", "images/s", "fps b1", NAN)
    fps_b1_measured: float = column(
        "median fps at batch 1 over the sweep's timing sessions (speed_summary.csv fps_b1)", "images/s", "fps b1", NAN
    )
    fps_max_paper: float = column("the paper's largest fps over batch sizes", "images/s", "fps max", NAN)
    fps_max_measured: float = column(
        "largest median fps over the measured batch sizes (its batch in brackets)", "images/s", "fps max (b)", NAN
    )
    fps_max_batch_paper: float = column("the batch size of the paper's largest fps", "images", "at b", NAN)
    fps_max_batch_measured: float = column("the batch size of the largest measured fps", "images", default=NAN)
    max_batch_fit_measured: float = column(
        "largest batch that ran without running out of memory (a lower bound when the sweep stopped at its cap)",
        "images",
        "max b fits",
        NAN,
    )
    net_ram_paper_mb: float = column("the paper's 'net RAM'", "paper's MB", "net RAM MB", NAN)
    net_ram_measured_mib: float = column("weights and buffers of the model on the device", "MiB", "net RAM MiB", NAN)
    net_ram_loaded_measured_mib: float = column(
        "memory increase from the pre-model baseline to the model loaded", "MiB", "loaded MiB", NAN
    )
    ram_per_img_paper_mb: float = column("the paper's 'RAM / img', never defined", "paper's MB", "RAM/img MB", NAN)
    mem_b1_measured_mib: float = column(
        "memory per image (1): peak at batch 1 above the pre-model baseline (weights included)",
        "MiB",
        "peak b1 MiB",
        NAN,
    )
    ram_per_img_measured_mib: float = column(
        "memory per image (2): marginal slope of peak memory against batch size (weights excluded)",
        "MiB per image",
        "slope MiB/img",
        NAN,
    )
    ram_per_img_r2: float = column("R² of that slope's least-squares fit", "", "R²", NAN)
    ram_per_img_source: str = column(
        "memory measure behind the slope: nvml or reserved on CUDA, rss on CPU", default=""
    )
    mem_max_b_per_img_measured_mib: float = column(
        "memory per image (3): peak at the largest batch / that batch (its batch in brackets)",
        "MiB per image",
        "peak/b MiB (b)",
        NAN,
    )
    mem_max_b_batch_measured: float = column("the largest batch that ran, behind definition (3)", "images", default=NAN)
    speedup_b1_paper: float = column("the paper's fps at batch 1 of DRNet / of RSIDE (DRNet rows)", "x", "paper", NAN)
    speedup_b1_measured: float = column(
        "fps at batch 1 of DRNet / of RSIDE, same sweep and mode (DRNet rows): the geometric mean of the ratios"
        " of the pairs of timing sessions (speed_pairs.csv); fps_b1 / fps_b1 for a sweep without pairs",
        "x",
        "measured",
        NAN,
    )
    speedup_b1_ci_low: float = column(
        "95 % t-interval of that ratio over the pairs, lower end (bench.report.ratios); empty with fewer than 2 pairs",
        "x",
        default=NAN,
    )
    speedup_b1_ci_high: float = column("the interval's upper end", "x", default=NAN)
    pairs: float = column(
        "pairs of timing sessions behind the measured ratios (speed_pairs.csv rows of this DRNet model and its"
        " RSIDE); 1 for a sweep with one session per model (written before sessions, or --pairs 1): no interval,"
        " no verdict",
        "",
        "pairs",
        NAN,
    )
    mem_ratio_paper: float = column("the paper's 'RAM / img' of RSIDE / of DRNet (DRNet rows)", "x", "paper", NAN)
    mem_ratio_b1_measured: float = column(
        "memory per image (1), RSIDE / DRNet, same sweep and mode: geometric mean over the pairs of sessions",
        "x",
        "peak b1",
        NAN,
    )
    mem_ratio_b1_ci_low: float = column("95 % t-interval of that ratio over the pairs, lower end", "x", default=NAN)
    mem_ratio_b1_ci_high: float = column("its upper end", "x", default=NAN)
    mem_ratio_measured: float = column(
        "memory per image (2), RSIDE / DRNet, same sweep and mode: geometric mean over the pairs of sessions",
        "x",
        "slope",
        NAN,
    )
    mem_ratio_ci_low: float = column("95 % t-interval of that ratio over the pairs, lower end", "x", default=NAN)
    mem_ratio_ci_high: float = column("its upper end", "x", default=NAN)
    mem_ratio_max_b_measured: float = column(
        "memory per image (3), RSIDE / DRNet, same sweep and mode: geometric mean over the pairs of sessions",
        "x",
        "peak/b",
        NAN,
    )
    mem_ratio_max_b_ci_low: float = column("95 % t-interval of that ratio over the pairs, lower end", "x", default=NAN)
    mem_ratio_max_b_ci_high: float = column("its upper end", "x", default=NAN)


@dataclass(kw_only=True)
class Table2ModeRow:
    """One row of table2_modes.csv: one sweep mode's DRNet-vs-RSIDE ratio next to the paper's."""

    backbone: str = column("encoder backbone of the pair")
    sweep: str = column("the speed sweep")
    device_kind: str = column("cuda or cpu")
    device_name: str = column("the measured device", label="device")
    quantity: str = column(
        "which ratio: DRNet / RSIDE fps at batch 1, or RSIDE / DRNet memory per image (a definition)", label="ratio"
    )
    mode: str = column(_MODE_DOC)
    measured: float = column("the ratio measured in this mode", "x")
    paper: float = column("the paper's ratio", "x")
    log_distance: float = column("|ln(measured / paper)|", "", "|ln(measured / paper)|")
    closest_mode: str = column(
        "the mode with the smallest log_distance for this sweep, backbone and quantity",
        label="closest mode",
        default="",
    )


# --------------------------------------------------------------------------------- summary and problems


@dataclass(frozen=True)
class Claim:
    """One row of summary.csv: a claim of the paper, the evidence on both sides and the verdict."""

    claim: str = column("the paper's statement")
    scope: str = column("what the evidence is about: backbone, data or device, mode, and the verdict's scope")
    paper: str = column("the paper's evidence")
    measured: str = column("what was measured here")
    verdict: str = column("the verdict's text, with its reason (e.g. 'not comparable: steps 2000 vs 126700')")
    outcome: str = column(
        "the verdict's category (reproduced within tolerance, not reproduced, inconclusive, ...);"
        " defaults to the verdict",
        default="",
    )
    notes: str = column(
        "what the verdict rests on besides the numbers, also at the end of its text: accepted code drift, runs"
        " counted once, imported weights without a training curve; empty: none",
        default="",
    )
    headline: str = column(
        "the claim of the paper this row belongs to: the claim of its headline row (a headline row: its own)",
        default="",
    )
    level: int = column(
        "0: the headline of a claim of the paper, its verdict derived from the rows under it (TOLERANCES); 1: a"
        " verdict on one backbone, or on one sweep and mode; 2, 3: rows under a level-1 row (per memory"
        " definition, per backbone)",
        default=1,
    )
    to_decide: str = column(
        "for an inconclusive accuracy verdict: an estimate of the seeds per model that would decide it, from the"
        " observed seed and frame variances, and what the missing runs would cost at their recorded wall times"
        " (also in the verdict's text); empty: decided, or not estimable (one seed)",
        default="",
    )

    def __post_init__(self) -> None:
        if not self.outcome:
            object.__setattr__(self, "outcome", self.verdict)


@dataclass(frozen=True)
class MissingRow:
    """One row of missing_runs.csv: a table row no run fills, or a run directory that could not be read."""

    where: str = column("the table row (e.g. 'Table 1 · DRNet ResNet-50 [drnet-paper]') or the directory")
    what: str = column("what is missing, or why the directory could not be read")


@dataclass(frozen=True)
class RepeatedRow:
    """One row of repeated_runs.csv: a run directory left out because it repeats another (a seed counts once)."""

    directory: str = column("the run directory left out")
    run_id: str = column("the run id its metrics.json gives")
    seed: int = column("the training seed its metrics.json gives")
    used_instead: str = column(
        "the run directory used in its place: the one at its canonical path runs/<run id>/, else the newest"
    )
    why: str = column("'same suite entry and seed', or 'identical per_image.csv' (the same evaluated results)")


@dataclass(kw_only=True)
class ProvenanceRow:
    """One row of report.html's provenance table (no CSV): what produced a run or a speed sweep."""

    run: str = column("run id or sweep id")
    arch: str = column("architecture (a sweep: all it measured)")
    backbone: str = column("backbone (a sweep: all it measured)")
    options: str = column("the run's options as JSON; 'speed sweep' for a sweep")
    seed: Any = column("training seed (a sweep: its seed)")
    commit: str = column("git commit of the code that produced it (dirty: uncommitted changes)")
    torch: str = column("torch version")
    device: str = column("device it ran on")
    data: str = column("data source, training variant, split (and the file's sha256)")
    protocol: str = column("evaluation protocol (a sweep: dtype and input size)")
    checkpoint: str = column("checkpoint evaluated and its epoch")
    frames: Any = column("test frames evaluated", "frames")
    created_utc: str = column("when it was created", "UTC", "created (UTC)")
    wall_time_s: Any = column("wall time", "s", "wall time (s)")


# ------------------------------------------------------------------------------------------- reference

REPORT_CSVS: dict[str, tuple[type, str]] = {  # file -> (record, what a row is), in the order bench report writes
    "table1.csv": (Table1Row, "Table 1 (accuracy): one row per paper method, then measured rows the paper lacks"),
    "table2.csv": (Table2Row, "Table 2 (speed, memory): one row per model and sweep mode"),
    "table2_modes.csv": (Table2ModeRow, "Which sweep mode's ratios come closest to the paper's"),
    "table3.csv": (Table3Row, "Table 3 (ablations): one row per backbone and switch combination"),
    "paired.csv": (PairedRow, "DRNet vs RSIDE, one row per backbone both were run on (paired bootstrap)"),
    "summary.csv": (Claim, "The paper's claims with their verdicts"),
    "missing_runs.csv": (MissingRow, "Table rows no run fills, and unreadable run directories"),
    "repeated_runs.csv": (RepeatedRow, "Run directories counted once: each repeats another run (bench.report.repeats)"),
}


def columns_markdown() -> str:
    """report_columns.md: every column of every CSV ``bench report`` writes, with its unit and definition."""
    lines = [
        "# Columns of the report's CSV files (bench report)",
        "",
        "Generated by `bench.report.records.columns_markdown()` from the records' field docs; a test keeps it"
        " current. Depth errors in metres, memory in MiB (ours) or the paper's MB, speed in images/s, ratios in x."
        " Empty cells: not applicable or not measured.",
        "",
    ]
    for name, (record, what) in REPORT_CSVS.items():
        lines += [f"## {name}", "", f"{what}.", "", "| column | unit | meaning |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {c.unit} | {_markdown_cell(c.doc)} |" for c in columns(record)]
        lines.append("")
    return "\n".join(lines)


def _markdown_cell(text: str) -> str:
    """``text`` inside a Markdown table cell: its pipes escaped."""
    return text.replace("|", "\\|")
