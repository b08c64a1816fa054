"""The paper's Tables 1-3 as pandas DataFrames: paper value, measured value, difference, bootstrap CI.

Which run fills which row:
- Table 1: runs of the chosen suite with default options (no Table 3 switch off), keyed by (arch, backbone).
- Table 3: DRNet runs of the suite keyed by (backbone, (diagonal, aux_losses, second_branch)); the paper's
  values belong to ResNet-152 and are shown only on ResNet-152 rows. Other backbones get rows too when the
  suite ablates them (the synthetic ablations suite may use a smaller backbone).
- Table 2: every ``speed_summary.csv`` under runs/, default options, one row per model and sweep mode.
  Ratios (DRNet vs RSIDE, same backbone) are taken only inside one sweep and one mode, i.e. one device, dtype,
  input size and mode (memory once per definition); absolute fps and memory are not
  compared with the paper's Tesla P40 numbers (a difference column there would mean nothing).

Every measured row of Tables 1 and 3 carries its regime (``bench.report.regime.short_regime``) and whether it
is the paper's; each paired comparison (DRNet vs RSIDE, ablation vs full model) lists the regime fields on
which its runs differ (empty: comparable), which ``bench.report.claims`` turns into "not comparable".

Where two suite entries claim the same row, the entry named ``<arch>-<backbone>`` wins (else the first by
name) and the others are recorded in ``Selection.notes``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.report.curves import convergence_problems
from bench.report.identity import split_notes
from bench.report.paper import PAPER_TABLE2_DEVICE, paper_table1, paper_table2, paper_table3
from bench.report.regime import group_regime_differences, paper_differences, regime_of, short_regime
from bench.report.runs import EvalRun, RunGroup, SpeedSweep, group_runs, is_default_options, switches_of
from bench.report.stats import (
    BOOTSTRAP_SEED,
    N_BOOTSTRAP,
    Estimate,
    FrameStats,
    bootstrap_estimate,
    common_frames,
    frame_stats,
    paired_differences,
    point_metrics,
)

__all__ = [
    "HARNESS_ARCHS",
    "TABLE1_METRICS",
    "TABLE3_METRICS",
    "EstimateError",
    "Selection",
    "Tables",
    "build_tables",
    "paired_table",
    "select_runs",
    "table1",
    "table2",
    "table2_modes",
    "table3",
]

HARNESS_ARCHS = ("rside", "drnet")  # what this harness implements; other Table 1 rows are quoted only
TABLE1_METRICS = ("rmse", "log10", "delta1", "delta2", "delta3")
TABLE3_METRICS = ("rmse", "delta1", "delta2", "delta3")
FULL_SWITCHES = (True, True, True)
TABLE3_VARIANTS = {  # (diagonal, aux_losses, second_branch) -> the paper's row name
    (True, True, True): "DRNet (all elements)",
    (False, True, True): "no diagonal connections",
    (True, False, True): "no auxiliary losses",
    (True, True, False): "no second branch",
}
PAPER_ABLATION_BACKBONE = "resnet152"
# Status of a table row.
MEASURED, MISSING, NOT_IN_HARNESS, NO_PAPER, ERROR = (
    "measured",
    "missing",
    "not in harness",
    "no paper value",
    "error",
)


class EstimateError(ValueError):
    """A run group's estimates cannot be computed (e.g. its seeds evaluated different frames)."""


@dataclass
class Selection:
    """Run groups chosen for each table row, with their per-frame statistics loaded once."""

    table1: dict[tuple[str, str], RunGroup] = field(default_factory=dict)  # (arch, backbone)
    table3: dict[tuple[str, tuple[bool, bool, bool]], RunGroup] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
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
    """Everything the CSVs and the HTML show."""

    table1: pd.DataFrame
    table2: pd.DataFrame
    table3: pd.DataFrame
    paired: pd.DataFrame
    selection: Selection


def select_runs(runs: Iterable[EvalRun]) -> Selection:
    """Assign the run groups (of one suite) to Table 1 and Table 3 rows (see the module docstring)."""
    sel = Selection()
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
) -> Tables:
    """Select runs (those of the reported suite) and build Tables 1-3 and the DRNet-vs-RSIDE paired tests."""
    sel = select_runs(runs)
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


