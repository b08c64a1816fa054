"""The paper's Tables 1-3 as typed rows (``bench.report.records``): paper value, measured value, difference,
bootstrap CI.

Which run fills which row:
- Table 1: runs of the chosen suite with default options (no Table 3 switch off), keyed by (arch, backbone).
- Table 3: DRNet runs of the suite keyed by (backbone, (diagonal, aux_losses, second_branch)); the paper's
  values belong to ResNet-152 and are shown only on ResNet-152 rows. Other backbones get rows too when the
  suite ablates them (the synthetic ablations suite may use a smaller backbone).
- Table 2: the ``speed_summary.csv`` rows of the sweeps the report judges (``runs.select_sweeps``), default
  options, one row per model and sweep mode. Ratios (DRNet vs RSIDE, same backbone) are taken only inside one
  sweep and one mode, i.e. one device, dtype, input size and mode (memory once per definition), as the
  geometric mean of the sweep's pairs of timing sessions with a 95 % interval (``bench.report.ratios``);
  absolute fps and memory are not compared with the paper's Tesla P40 numbers (a difference column there
  would mean nothing).

Every measured row of Tables 1 and 3 carries its regime (``bench.report.regime.short_regime``) and whether it
is the paper's; each paired comparison (DRNet vs RSIDE, ablation vs full model) lists the regime fields on
which its runs differ (empty: comparable), which ``bench.report.claims`` turns into "not comparable".

Where two suite entries claim the same row, the entry named ``<arch>-<backbone>`` wins (else the first by
name) and the others are recorded in ``Selection.notes``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from bench.report.curves import check_convergence
from bench.report.identity import split_notes
from bench.report.paper import PAPER_TABLE2_DEVICE, paper_table1, paper_table2, paper_table3
from bench.report.ratios import ratio_interval
from bench.report.records import (
    ERROR,
    MEASURED,
    NO_PAPER,
    NOT_IN_HARNESS,
    TABLE1_METRICS,
    TABLE3_METRICS,
    MetricCells,
    PairedCells,
    PairedRow,
    RelativeCells,
    SpreadCells,
    Table1Row,
    Table2ModeRow,
    Table2Row,
    Table3Row,
)
from bench.report.records import MISSING_ROW as MISSING
from bench.report.regime import compare_groups, paper_differences, regime_of, short_regime, test_set_selection
from bench.report.repeats import RepeatedRun, count_once, repeat_notes
from bench.report.runs import (
    ABLATION_SWITCHES,
    EvalRun,
    RunGroup,
    SpeedSweep,
    group_runs,
    is_default_options,
    switches_of,
)
from bench.report.stats import (
    BOOTSTRAP_SEED,
    N_BOOTSTRAP,
    Estimate,
    FrameStats,
    PairedDifference,
    bootstrap_estimate,
    common_frames,
    frame_stats,
    paired_differences,
    point_metrics,
)

__all__ = [
    "ABLATIONS",
    "ERROR",
    "FULL_SWITCHES",
    "HARNESS_ARCHS",
    "MEASURED",
    "MEMORY_DEFINITIONS",
    "MISSING",
    "MODE_QUANTITIES",
    "NOT_IN_HARNESS",
    "NO_PAPER",
    "PAPER_ABLATION_BACKBONE",
    "TABLE1_METRICS",
    "TABLE3_METRICS",
    "TABLE3_VARIANTS",
    "EstimateError",
    "MemoryDefinition",
    "Selection",
    "Tables",
    "ablated",
    "build_tables",
    "pair_gate",
    "paired_table",
    "pretty_arch",
    "select_runs",
    "table1",
    "table2",
    "table2_modes",
    "table3",
    "variant_name",
]

HARNESS_ARCHS = ("rside", "drnet")  # what this harness implements; other Table 1 rows are quoted only
FULL_SWITCHES = (True, True, True)
# Table 3 switch turned off -> (the paper's row name, its short name in combined names); ABLATION_SWITCHES order
ABLATIONS = {
    "diagonal": ("no diagonal connections", "diagonal"),
    "aux_losses": ("no auxiliary losses", "aux losses"),
    "second_branch": ("no second branch", "second branch"),
}


def ablated(switch: str) -> tuple[bool, bool, bool]:
    """DRNet's switches (diagonal, aux_losses, second_branch) with only ``switch`` turned off."""
    if switch not in ABLATIONS:
        raise KeyError(f"unknown Table 3 switch {switch!r}; switches: {', '.join(ABLATIONS)}")
    return tuple(s != switch for s in ABLATION_SWITCHES)  # type: ignore[return-value]