def table1(sel: Selection, est: _Estimator) -> pd.DataFrame:
    """Table 1 rows: every paper row (quoted methods marked 'not in harness'), then measured-only rows."""
    paper = paper_table1()
    rows = []
    for p in paper.itertuples(index=False):
        key = (p.arch, p.backbone)
        row = {"method": p.method, "arch": p.arch, "backbone": p.backbone, "source": p.source}
        paper_vals = {m: getattr(p, m) for m in TABLE1_METRICS}
        if p.arch not in HARNESS_ARCHS:
            rows.append(_metric_row(row, NOT_IN_HARNESS, None, paper_vals, None, TABLE1_METRICS))
        else:
            rows.append(_measured_row(row, sel.table1.get(key), paper_vals, est, TABLE1_METRICS))
    in_paper = {(p.arch, p.backbone) for p in paper.itertuples(index=False)}
    for (arch, backbone), g in sorted(sel.table1.items()):
        if (arch, backbone) not in in_paper:
            row = {"method": f"{pretty_arch(arch)} {backbone}", "arch": arch, "backbone": backbone, "source": ""}
            rows.append(_measured_row(row, g, {m: math.nan for m in TABLE1_METRICS}, est, TABLE1_METRICS))
    return pd.DataFrame(rows, columns=_metric_columns(TABLE1_METRICS))


def table3(sel: Selection, est: _Estimator) -> pd.DataFrame:
    """Table 3 rows per ablated backbone (ResNet-152 always): the four paper variants, then other combos."""
    paper = {switches_of(p._asdict()): p for p in paper_table3().itertuples(index=False)}
    backbones = sorted(
        {b for b, sw in sel.table3 if sw != FULL_SWITCHES} | {PAPER_ABLATION_BACKBONE},
        key=lambda b: (b != PAPER_ABLATION_BACKBONE, b),
    )
    full_paper = paper.get(FULL_SWITCHES)
    rows = []
    for backbone in backbones:
        full = sel.table3.get((backbone, FULL_SWITCHES))
        combos = list(TABLE3_VARIANTS) + sorted(
            sw for b, sw in sel.table3 if b == backbone and sw not in TABLE3_VARIANTS
        )
        for sw in combos:
            p = paper.get(sw) if backbone == PAPER_ABLATION_BACKBONE else None
            row = {
                "variant": TABLE3_VARIANTS.get(sw, _variant_name(sw)),
                "arch": "drnet",
                "backbone": backbone,
                "diagonal": sw[0],
                "aux_losses": sw[1],
                "second_branch": sw[2],
                "source": p.source if p is not None else "",
            }
            paper_vals = {m: (getattr(p, m) if p is not None else math.nan) for m in TABLE3_METRICS}
            group = sel.table3.get((backbone, sw))
            out = _measured_row(row, group, paper_vals, est, TABLE3_METRICS)
            out["rmse_vs_full_paper"] = (
                (p.rmse - full_paper.rmse) if p is not None and sw != FULL_SWITCHES else math.nan
            )
            out.update(_vs_full(group, full, sw, est))
            rows.append(out)
    columns = _metric_columns(
        TABLE3_METRICS,
        first=("variant", "arch", "backbone", "diagonal", "aux_losses", "second_branch", "source"),
    )
    return pd.DataFrame(rows, columns=[*columns, *VS_FULL_COLUMNS])


VS_FULL_COLUMNS = (
    "rmse_vs_full_paper",
    "vs_full_not_comparable",
    "vs_full_not_converged",
    "vs_full_seeds",
    "rmse_vs_full_measured",
    "rmse_vs_full_ci_low",
    "rmse_vs_full_ci_high",
    "rmse_vs_full_p",
    "rmse_vs_full_rel",
    "rmse_vs_full_rel_ci_low",
    "rmse_vs_full_rel_ci_high",
    "rmse_vs_full_frames",
)