TABLE3_VARIANTS = {  # (diagonal, aux_losses, second_branch) -> the paper's row name
    FULL_SWITCHES: "DRNet (all elements)",
    **{ablated(s): row for s, (row, _) in ABLATIONS.items()},
}
PAPER_ABLATION_BACKBONE = "resnet152"


def variant_name(sw: tuple[bool, bool, bool]) -> str:
    """The paper's row name of a switch combination, else 'no <element>, no <element>' of those turned off."""
    if sw in TABLE3_VARIANTS:
        return TABLE3_VARIANTS[sw]
    off = [ABLATIONS[s][1] for s, on in zip(ABLATION_SWITCHES, sw, strict=True) if not on]
    return "no " + ", no ".join(off)


@dataclass(frozen=True)
class MemoryDefinition:
    """One of the three definitions of memory per image (the paper never says which its "RAM / img" is)."""

    label: str  # how verdicts and table2_modes.csv name it
    summary_column: str  # speed_summary.csv column of the measured value
    value: str  # Table2Row field of the measured value
    ratio: str  # Table2Row field of the RSIDE / DRNet ratio
    pair_column: str  # speed_pairs.csv column of one pair's RSIDE / DRNet ratio
    ci: str  # prefix of the Table2Row fields of the ratio's interval (<ci>_ci_low, <ci>_ci_high)

    def ratio_of(self, row: Table2Row) -> float:
        """RSIDE / DRNet of ``row`` (a DRNet row) under this definition."""
        return getattr(row, self.ratio)

    def interval_of(self, row: Table2Row) -> tuple[float, float]:
        """The 95 % interval of that ratio over the sweep's pairs of sessions (NaN, NaN without one)."""
        return getattr(row, f"{self.ci}_ci_low"), getattr(row, f"{self.ci}_ci_high")


MEMORY_DEFINITIONS = (  # the slope keeps the historical column names
    MemoryDefinition(
        "peak at batch 1", "mem_b1_mib", "mem_b1_measured_mib", "mem_ratio_b1_measured", "mem_ratio_b1", "mem_ratio_b1"
    ),
    MemoryDefinition(
        "marginal slope",
        "ram_per_img_mib",
        "ram_per_img_measured_mib",
        "mem_ratio_measured",
        "mem_ratio_slope",
        "mem_ratio",
    ),
    MemoryDefinition(
        "peak at the largest batch / batch",
        "mem_max_b_per_img_mib",
        "mem_max_b_per_img_measured_mib",
        "mem_ratio_max_b_measured",
        "mem_ratio_max_b",
        "mem_ratio_max_b",
    ),
)
DEFAULT_MODE = "inference"  # sweeps written before modes existed measured under inference_mode
MODE_QUANTITIES = (  # table2_modes: (quantity, Table2Row field of the measured ratio, of the paper's)
    ("DRNet / RSIDE fps at batch 1", "speedup_b1_measured", "speedup_b1_paper"),
    *((f"RSIDE / DRNet memory per image: {d.label}", d.ratio, "mem_ratio_paper") for d in MEMORY_DEFINITIONS),
)


class EstimateError(ValueError):
    """A run group's estimates cannot be computed (e.g. its seeds evaluated different frames)."""


@dataclass
class Selection:
    """Run groups chosen for each table row, with their per-frame statistics loaded once."""

    table1: dict[tuple[str, str], RunGroup] = field(default_factory=dict)  # (arch, backbone)
    table3: dict[tuple[str, tuple[bool, bool, bool]], RunGroup] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    accept_code_drift: bool = False  # bench report --accept-code-drift: differing code is a note, not a difference
    repeats: list[RepeatedRun] = field(default_factory=list)  # run directories left out: a seed counts once
    _stats: dict[int, list[FrameStats]] = field(default_factory=dict, repr=False)

    def stats(self, group: RunGroup) -> list[FrameStats]:
        key = id(group)
        if key not in self._stats:
            self._stats[key] = [frame_stats(r.per_image) for r in group.runs]
        return self._stats[key]

    @property
    def groups(self) -> list[RunGroup]:
        seen: dict[int, RunGroup] = {}
        for g in [*self.table1.values(), *self.table3.values()]:
            seen.setdefault(id(g), g)
        return list(seen.values())


@dataclass
class Tables:
    """Everything the CSVs and the HTML show, as typed rows (``bench.report.records``)."""

    table1: list[Table1Row]
    table2: list[Table2Row]
    table3: list[Table3Row]
    paired: list[PairedRow]
    selection: Selection

    @cached_property
    def table2_modes(self) -> list[Table2ModeRow]:
        """``table2_modes(self.table2)``."""
        return table2_modes(self.table2)