def _vs_full(group: RunGroup | None, full: RunGroup | None, sw, est: _Estimator) -> dict[str, float]:
    out = dict.fromkeys(VS_FULL_COLUMNS[1:], math.nan)
    out["vs_full_not_comparable"] = out["vs_full_not_converged"] = ""
    if group is None or full is None or sw == FULL_SWITCHES:
        return out
    out["vs_full_not_comparable"] = "; ".join(group_regime_differences(group, full))
    out["vs_full_not_converged"] = "; ".join(convergence_problems(group, full))
    out["vs_full_seeds"] = min(len(group.runs), len(full.runs))
    try:
        res = est.paired(group, full, [("rmse", False), ("rmse", True)])
    except ValueError:
        return out
    d, r = res[("rmse", False)], res[("rmse", True)]
    out.update(
        rmse_vs_full_measured=d.diff,
        rmse_vs_full_ci_low=d.ci_low,
        rmse_vs_full_ci_high=d.ci_high,
        rmse_vs_full_p=d.p_value,
        rmse_vs_full_rel=r.diff,
        rmse_vs_full_rel_ci_low=r.ci_low,
        rmse_vs_full_rel_ci_high=r.ci_high,
        rmse_vs_full_frames=d.n_frames,
    )
    return out


PAIRED_FIRST = (
    "backbone",
    "data",
    "drnet_run",
    "rside_run",
    "drnet_regime",
    "rside_regime",
    "not_comparable",
    "not_converged",
    "paper_regime",
    "seeds_drnet",
    "seeds_rside",
    "ci_covers",
    "frames_common",
    "frames_drnet",
    "frames_rside",
    "same_frames",
    "rmse_drnet",
    "rmse_rside",
    "rmse_diff_paper",
)
PAIRED_REL = ("rmse_rel_diff", "rmse_rel_ci_low", "rmse_rel_ci_high")


def paired_table(sel: Selection, est: _Estimator) -> pd.DataFrame:
    """DRNet minus RSIDE per backbone both were run on, paired on common frames (paired bootstrap)."""
    paper = paper_table1().set_index(["arch", "backbone", "source"])
    rows = []
    for backbone in sorted({b for a, b in sel.table1 if a == "drnet"} & {b for a, b in sel.table1 if a == "rside"}):
        d, r = sel.table1[("drnet", backbone)], sel.table1[("rside", backbone)]
        sd, sr = sel.stats(d), sel.stats(r)
        common = common_frames([*sd, *sr])
        row = {
            "backbone": backbone,
            "data": _data_source(d, r),
            "drnet_run": d.label,
            "rside_run": r.label,
            "drnet_regime": short_regime(d),
            "rside_regime": short_regime(r),
            "not_comparable": "; ".join(group_regime_differences(d, r)),
            "not_converged": "; ".join(convergence_problems(d, r)),
            "paper_regime": _pair_paper_regime(d, r),
            "seeds_drnet": len(d.runs),
            "seeds_rside": len(r.runs),
            "frames_common": len(common),
            "frames_drnet": len(sd[0].frames),
            "frames_rside": len(sr[0].frames),
            "same_frames": len(common) == len(sd[0].frames) == len(sr[0].frames),
        }
        try:
            pd_paper = paper.loc[("drnet", backbone, "drnet-paper"), "rmse"]
            pr_paper = paper.loc[("rside", backbone, "rside-paper"), "rmse"]
            row["rmse_diff_paper"] = float(pd_paper - pr_paper)
        except KeyError:
            row["rmse_diff_paper"] = math.nan
        if len(common) == 0:
            rows.append(row)
            continue
        res = est.paired(d, r, [*((m, False) for m in TABLE1_METRICS), ("rmse", True)])
        for m in TABLE1_METRICS:
            t = res[(m, False)]
            row.update({f"{m}_diff": t.diff, f"{m}_ci_low": t.ci_low, f"{m}_ci_high": t.ci_high, f"{m}_p": t.p_value})
        rel = res[("rmse", True)]
        row.update(
            rmse_rel_diff=rel.diff, rmse_rel_ci_low=rel.ci_low, rmse_rel_ci_high=rel.ci_high, ci_covers=rel.covers
        )
        row["rmse_drnet"], row["rmse_rside"] = _rmse_pair(est, d, r, common)
        rows.append(row)
    columns = [
        *PAIRED_FIRST,
        *(f"{m}_{s}" for m in TABLE1_METRICS for s in ("diff", "ci_low", "ci_high", "p")),
        *PAIRED_REL,
    ]
    return pd.DataFrame(rows, columns=columns)


def _data_source(*groups: RunGroup) -> str:
    """The data source(s) of the runs (e.g. 'synthetic', 'nyu-labeled'), from metrics.json."""
    sources = sorted({str((r.metrics.get("data") or {}).get("source", "?")) for g in groups for r in g.runs})
    return "/".join(sources)


def _rmse_pair(est: _Estimator, d: RunGroup, r: RunGroup, frames: np.ndarray) -> tuple[float, float]:
    def mean_rmse(g: RunGroup) -> float:
        return float(np.mean([point_metrics(fs.take(frames), est.reduction)["rmse"] for fs in est.sel.stats(g)]))

    return mean_rmse(d), mean_rmse(r)


TABLE2_COLUMNS = (
    "method",
    "arch",
    "backbone",
    "source",
    "status",
    "sweep",
    "device_kind",
    "device_name",
    "dtype",
    "input",
    "mode",
    "paper_device",
    "fps_b1_paper",
    "fps_b1_measured",
    "fps_max_paper",
    "fps_max_measured",
    "fps_max_batch_paper",
    "fps_max_batch_measured",
    "max_batch_fit_measured",
    "net_ram_paper_mb",
    "net_ram_measured_mib",
    "net_ram_loaded_measured_mib",
    "ram_per_img_paper_mb",
    "mem_b1_measured_mib",
    "ram_per_img_measured_mib",
    "ram_per_img_r2",
    "ram_per_img_source",
    "mem_max_b_per_img_measured_mib",
    "mem_max_b_batch_measured",
    "speedup_b1_paper",
    "speedup_b1_measured",
    "speedup_b1_low",
    "speedup_b1_high",
    "mem_ratio_paper",
    "mem_ratio_b1_measured",
    "mem_ratio_measured",
    "mem_ratio_max_b_measured",
)
# Memory per image, three definitions (the paper never says which its "RAM / img" is): table2 column of the
# measured value -> (column of the RSIDE / DRNet ratio, label). The slope keeps the historical column names.
MEMORY_DEFINITIONS = {
    "mem_b1_measured_mib": ("mem_ratio_b1_measured", "peak at batch 1"),
    "ram_per_img_measured_mib": ("mem_ratio_measured", "marginal slope"),
    "mem_max_b_per_img_measured_mib": ("mem_ratio_max_b_measured", "peak at the largest batch / batch"),
}
SUMMARY_MEMORY = {  # speed_summary.csv column -> table2 column, per definition
    "mem_b1_mib": "mem_b1_measured_mib",
    "ram_per_img_mib": "ram_per_img_measured_mib",
    "mem_max_b_per_img_mib": "mem_max_b_per_img_measured_mib",
}
DEFAULT_MODE = "inference"  # sweeps written before modes existed measured under inference_mode
MODE_QUANTITIES = {  # table2_modes: the ratio compared with the paper's, measured column -> paper column
    "speedup_b1_measured": ("speedup_b1_paper", "DRNet / RSIDE fps at batch 1"),
    **{
        ratio: ("mem_ratio_paper", f"RSIDE / DRNet memory per image: {label}")
        for ratio, label in MEMORY_DEFINITIONS.values()
    },
}
TABLE2_MODES_COLUMNS = (
    "backbone",
    "sweep",
    "device_kind",
    "device_name",
    "quantity",
    "mode",
    "measured",
    "paper",
    "log_distance",
    "closest_mode",
)


def table2(sweeps: Sequence[SpeedSweep]) -> pd.DataFrame:
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
        base = {
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
            **_paper_ratios(p, paper_by),
        }
        matches = [m for m in measured if (m["arch"], m["backbone"]) == (p.arch, p.backbone)]
        rows += [{**base, **m, "status": MEASURED} for m in matches] or [{**base, "status": MISSING}]
    for m in measured:
        if (m["arch"], m["backbone"]) not in paper_by:
            rows.append({"method": f"{pretty_arch(m['arch'])} {m['backbone']}", "source": "", **m, "status": NO_PAPER})
    return pd.DataFrame(rows, columns=TABLE2_COLUMNS)


def _paper_ratios(p, paper_by) -> dict[str, float]:
    rside = paper_by.get(("rside", p.backbone))
    if p.arch != "drnet" or rside is None:
        return {"speedup_b1_paper": math.nan, "mem_ratio_paper": math.nan}
    return {
        "speedup_b1_paper": p.fps_b1 / rside.fps_b1,
        "mem_ratio_paper": rside.ram_per_img_mb / p.ram_per_img_mb,
    }