def select_runs(runs: Iterable[EvalRun]) -> Selection:
    """Assign the run groups (of one suite) to Table 1 and Table 3 rows (see the module docstring), each run
    directory that repeats another left out (bench.report.repeats)."""
    runs, repeats = count_once(runs)
    sel = Selection(repeats=repeats)
    groups = group_runs(runs)
    sel.notes.extend(split_notes(groups))
    for g in groups:
        options = [r.options for r in g.runs]
        if any(o != options[0] for o in options):
            sel.notes.append(f"{g.label}: seeds were run with different options; using seed {g.first.seed}'s")
        run = g.first
        if is_default_options(run.options):
            _claim(sel.table1, (run.arch, run.backbone), g, f"{run.arch}-{run.backbone}", sel.notes, "Table 1")
        if run.arch == "drnet":
            _claim(
                sel.table3,
                (run.backbone, switches_of(run.options)),
                g,
                f"drnet-{run.backbone}",
                sel.notes,
                "Table 3",
            )
    return sel


def build_tables(
    runs: Iterable[EvalRun],
    sweeps: Sequence[SpeedSweep],
    reduction: str = "rside",
    n_boot: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
    accept_code_drift: bool = False,
) -> Tables:
    """Select runs (those of the reported suite) and build Tables 1-3 and the DRNet-vs-RSIDE paired tests.
    ``accept_code_drift``: runs whose code fingerprints differ are paired, and every verdict on them says so."""
    sel = select_runs(runs)
    sel.accept_code_drift = accept_code_drift
    est = _Estimator(sel, reduction, n_boot, seed)
    return Tables(
        table1=table1(sel, est),
        table2=table2(sweeps),
        table3=table3(sel, est),
        paired=paired_table(sel, est),
        selection=sel,
    )


class _Estimator:
    """Bootstrap estimates and paired tests, cached per run group."""

    def __init__(self, sel: Selection, reduction: str, n_boot: int, seed: int):
        self.sel, self.reduction, self.n_boot, self.seed = sel, reduction, n_boot, seed
        self._cache: dict[int, dict[str, Estimate] | EstimateError] = {}

    def estimates(self, group: RunGroup) -> dict[str, Estimate]:
        """Metric -> Estimate; EstimateError naming the group if they cannot be computed (cached either way)."""
        if id(group) not in self._cache:
            try:
                self._cache[id(group)] = bootstrap_estimate(
                    self.sel.stats(group), self.reduction, n_boot=self.n_boot, seed=self.seed
                )
                self._check_against_metrics_json(group, self._cache[id(group)])
            except ValueError as err:
                self._cache[id(group)] = EstimateError(f"{group.label}: {err}")
        cached = self._cache[id(group)]
        if isinstance(cached, EstimateError):
            raise cached
        return cached

    def paired(self, a: RunGroup, b: RunGroup, tests: Sequence[tuple[str, bool]]):
        """(metric, relative) -> PairedDifference of a vs b for each of ``tests``."""
        return paired_differences(
            self.sel.stats(a), self.sel.stats(b), self.reduction, tests, n_boot=self.n_boot, seed=self.seed
        )

    def _check_against_metrics_json(self, group: RunGroup, estimates: dict[str, Estimate]) -> None:
        """per_image.csv and metrics.json come from the same evaluation; say so loudly if they disagree."""
        for i, run in enumerate(group.runs):
            written = run.metrics["reductions"].get(self.reduction)
            if not written:
                continue
            recomputed = {m: e.per_seed[i] for m, e in estimates.items()}
            bad = [
                m
                for m in recomputed
                if m in written
                and written[m] is not None
                and not math.isclose(recomputed[m], written[m], rel_tol=1e-6, abs_tol=1e-9)
            ]
            if bad:
                self.sel.notes.append(
                    f"{run.run_id}: metrics.json and per_image.csv disagree on {', '.join(bad)} "
                    f"({self.reduction} reduction); the tables use per_image.csv"
                )


# ------------------------------------------------------------------------------------------ Tables 1 and 3