def _speed_rows(sweeps: Sequence[SpeedSweep]) -> list[dict]:
    rows = []
    for sw in sweeps:
        df = sw.summary[[is_default_options(o) for o in sw.summary["options"]]].copy()
        df["mode"] = df["mode"].fillna(DEFAULT_MODE) if "mode" in df else DEFAULT_MODE
        for column in (*SUMMARY_MEMORY, "net_ram_loaded_mib", "mem_max_b_batch"):
            if column not in df:
                df[column] = math.nan  # sweeps written before the column existed
        for r in df.to_dict("records"):
            same = df[
                (df["backbone"] == r["backbone"])
                & (df["device_name"] == r["device_name"])
                & (df["dtype"] == r["dtype"])
                & (df["input"] == r["input"])
                & (df["mode"] == r["mode"])
            ]
            rside = same[same["arch"] == "rside"]
            ratios = {
                "speedup_b1_measured": math.nan,
                "speedup_b1_low": math.nan,
                "speedup_b1_high": math.nan,
                **{ratio: math.nan for ratio, _ in MEMORY_DEFINITIONS.values()},
            }
            if r["arch"] == "drnet" and len(rside):
                rs = rside.iloc[0]
                ratios["speedup_b1_measured"] = _ratio(r["fps_b1"], rs["fps_b1"])
                ratios["speedup_b1_low"], ratios["speedup_b1_high"] = _speedup_range(sw, r, rs)
                for summary_col, table_col in SUMMARY_MEMORY.items():
                    ratios[MEMORY_DEFINITIONS[table_col][0]] = _ratio(rs[summary_col], r[summary_col])
            rows.append(
                {
                    "arch": r["arch"],
                    "backbone": r["backbone"],
                    "sweep": sw.sweep_id,
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
                    **{table_col: r[summary_col] for summary_col, table_col in SUMMARY_MEMORY.items()},
                    "ram_per_img_r2": r["ram_per_img_r2"],
                    "ram_per_img_source": r["ram_per_img_source"],
                    "mem_max_b_batch_measured": r["mem_max_b_batch"],
                    **ratios,
                }
            )
    return rows


def _speedup_range(sweep: SpeedSweep, drnet: dict, rside: pd.Series) -> tuple[float, float]:
    """DRNet / RSIDE fps at batch 1 between the quartiles of the two timings: (DRNet's lower quartile / RSIDE's
    upper, DRNet's upper / RSIDE's lower), each quartile taken as median -+ IQR / 2 (speed.csv); NaN where
    speed.csv has no batch-1 IQR for either. On a shared CPU the repeats of one point spread by 10-20 %, and
    a verdict must hold over that spread, not only at the medians."""
    spreads = [_b1_fps_spread(sweep, row) for row in (drnet, rside)]  # None also where speed.csv disagrees
    if any(sp is None for sp in spreads):
        return math.nan, math.nan
    (d_lo, d_hi), (r_lo, r_hi) = spreads
    return _ratio(d_lo, r_hi), (_ratio(d_hi, r_lo) if r_lo > 0 else math.inf)


def _b1_fps_spread(sweep: SpeedSweep, row) -> tuple[float, float] | None:
    """(median - IQR/2, median + IQR/2) of the fps at batch 1 of ``row``'s model, mode and device; None if absent."""
    pts = sweep.points
    if pts is None or "fps_iqr" not in pts:
        return None
    mode = pts["mode"].fillna(DEFAULT_MODE) if "mode" in pts else pd.Series(DEFAULT_MODE, index=pts.index)
    hit = pts[
        (pts["arch"] == row["arch"])
        & (pts["backbone"] == row["backbone"])
        & (pts["device_name"] == row["device_name"])
        & (mode == row["mode"])
        & (pd.to_numeric(pts["batch"], errors="coerce") == 1)
        & (pts["status"] == "ok")
        & pd.Series([is_default_options(o) for o in pts["options"]], index=pts.index)
    ]
    if hit.empty:
        return None
    median, iqr = _float(hit.iloc[0]["fps_median"]), _float(hit.iloc[0]["fps_iqr"])
    if math.isnan(median) or math.isnan(iqr) or not math.isclose(median, _float(row["fps_b1"]), rel_tol=1e-6):
        return None  # not the point the summary's fps_b1 came from
    return max(median - iqr / 2, 0.0), median + iqr / 2


def table2_modes(t2: pd.DataFrame) -> pd.DataFrame:
    """Which sweep mode's DRNet-vs-RSIDE ratios come closest to the paper's: one row per (sweep, backbone,
    quantity, mode) with the measured and the paper's ratio and their distance |ln(measured / paper)|;
    ``closest_mode`` names, on every row of a (sweep, backbone, quantity), the mode with the smallest distance.
    """
    rows = []
    drnet = t2[(t2["arch"] == "drnet") & t2["status"].isin([MEASURED, NO_PAPER])]
    for r in drnet.to_dict("records"):
        for measured_col, (paper_col, label) in MODE_QUANTITIES.items():
            measured, paper = _float(r.get(measured_col)), _float(r.get(paper_col))
            if math.isnan(measured) or math.isnan(paper) or measured <= 0 or paper <= 0:
                continue
            rows.append(
                {
                    "backbone": r["backbone"],
                    "sweep": r["sweep"],
                    "device_kind": r["device_kind"],
                    "device_name": r["device_name"],
                    "quantity": label,
                    "mode": r["mode"],
                    "measured": measured,
                    "paper": paper,
                    "log_distance": abs(math.log(measured / paper)),
                }
            )
    out = pd.DataFrame(rows, columns=TABLE2_MODES_COLUMNS)
    if out.empty:
        return out
    keys = ["sweep", "backbone", "quantity"]
    best = out.loc[out.groupby(keys, sort=False)["log_distance"].idxmin(), [*keys, "mode"]]
    closest = {tuple(k): m for *k, m in best.itertuples(index=False)}
    out["closest_mode"] = [
        closest[(a, b, c)] for a, b, c in zip(out["sweep"], out["backbone"], out["quantity"], strict=True)
    ]
    return out


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


def _measured_row(row: dict, group: RunGroup | None, paper_vals: dict, est: _Estimator, metrics: Sequence[str]) -> dict:
    if group is None:
        return _metric_row(row, MISSING, None, paper_vals, None, metrics)
    try:
        estimates = est.estimates(group)
    except EstimateError as err:
        out = _metric_row(row, ERROR, group, paper_vals, None, metrics)
        out["note"] = str(err)
        return out
    has_paper = any(not _isnan(v) for v in paper_vals.values())
    return _metric_row(row, MEASURED if has_paper else NO_PAPER, group, paper_vals, estimates, metrics)


def _metric_row(
    row: dict,
    status: str,
    group: RunGroup | None,
    paper_vals: dict,
    estimates: dict[str, Estimate] | None,
    metrics: Sequence[str],
) -> dict:
    out = {
        **row,
        "status": status,
        "run": group.label if group else "",
        "seeds": len(group.runs) if group else 0,
        "n_frames": next(iter(estimates.values())).n_frames if estimates else math.nan,
        "regime": short_regime(group) if group else "",
        "paper_regime": _paper_regime(group) if group else "",
        "ci_covers": next(iter(estimates.values())).covers if estimates else "",
        "note": "",
    }
    for m in metrics:
        e = estimates.get(m) if estimates else None
        value = e.value if e else math.nan
        out.update(
            {
                f"{m}_paper": paper_vals[m],
                f"{m}_measured": value,
                f"{m}_diff": value - paper_vals[m],
                f"{m}_ci_low": e.ci_low if e else math.nan,
                f"{m}_ci_high": e.ci_high if e else math.nan,
                f"{m}_seed_std": e.seed_std if e else math.nan,
            }
        )
    return out


def _metric_columns(metrics: Sequence[str], first: Sequence[str] = ("method", "arch", "backbone", "source")):
    cols = [*first, "status", "run", "seeds", "n_frames", "regime", "paper_regime", "ci_covers"]
    for m in metrics:
        cols += [f"{m}_paper", f"{m}_measured", f"{m}_diff", f"{m}_ci_low", f"{m}_ci_high", f"{m}_seed_std"]
    return [*cols, "note"]


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


def _variant_name(sw: tuple[bool, bool, bool]) -> str:
    off = [n for n, on in zip(("diagonal", "aux losses", "second branch"), sw, strict=True) if not on]
    return "no " + ", no ".join(off)


def pretty_arch(arch: str) -> str:
    """Display name of an architecture: RSIDE, DRNet, or the registered name for any other."""
    return {"rside": "RSIDE", "drnet": "DRNet"}.get(arch, arch)


def _isnan(v) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False