def table1(sel: Selection, est: _Estimator) -> list[Table1Row]:
    """Table 1 rows: every paper row (quoted methods marked 'not in harness'), then measured-only rows."""
    paper = paper_table1()
    rows = []
    for p in paper.itertuples(index=False):
        paper_vals = {m: getattr(p, m) for m in TABLE1_METRICS}
        group = sel.table1.get((p.arch, p.backbone))
        acc = _accuracy(group, paper_vals, est, TABLE1_METRICS, quoted=p.arch not in HARNESS_ARCHS)
        rows.append(Table1Row(method=p.method, arch=p.arch, backbone=p.backbone, source=p.source, **acc))
    in_paper = {(p.arch, p.backbone) for p in paper.itertuples(index=False)}
    for (arch, backbone), g in sorted(sel.table1.items()):
        if (arch, backbone) not in in_paper:
            acc = _accuracy(g, dict.fromkeys(TABLE1_METRICS, math.nan), est, TABLE1_METRICS)
            method = f"{pretty_arch(arch)} {backbone}"
            rows.append(Table1Row(method=method, arch=arch, backbone=backbone, source="", **acc))
    return rows


def table3(sel: Selection, est: _Estimator) -> list[Table3Row]:
    """Table 3 rows per ablated backbone (ResNet-152 always): the four paper variants, then other combos."""
    paper = {switches_of(p._asdict()): p for p in paper_table3().itertuples(index=False)}
    backbones = sorted(
        {b for b, sw in sel.table3 if sw != FULL_SWITCHES} | {PAPER_ABLATION_BACKBONE},
        key=lambda b: (b != PAPER_ABLATION_BACKBONE, b),
    )
    rows = []
    for backbone in backbones:
        full = sel.table3.get((backbone, FULL_SWITCHES))
        combos = list(TABLE3_VARIANTS) + sorted(
            sw for b, sw in sel.table3 if b == backbone and sw not in TABLE3_VARIANTS
        )
        for sw in combos:
            p = paper.get(sw) if backbone == PAPER_ABLATION_BACKBONE else None
            group = sel.table3.get((backbone, sw))
            row = _table3_row(backbone, sw, p, paper.get(FULL_SWITCHES), group, full, est)
            rows.append(
                replace(row, **_second_branch_gap(sel.table3.get((backbone, ablated("second_branch"))), group, sw, est))
            )
    return rows


def _second_branch_gap(second: RunGroup | None, group: RunGroup | None, sw, est: _Estimator) -> dict[str, float]:
    """RMSE('no second branch') - RMSE(``group``) on their common frames (paired, seeds pooled), for the other
    single ablations: the interval Table 3's "second branch matters most" is judged on; none elsewhere."""
    if second is None or group is None or sw not in (ablated("diagonal"), ablated("aux_losses")):
        return {}
    try:
        d = est.paired(second, group, [("rmse", False)])[("rmse", False)]
    except ValueError:
        return {}
    return {
        "second_branch_gap_measured": d.diff,
        "second_branch_gap_ci_low": d.ci_low,
        "second_branch_gap_ci_high": d.ci_high,
        "second_branch_gap_p": d.p_value,
    }


def _table3_row(backbone: str, sw, p, full_paper, group: RunGroup | None, full: RunGroup | None, est) -> Table3Row:
    """One Table 3 row: ``p`` is the paper's row of ``sw`` (None off ResNet-152), ``full_paper`` its full model."""
    paper_vals = {m: (getattr(p, m) if p is not None else math.nan) for m in TABLE3_METRICS}
    return Table3Row(
        variant=variant_name(sw),
        backbone=backbone,
        diagonal=sw[0],
        aux_losses=sw[1],
        second_branch=sw[2],
        source=p.source if p is not None else "",
        **_accuracy(group, paper_vals, est, TABLE3_METRICS),
        rmse_vs_full_paper=(p.rmse - full_paper.rmse) if p is not None and sw != FULL_SWITCHES else math.nan,
        **_vs_full(group, full, sw, est),
    )


def pair_gate(sel: Selection, *groups: RunGroup) -> dict[str, str]:
    """What decides whether a comparison of ``groups`` may be judged, as the PairedRow fields of that name:
    regime differences, runs not converged or of unknown convergence, weights selected on the test set, and
    the notes every verdict on it carries (accepted code drift, imported weights without a curve, run
    directories counted once)."""
    comparability = compare_groups(*groups, accept_code_drift=sel.accept_code_drift)
    convergence = check_convergence(*groups)
    notes = [
        *comparability.notes,
        *([convergence.note] if convergence.note else []),
        *repeat_notes(sel.repeats, *groups),
    ]
    return {
        "not_comparable": "; ".join(comparability.differences),
        "not_converged": "; ".join(convergence.not_converged),
        "convergence_unknown": "; ".join(convergence.unknown),
        "test_selected": "; ".join(test_set_selection(*groups)),
        "notes": "; ".join(notes),
    }


def _vs_full(group: RunGroup | None, full: RunGroup | None, sw, est: _Estimator) -> dict[str, Any]:
    """The Table3Row fields of the paired change against the full model (none where there is no pair)."""
    if group is None or full is None or sw == FULL_SWITCHES:
        return {}
    out: dict[str, Any] = {
        **{f"vs_full_{k}": v for k, v in pair_gate(est.sel, group, full).items()},
        "vs_full_seeds": min(len(group.runs), len(full.runs)),
    }
    try:
        res = est.paired(group, full, [("rmse", False), ("rmse", True)])
    except ValueError:
        return out
    d, r = res[("rmse", False)], res[("rmse", True)]
    return {
        **out,
        "rmse_vs_full_measured": d.diff,
        "rmse_vs_full_ci_low": d.ci_low,
        "rmse_vs_full_ci_high": d.ci_high,
        "rmse_vs_full_p": d.p_value,
        "rmse_vs_full_rel": r.diff,
        "rmse_vs_full_rel_ci_low": r.ci_low,
        "rmse_vs_full_rel_ci_high": r.ci_high,
        "rmse_vs_full_frames": d.n_frames,
        "vs_full_spread": _spread(r, group, full),
    }


def _accuracy(
    group: RunGroup | None, paper_vals: dict, est: _Estimator, metrics: Sequence[str], quoted: bool = False
) -> dict[str, Any]:
    """The fields Table 1 and Table 3 rows share (status, run, seeds, ..., one MetricCells per metric, note):
    ``group``'s estimates next to ``paper_vals``; ``quoted``: a method this harness does not implement."""
    if quoted:
        return _accuracy_fields(NOT_IN_HARNESS, None, paper_vals, None, metrics)
    if group is None:
        return _accuracy_fields(MISSING, None, paper_vals, None, metrics)
    try:
        estimates = est.estimates(group)
    except EstimateError as err:
        return {**_accuracy_fields(ERROR, group, paper_vals, None, metrics), "note": str(err)}
    has_paper = any(not _isnan(v) for v in paper_vals.values())
    return _accuracy_fields(MEASURED if has_paper else NO_PAPER, group, paper_vals, estimates, metrics)


def _accuracy_fields(
    status: str,
    group: RunGroup | None,
    paper_vals: dict,
    estimates: dict[str, Estimate] | None,
    metrics: Sequence[str],
) -> dict[str, Any]:
    first = next(iter(estimates.values())) if estimates else None
    return {
        "status": status,
        "run": group.label if group else "",
        "seeds": len(group.runs) if group else 0,
        "n_frames": first.n_frames if first else math.nan,
        "regime": short_regime(group) if group else "",
        "paper_regime": _paper_regime(group) if group else "",
        "ci_covers": first.covers if first else "",
        "test_selected": "; ".join(test_set_selection(group)) if group else "",
        "note": "",
        **{m: _metric_cells(paper_vals[m], estimates.get(m) if estimates else None) for m in metrics},
    }


def _metric_cells(paper: float, e: Estimate | None) -> MetricCells:
    value = e.value if e else math.nan
    return MetricCells(
        paper=paper,
        measured=value,
        diff=value - paper,
        ci_low=e.ci_low if e else math.nan,
        ci_high=e.ci_high if e else math.nan,
        seed_std=e.seed_std if e else math.nan,
    )


# -------------------------------------------------------------------------------------- DRNet vs RSIDE


def paired_table(sel: Selection, est: _Estimator) -> list[PairedRow]:
    """DRNet minus RSIDE per backbone both were run on, paired on common frames (paired bootstrap)."""
    paper = paper_table1().set_index(["arch", "backbone", "source"])
    backbones = sorted({b for a, b in sel.table1 if a == "drnet"} & {b for a, b in sel.table1 if a == "rside"})
    return [_paired_row(sel, est, paper, backbone) for backbone in backbones]


def _paired_row(sel: Selection, est: _Estimator, paper: pd.DataFrame, backbone: str) -> PairedRow:
    d, r = sel.table1[("drnet", backbone)], sel.table1[("rside", backbone)]
    sd, sr = sel.stats(d), sel.stats(r)
    common = common_frames([*sd, *sr])
    row = PairedRow(
        backbone=backbone,
        data=_data_source(d, r),
        drnet_run=d.label,
        rside_run=r.label,
        drnet_regime=short_regime(d),
        rside_regime=short_regime(r),
        **pair_gate(sel, d, r),
        paper_regime=_pair_paper_regime(d, r),
        seeds_drnet=len(d.runs),
        seeds_rside=len(r.runs),
        frames_common=len(common),
        frames_drnet=len(sd[0].frames),
        frames_rside=len(sr[0].frames),
        same_frames=len(common) == len(sd[0].frames) == len(sr[0].frames),
        rmse_diff_paper=_paper_rmse_diff(paper, backbone),
        rmse_rel_paper=_paper_rmse_diff(paper, backbone, relative=True),
    )
    if len(common) == 0:
        return row
    res = est.paired(d, r, [*((m, False) for m in TABLE1_METRICS), ("rmse", True)])
    diffs = {m: _paired_cells(res[(m, False)]) for m in TABLE1_METRICS}
    rel = res[("rmse", True)]
    rmse_drnet, rmse_rside = _rmse_pair(est, d, r, common)
    return replace(
        row,
        **diffs,
        rmse_rel=RelativeCells(rel.diff, rel.ci_low, rel.ci_high),
        rmse_rel_spread=_spread(rel, d, r),
        ci_covers=rel.covers,
        rmse_drnet=rmse_drnet,
        rmse_rside=rmse_rside,
    )


def _spread(t: PairedDifference, a: RunGroup, b: RunGroup) -> SpreadCells:
    """What ``t``'s interval is made of, with each model's mean recorded wall time per run."""
    return SpreadCells(t.seed_var_a, t.seed_var_b, t.frame_var, t.frame_seed_var, _wall_s(a), _wall_s(b))


def _wall_s(group: RunGroup) -> float:
    """Mean recorded wall time of one run of ``group`` (provenance wall_time_s); NaN where none is recorded."""
    walls = [float(w) for r in group.runs if isinstance(w := r.provenance.get("wall_time_s"), int | float)]
    return float(np.mean(walls)) if walls else math.nan


def _paired_cells(t: PairedDifference) -> PairedCells:
    return PairedCells(diff=t.diff, ci_low=t.ci_low, ci_high=t.ci_high, p=t.p_value)


def _paper_rmse_diff(paper: pd.DataFrame, backbone: str, relative: bool = False) -> float:
    """The paper's DRNet RMSE minus its RSIDE RMSE on ``backbone`` (Table 1; ``relative``: / RSIDE's); NaN where
    it lacks either."""
    try:
        pd_paper = paper.loc[("drnet", backbone, "drnet-paper"), "rmse"]
        pr_paper = paper.loc[("rside", backbone, "rside-paper"), "rmse"]
    except KeyError:
        return math.nan
    return float((pd_paper - pr_paper) / pr_paper if relative else pd_paper - pr_paper)


def _data_source(*groups: RunGroup) -> str:
    """The data source(s) of the runs (e.g. 'synthetic', 'nyu-labeled'), from metrics.json."""
    sources = sorted({str((r.metrics.get("data") or {}).get("source", "?")) for g in groups for r in g.runs})
    return "/".join(sources)


def _rmse_pair(est: _Estimator, d: RunGroup, r: RunGroup, frames: np.ndarray) -> tuple[float, float]:
    def mean_rmse(g: RunGroup) -> float:
        return float(np.mean([point_metrics(fs.take(frames), est.reduction)["rmse"] for fs in est.sel.stats(g)]))

    return mean_rmse(d), mean_rmse(r)


# --------------------------------------------------------------------------------------------- Table 2


def table2(sweeps: Sequence[SpeedSweep]) -> list[Table2Row]:
    """Table 2 rows: each paper model with every sweep that measured it (or 'missing'), then the rest.

    speedup_b1 = fps_b1(DRNet X) / fps_b1(RSIDE X) and memory ratios RSIDE X / DRNet X, on DRNet rows: from
    the paper's own rows (its "RAM / img": ``mem_ratio_paper``) and from one sweep and mode, once per memory
    definition (``MEMORY_DEFINITIONS``: peak at batch 1, marginal slope, peak at the largest batch / batch).
    """
    paper = paper_table2()
    paper_by = {(p.arch, p.backbone): p for p in paper.itertuples(index=False)}
    measured = _speed_rows(sweeps)
    rows = []
    for p in paper.itertuples(index=False):
        quoted = _paper_speed(p, paper_by)
        matches = [m for m in measured if (m.arch, m.backbone) == (p.arch, p.backbone)]
        rows += [replace(m, **quoted, status=MEASURED) for m in matches] or [Table2Row(**quoted, status=MISSING)]
    return rows + [m for m in measured if (m.arch, m.backbone) not in paper_by]


def _paper_speed(p, paper_by) -> dict[str, Any]:
    """The Table2Row fields the paper's row ``p`` fills (its method, values and, on DRNet rows, its ratios)."""
    rside = paper_by.get(("rside", p.backbone))
    is_pair = p.arch == "drnet" and rside is not None
    return {
        "method": p.method,
        "arch": p.arch,
        "backbone": p.backbone,
        "source": p.source,
        "paper_device": PAPER_TABLE2_DEVICE,
        "fps_b1_paper": p.fps_b1,
        "fps_max_paper": p.fps_max,
        "fps_max_batch_paper": p.max_fps_batch,
        "net_ram_paper_mb": p.net_ram_mb,
        "ram_per_img_paper_mb": p.ram_per_img_mb,
        "speedup_b1_paper": p.fps_b1 / rside.fps_b1 if is_pair else math.nan,
        "mem_ratio_paper": rside.ram_per_img_mb / p.ram_per_img_mb if is_pair else math.nan,
    }


def _speed_rows(sweeps: Sequence[SpeedSweep]) -> list[Table2Row]:
    """One row per model (default options) and mode of each sweep, status 'no paper value' until ``table2``
    matches it with the paper's row; DRNet rows carry their ratios to the sweep's RSIDE (``_speed_ratios``)."""
    rows = []
    for sw in sweeps:
        summary = _default_summary(sw)
        for r in summary.to_dict("records"):
            rows.append(
                Table2Row(
                    method=f"{pretty_arch(r['arch'])} {r['backbone']}",
                    source="",
                    status=NO_PAPER,
                    **_speed_measured(sw, r),
                    **_speed_ratios(sw, summary, r),
                )
            )
    return rows


def _default_summary(sweep: SpeedSweep) -> pd.DataFrame:
    """The sweep's speed_summary.csv rows with default options; ``mode`` filled and columns added (NaN) that
    sweeps written before them lack."""
    df = sweep.summary[[is_default_options(o) for o in sweep.summary["options"]]].copy()
    df["mode"] = df["mode"].fillna(DEFAULT_MODE) if "mode" in df else DEFAULT_MODE
    for column in (*(d.summary_column for d in MEMORY_DEFINITIONS), "net_ram_loaded_mib", "mem_max_b_batch"):
        if column not in df:
            df[column] = math.nan
    return df


def _speed_measured(sweep: SpeedSweep, r: dict) -> dict[str, Any]:
    """The Table2Row fields one speed_summary.csv row fills, its values as read, and the sweep's CPU load."""
    load, count = sweep.cpu_load if r["device_kind"] == "cpu" else (math.nan, None)
    return {
        "arch": r["arch"],
        "backbone": r["backbone"],
        "sweep": sweep.sweep_id,
        "cpu_load_max": load,
        "cpu_count": float(count) if count else math.nan,
        "device_kind": r["device_kind"],
        "device_name": r["device_name"],
        "dtype": r["dtype"],
        "input": r["input"],
        "mode": r["mode"],
        "fps_b1_measured": r["fps_b1"],
        "fps_max_measured": r["fps_max"],
        "fps_max_batch_measured": r["fps_max_batch"],
        "max_batch_fit_measured": r["max_batch_fit"],
        "net_ram_measured_mib": r["net_ram_mib"],
        "net_ram_loaded_measured_mib": r["net_ram_loaded_mib"],
        **{d.value: r[d.summary_column] for d in MEMORY_DEFINITIONS},
        "ram_per_img_r2": r["ram_per_img_r2"],
        "ram_per_img_source": r["ram_per_img_source"],
        "mem_max_b_batch_measured": r["mem_max_b_batch"],
    }


def _speed_ratios(sweep: SpeedSweep, summary: pd.DataFrame, r: dict) -> dict[str, float]:
    """DRNet / RSIDE fps at batch 1 and RSIDE / DRNet memory per definition, each with its 95 % interval over the
    sweep's pairs of timing sessions (speed_pairs.csv, ``bench.report.ratios``), for a DRNet row whose sweep
    measured RSIDE on the same backbone, device, dtype, input and mode; none otherwise. A sweep without
    speed_pairs.csv rows (one session per model) gives the ratios of its summary values, without intervals."""
    same = summary[
        (summary["backbone"] == r["backbone"])
        & (summary["device_name"] == r["device_name"])
        & (summary["dtype"] == r["dtype"])
        & (summary["input"] == r["input"])
        & (summary["mode"] == r["mode"])
    ]
    rside = same[same["arch"] == "rside"]
    if r["arch"] != "drnet" or not len(rside):
        return {}
    rs = rside.iloc[0]
    pairs = _session_pairs(sweep, r, rs)
    if pairs is None:
        return {
            "pairs": 1,
            "speedup_b1_measured": _ratio(r["fps_b1"], rs["fps_b1"]),
            **{d.ratio: _ratio(rs[d.summary_column], r[d.summary_column]) for d in MEMORY_DEFINITIONS},
        }
    out: dict[str, float] = {"pairs": len(pairs)}
    for ratio, ci, column in (
        ("speedup_b1_measured", "speedup_b1", "speedup_b1"),
        *((d.ratio, d.ci, d.pair_column) for d in MEMORY_DEFINITIONS),
    ):
        interval = ratio_interval(pd.to_numeric(pairs[column], errors="coerce"))
        out.update({ratio: interval.estimate, f"{ci}_ci_low": interval.low, f"{ci}_ci_high": interval.high})
    return out


def _session_pairs(sweep: SpeedSweep, drnet: dict, rside: pd.Series) -> pd.DataFrame | None:
    """The speed_pairs.csv rows of this DRNet model and RSIDE model in this mode; None when the sweep has none
    (written before timing sessions, or one session per model)."""
    pairs = sweep.pairs
    if pairs is None or pairs.empty or "name" not in sweep.summary:
        return None
    hit = pairs[
        (pairs["drnet"] == drnet["name"])
        & (pairs["rside"] == rside["name"])
        & (pairs["mode"] == drnet["mode"])
        & (pairs["device_name"] == drnet["device_name"])
    ]
    return hit if len(hit) else None


def table2_modes(t2: Sequence[Table2Row]) -> list[Table2ModeRow]:
    """Which sweep mode's DRNet-vs-RSIDE ratios come closest to the paper's: one row per (sweep, backbone,
    quantity, mode) with the measured and the paper's ratio and their distance |ln(measured / paper)|;
    ``closest_mode`` names, on every row of a (sweep, backbone, quantity), the mode with the smallest distance.
    """
    rows = []
    for r in t2:
        if r.arch != "drnet" or r.status not in (MEASURED, NO_PAPER):
            continue
        for quantity, measured_field, paper_field in MODE_QUANTITIES:
            measured, paper = _float(getattr(r, measured_field)), _float(getattr(r, paper_field))
            if math.isnan(measured) or math.isnan(paper) or measured <= 0 or paper <= 0:
                continue
            rows.append(
                Table2ModeRow(
                    backbone=r.backbone,
                    sweep=r.sweep,
                    device_kind=r.device_kind,
                    device_name=r.device_name,
                    quantity=quantity,
                    mode=r.mode,
                    measured=measured,
                    paper=paper,
                    log_distance=abs(math.log(measured / paper)),
                )
            )
    closest: dict[tuple[str, str, str], Table2ModeRow] = {}
    for row in rows:  # the first of equally close modes, as pandas' idxmin
        key = (row.sweep, row.backbone, row.quantity)
        if key not in closest or row.log_distance < closest[key].log_distance:
            closest[key] = row
    return [replace(row, closest_mode=closest[(row.sweep, row.backbone, row.quantity)].mode) for row in rows]


# ------------------------------------------------------------------------------------------------ helpers


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _ratio(a, b) -> float:
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return math.nan
    return a / b if b > 0 and math.isfinite(a) and math.isfinite(b) else math.nan


def _paper_regime(group: RunGroup) -> str:
    """'matches' or 'differs: <what>' against the paper's regime (bench.report.regime)."""
    run = group.first
    diffs = paper_differences(regime_of(run), int(run.metrics["n_frames"]))
    return "matches" if not diffs else "differs: " + "; ".join(diffs)


def _pair_paper_regime(*groups: RunGroup) -> str:
    """'matches' when every group is in the paper's regime, else the first group's differences."""
    texts = [_paper_regime(g) for g in groups]
    return next((t for t in texts if t != "matches"), "matches")


def _claim(table: dict, key, group: RunGroup, canonical: str, notes: list[str], what: str) -> None:
    current = table.get(key)
    if current is None:
        table[key] = group
        return
    keep, drop = (
        (group, current) if group.first.name == canonical and current.first.name != canonical else (current, group)
    )
    table[key] = keep
    notes.append(f"{what}: {drop.label} matches the same row as {keep.label}; using {keep.label}")


def pretty_arch(arch: str) -> str:
    """Display name of an architecture: RSIDE, DRNet, or the registered name for any other."""
    return {"rside": "RSIDE", "drnet": "DRNet"}.get(arch, arch)


def _isnan(v) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False
