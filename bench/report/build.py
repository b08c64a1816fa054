"""``bench report``: runs/ -> reports/ (table1-3.csv, paired.csv, summary.csv, missing_runs.csv, report.html).

The report reads run directories only; it never trains or runs a model. Every file is written atomically; every
CSV has the columns of its record in ``bench.report.records`` (report_columns.md defines them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.io import write_text_atomic
from bench.provenance import utc_now
from bench.report.claims import TOLERANCES, Claim, evaluate_claims
from bench.report.curves import convergence_note, load_curves
from bench.report.html import Figure, ReportPage, render_html
from bench.report.paper import PAPER_SOURCES
from bench.report.plots import GridColumn, curves_figure, memory_column, predictions_grid, speed_figure
from bench.report.records import REPORT_CSVS, MissingRow, ProvenanceRow, RepeatedRow, csv_text
from bench.report.runs import EvalRun, RunGroup, RunSet, SpeedSweep, load_runs, select_sweeps
from bench.report.stats import BOOTSTRAP_SEED, CI_LEVEL, N_BOOTSTRAP
from bench.report.summary import summarise
from bench.report.tables import HARNESS_ARCHS, MISSING, Tables, build_tables, pretty_arch

__all__ = [
    "NoUsableRunsError",
    "ReportConfig",
    "ReportResult",
    "check_usable",
    "choose_suite",
    "make_report",
    "missing_runs",
    "provenance_table",
    "repeated_rows",
    "suite_choice_note",
    "suite_purpose",
    "write_csvs",
]

GRID_BACKBONE_ORDER = ("resnet50", "densenet161", "senet154", "resnet152")  # the paper's pairs first


class NoUsableRunsError(ValueError):
    """The runs directory holds nothing to report: it is empty, or no directory in it could be read."""


@dataclass(frozen=True)
class ReportConfig:
    """What ``bench report`` reads and writes."""

    runs_dir: Path = Path("runs")
    out_dir: Path = Path("reports")
    suite: str | None = None  # None: the only suite present, else 'paper', else the most recent
    html: bool = False
    reduction: str = "rside"  # bench.metrics reduction used for every measured number (RSIDE's test.py)
    n_boot: int = N_BOOTSTRAP
    seed: int = BOOTSTRAP_SEED
    accept_code_drift: bool = False  # pair runs whose code differs; every verdict on them says so


@dataclass
class ReportResult:
    suite: str | None
    runset: RunSet
    tables: Tables
    claims: list[Claim]  # the summary: per claim of the paper its headline, then the rows under it
    missing: list[MissingRow]
    written: list[Path] = field(default_factory=list)
    purpose: str | None = None  # the suite's declared purpose (pipeline, miniature, paper); None: unknown
    suite_note: str = ""  # which suites exist and which one was chosen, when there was a choice
    sweeps: list[SpeedSweep] = field(default_factory=list)  # the sweeps judged (runs.select_sweeps)
    sweep_notes: list[str] = field(default_factory=list)  # one line per sweep (or part of one) not used


def make_report(cfg: ReportConfig, log: Callable[[str], None] = print) -> ReportResult:
    """Read cfg.runs_dir, build the tables and claims, write the CSVs (and report.html with cfg.html)."""
    runset = load_runs(cfg.runs_dir)
    check_usable(runset)
    suite = choose_suite(runset, cfg.suite, log)
    for problem in runset.problems:
        log(f"report: unusable run directory {problem.path.name}: {problem.problem}")
    runs = runset.in_suite(suite)
    sweeps, sweep_notes = _sweeps_used(runset, suite, log)
    log(
        f"report: {len(runs)} evaluated run(s) of suite {suite or '(none)'}, "
        f"{len(sweeps)} speed sweep(s) used, {len(runset.problems)} unusable dir(s) in {cfg.runs_dir}"
    )
    tables = build_tables(runs, sweeps, cfg.reduction, cfg.n_boot, cfg.seed, cfg.accept_code_drift)
    for rep in tables.selection.repeats:
        log(f"report: {rep.note}")
    purpose = suite_purpose(suite, log)
    claims = summarise(evaluate_claims(tables, purpose))
    result = ReportResult(
        suite,
        runset,
        tables,
        claims,
        missing_runs(tables, runset, suite),
        purpose=purpose,
        suite_note=suite_choice_note(runset, cfg.suite, suite),
        sweeps=sweeps,
        sweep_notes=sweep_notes,
    )
    result.written += write_csvs(Path(cfg.out_dir), tables, claims, result.missing)
    if cfg.html:
        html = render_html(_page(cfg, result))
        result.written.append(write_text_atomic(Path(cfg.out_dir) / "report.html", html))
    for path in result.written:
        log(f"report: wrote {path}")
    return result


def write_csvs(out: Path, tables: Tables, claims: list[Claim], missing: list[MissingRow]) -> list[Path]:
    """The CSVs of ``REPORT_CSVS`` in ``out``, each with its record's columns; returns the paths written."""
    rows = {
        "table1.csv": tables.table1,
        "table2.csv": tables.table2,
        "table2_modes.csv": tables.table2_modes,
        "table3.csv": tables.table3,
        "paired.csv": tables.paired,
        "summary.csv": claims,
        "missing_runs.csv": missing,
        "repeated_runs.csv": repeated_rows(tables),
    }
    return [write_text_atomic(out / name, csv_text(rows[name], record)) for name, (record, _) in REPORT_CSVS.items()]


def repeated_rows(tables: Tables) -> list[RepeatedRow]:
    """repeated_runs.csv: the run directories left out because they repeat another run (a seed counts once)."""
    return [
        RepeatedRow(rep.run.path.name, rep.run.run_id, rep.run.seed, rep.kept.path.name, rep.why)
        for rep in tables.selection.repeats
    ]


def _sweeps_used(runset: RunSet, suite: str | None, log: Callable[[str], None]) -> tuple[list[SpeedSweep], list[str]]:
    """The sweeps judged (``bench.report.runs.select_sweeps``), and one note (logged) per sweep not used."""
    selection = select_sweeps(runset.sweeps, suite)
    for note in selection.notes:
        log(f"report: {note}")
    return selection.used, selection.notes


def suite_purpose(suite: str | None, log: Callable[[str], None] = print) -> str | None:
    """The declared ``purpose`` of a shipped suite (bench/suites/<suite>.toml); None for any other suite."""
    from bench.config import ConfigError
    from bench.suite import available_suites, load_suite

    if suite is None or suite not in available_suites():
        if suite is not None:
            log(
                f"report: suite {suite!r} is not a shipped suite; its purpose is unknown, so verdicts are "
                "scoped by the runs' regimes only"
            )
        return None
    try:
        return load_suite(suite).purpose
    except ConfigError as err:
        log(f"report: warning: cannot read suite {suite!r} for its purpose: {err}")
        return None


def check_usable(runset: RunSet) -> None:
    """Raise ``NoUsableRunsError`` when ``runset`` has no evaluated run and no speed sweep: an empty
    directory, or one whose every run directory is unreadable (each listed with its problem)."""
    if runset.evals or runset.sweeps:
        return
    if not runset.problems:
        raise NoUsableRunsError(
            f"nothing to report: {runset.root} holds no run directories "
            "(run `bench run --suite smoke` first, or pass --runs DIR)"
        )
    listed = "\n".join(f"  {p.path.name}: {p.problem}" for p in runset.problems)
    raise NoUsableRunsError(
        f"nothing to report: none of the {len(runset.problems)} run directories in "
        f"{runset.root} could be read:\n{listed}"
    )


def suite_choice_note(runset: RunSet, asked: str | None, chosen: str | None) -> str:
    """One line naming the suites in ``runset`` and the one reported, when there were several and none was
    asked for; "" otherwise."""
    if asked is not None or len(runset.suites) <= 1:
        return ""
    why = "the paper suite is preferred" if chosen == "paper" else "the most recently evaluated"
    return (
        f"{runset.root} holds {len(runset.suites)} suites ({', '.join(runset.suites)}); reporting "
        f"{chosen!r} ({why}); pass --suite NAME for another"
    )


def choose_suite(runset: RunSet, suite: str | None, log: Callable[[str], None] = print) -> str | None:
    """The suite to report: the one asked for, else the only one, else 'paper', else the most recent."""
    suites = runset.suites
    if suite is not None:
        if suite not in suites:
            log(
                f"report: warning: no evaluated run of suite {suite!r} in {runset.root} "
                f"(found: {', '.join(suites) or 'none'}); every row will be listed as missing"
            )
        return suite
    if len(suites) <= 1:
        return suites[0] if suites else None
    if "paper" in suites:
        chosen = "paper"
    else:
        latest = {s: max((r.path / "metrics.json").stat().st_mtime for r in runset.in_suite(s)) for s in suites}
        chosen = max(suites, key=lambda s: latest[s])
    log(f"report: several suites: {suite_choice_note(runset, None, chosen)}")
    return chosen


def missing_runs(tables: Tables, runset: RunSet, suite: str | None) -> list[MissingRow]:
    """A row for every table row without a run or sweep, and for every unusable run directory."""
    where_suite = f"suite '{suite}'" if suite else "runs/"
    out = [
        MissingRow(
            f"Table 1 · {r.method} [{r.source}]",
            f"no run with arch={r.arch}, backbone={r.backbone} and default options in {where_suite}",
        )
        for r in tables.table1
        if r.status == MISSING
    ]
    out += [
        MissingRow(
            f"Table 3 · {r.backbone} · {r.variant}",
            f"no DRNet run with backbone={r.backbone}, diagonal={r.diagonal}, aux_losses={r.aux_losses}, "
            f"second_branch={r.second_branch} in {where_suite}",
        )
        for r in tables.table3
        if r.status == MISSING
    ]
    out += [
        MissingRow(
            f"Table 2 · {r.method}",
            f"no speed_summary.csv row for arch={r.arch}, backbone={r.backbone} "
            f"with default options under {runset.root} (bench speed)",
        )
        for r in tables.table2
        if r.status == MISSING
    ]
    return out + [MissingRow(f"unusable run directory {p.path.name}", p.problem) for p in runset.problems]


def provenance_table(groups: list[RunGroup], sweeps: list[SpeedSweep]) -> list[ProvenanceRow]:
    """One row per run and per sweep: what produced it (commit, versions, device, data, protocol, seed)."""
    return [_run_provenance(run) for g in groups for run in g.runs] + [_sweep_provenance(sw) for sw in sweeps]


def _run_provenance(run: EvalRun) -> ProvenanceRow:
    prov, m = run.provenance, run.metrics
    data = m.get("data") or {}
    fingerprint = _find(prov.get("data"), "header_sha256") or _find(data, "header_sha256")
    described = " · ".join(str(x) for x in (data.get("source"), data.get("train_variant"), data.get("split")) if x)
    protocol = m.get("protocol")
    return ProvenanceRow(
        run=run.run_id,
        arch=run.arch,
        backbone=run.backbone,
        options=json.dumps(run.options, sort_keys=True),
        seed=run.seed,
        commit=_commit(prov),
        torch=(prov.get("versions") or {}).get("torch", ""),
        device=_device(prov),
        data=described + (f" (sha256 {fingerprint[:12]}…)" if fingerprint else ""),
        protocol=(protocol or {}).get("name", "") if isinstance(protocol, dict) else str(m.get("protocol", "")),
        checkpoint=f"{m.get('checkpoint', '')} (epoch {_g(m.get('epoch', '?'))})",
        frames=m.get("n_frames"),
        created_utc=prov.get("created_utc", ""),
        wall_time_s=_round(prov.get("wall_time_s")),
    )


def _sweep_provenance(sw: SpeedSweep) -> ProvenanceRow:
    prov, s = sw.provenance, sw.summary
    return ProvenanceRow(
        run=sw.sweep_id,
        arch=", ".join(sorted(set(s["arch"]))),
        backbone=", ".join(sorted(set(s["backbone"]))),
        options="speed sweep",
        seed=prov.get("seed", ""),
        commit=_commit(prov),
        torch=(prov.get("versions") or {}).get("torch", ""),
        device=", ".join(sorted({f"{k} {n}" for k, n in zip(s["device_kind"], s["device_name"], strict=True)})),
        data="none (random input)",
        protocol=", ".join(sorted({f"{d} {i}" for d, i in zip(s["dtype"], s["input"], strict=True)})),
        checkpoint="",
        frames="",
        created_utc=prov.get("created_utc", ""),
        wall_time_s=_round(prov.get("wall_time_s")),
    )


def _page(cfg: ReportConfig, result: ReportResult) -> ReportPage:
    tables = result.tables
    grid, grid_note = _grid(tables)
    curves, curve_notes = _curves(tables.selection.groups)
    evidence = _evidence(tables.selection.groups)
    return ReportPage(
        title="drnet-bench: DRNet vs RSIDE, the paper's claims checked",
        suite=result.suite,
        suite_note=result.suite_note,
        sweep_notes=result.sweep_notes,
        generated_utc=utc_now(),
        settings=_settings(cfg, result),
        claims=result.claims,
        tolerances=TOLERANCES,
        table1=tables.table1,
        table2=tables.table2,
        table2_modes=tables.table2_modes,
        table3=tables.table3,
        paired=tables.paired,
        missing=result.missing,
        notes=tables.selection.notes,
        repeats=repeated_rows(tables),
        provenance=provenance_table(tables.selection.groups, result.sweeps),
        sweeps=[_sweep_figure(sw) for sw in result.sweeps if sw.points is not None and not sw.points.empty],
        grid=grid,
        grid_note=grid_note,
        sources=PAPER_SOURCES,
        evidence=evidence + (f"; suite purpose: {result.purpose}" if result.purpose else ""),
        curves=curves,
        curve_notes=curve_notes,
    )


def _sweep_figure(sw: SpeedSweep) -> dict[str, Any]:
    """The page's entry for one sweep: its id, its device(s) and its fps / memory figure."""
    kind = str(sw.points["device_kind"].iloc[0])
    sources = sorted(set(sw.summary["ram_per_img_source"].dropna().astype(str)))
    source = sources[0] if len(sources) == 1 else None
    devices = sorted({f"{n} ({k})" for k, n in zip(sw.points["device_kind"], sw.points["device_name"], strict=True)})
    device = ", ".join(devices)
    title = f"{device} · {', '.join(sorted(set(sw.points['dtype'].astype(str))))} · sweep {sw.sweep_id}"
    caption = (
        f"fps (median over repeats, bars: IQR) and {memory_column(kind, source)[1]} against batch size, from "
        f"{sw.path.name}/speed.csv. A batch marked x ran out of memory."
    )
    return {
        "sweep": sw.sweep_id,
        "device": device,
        "figure": Figure(title, speed_figure(sw.points, title, source), caption),
    }


def _settings(cfg: ReportConfig, result: ReportResult) -> dict[str, Any]:
    """The page's "Method and settings": what every number was computed with."""
    return {
        "runs directory": str(cfg.runs_dir),
        "suite": result.suite or "all",
        "reduction": cfg.reduction,
        "confidence level": f"{CI_LEVEL:.0%}",
        "bootstrap resamples": cfg.n_boot,
        "bootstrap seed": cfg.seed,
        "code drift": "accepted (--accept-code-drift): runs whose code differs are paired, and their verdicts say so"
        if cfg.accept_code_drift
        else "runs whose code differs are not comparable",
        "bootstrap method": "frames resampled with replacement; paired tests resample the same frames for both "
        "models; several seeds share each resample (statistic = seed mean). One seed: percentile CI (test "
        "frames only). Several seeds: t-interval, variance = seed variance of the mean + bootstrap variance, "
        "Welch-Satterthwaite df (covers training seeds and test frames)",
        "p-value": "two-sided: one seed, smallest level at which the percentile CI of the difference excludes 0 "
        f"(resolution 1/{cfg.n_boot}); several seeds, the t-test of the same interval",
        "units": "depth errors in metres; deltas are fractions; fps in images/s; measured memory in MiB",
        "models in this harness": ", ".join(HARNESS_ARCHS),
    }


def _curves(groups: list[RunGroup]) -> tuple[Figure | None, list[str]]:
    """Training curves of the suite's runs (from history.csv) and one convergence-check line per run."""
    curves, problems = load_curves(groups)
    if not curves:
        return None, ["No run of this suite has a history.csv (runs/README.md); no training curves to show."]
    caption = (
        "Train loss (mean over each epoch's steps) and test RMSE (m) against optimiser steps, from each run's "
        "history.csv; one colour per model, one line per seed. A curve still falling at its end means the run "
        "had not converged, and its verdict rests on an unfinished model."
    )
    png = curves_figure(curves, f"{len(curves)} run(s)")
    return Figure("Training curves", png, caption), [convergence_note(c) for c in curves] + problems


def _evidence(groups: list[RunGroup]) -> str:
    """One line on what the verdicts rest on: data sources, epochs and test frames of the suite's runs."""
    runs = [r for g in groups for r in g.runs]
    if not runs:
        return "no evaluated run in this suite"
    sources = sorted({str((r.metrics.get("data") or {}).get("source", "?")) for r in runs})
    epochs = sorted({_g(r.metrics.get("epoch", "?")) for r in runs})
    frames = sorted({int(r.metrics["n_frames"]) for r in runs})
    return (
        f"{len(runs)} run(s); data: {', '.join(sources)}; epochs: {', '.join(epochs)}; test frames: "
        f"{', '.join(map(str, frames))}"
    )


def _grid(tables: Tables) -> tuple[Figure | None, str]:
    """Table 4 grid from the RSIDE and DRNet runs of one backbone (the paper's backbones first)."""
    t1 = tables.selection.table1
    with_pred = {k: g for k, g in t1.items() if g.first.predictions is not None}
    pairs = sorted(
        {b for a, b in with_pred if a == "drnet"} & {b for a, b in with_pred if a == "rside"},
        key=lambda b: (GRID_BACKBONE_ORDER.index(b) if b in GRID_BACKBONE_ORDER else 99, b),
    )
    if pairs:
        groups = [with_pred[("rside", pairs[0])], with_pred[("drnet", pairs[0])]]
        note = ""
    elif with_pred:
        groups = [with_pred[k] for k in sorted(with_pred)][:2]
        note = "No RSIDE and DRNet run of the same backbone both have predictions.h5; showing what exists. "
    else:
        return None, (
            "No run of this suite has predictions.h5 (runs/README.md); the Table 4 grid needs an "
            "RSIDE and a DRNet run of the same backbone."
        )
    columns = [
        GridColumn(
            label=f"{pretty_arch(g.first.arch)} {g.first.backbone}",
            path=g.first.predictions,
            rmse_by_frame=_rmse_by_frame(g),
        )
        for g in groups
    ]
    try:
        png, grid = predictions_grid(columns)
    except (OSError, ValueError, KeyError) as err:
        return None, f"Table 4 grid not drawn: {err}"
    caption = (
        note + f"Every stored frame ({', '.join(map(str, grid.frames))}): input image, ground truth, each model's "
        f"prediction ({', '.join(g.first.run_id for g in groups)}), then each model's error map |pred - gt| "
        "(metres, its own colour bar). One depth colour scale per row, with its colour bar, set from the ground "
        "truth's valid range (min to max, metres); predictions outside it are clipped to its ends. "
        + grid_clipping_text(grid.clipped)
        + " Per-image RMSE from per_image.csv."
    )
    return Figure("Table 4: predictions", png, caption), ""


def grid_clipping_text(clipped: dict[str, tuple[int, int]]) -> str:
    """``Clipped: RSIDE resnet18 12 of 5,000 valid pixels (0.2%); ...`` for the Table 4 caption."""
    parts = [
        f"{label} {n:,} of {total:,} valid pixels ({100 * n / total:.1f}%)" if total else f"{label} -"
        for label, (n, total) in clipped.items()
    ]
    return "Clipped prediction pixels: " + "; ".join(parts) + "."


def _rmse_by_frame(g: RunGroup) -> dict[int, float]:
    df = g.first.per_image
    if "rmse" not in df.columns:
        return {}
    return {int(f): float(v) for f, v in zip(df["frame"], df["rmse"], strict=True)}


def _g(v: Any) -> str:
    """Numbers without a trailing .0 (epoch 3.0 -> 3)."""
    return f"{v:g}" if isinstance(v, int | float) else str(v)


def _find(obj: Any, key: str) -> Any:
    """The first value of ``key`` anywhere in nested dicts/lists (provenance layouts vary by data source)."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            found = _find(v, key)
            if found is not None:
                return found
    return None


def _commit(prov: dict[str, Any]) -> str:
    git = prov.get("git") or {}
    commit = str(git.get("commit") or "")[:10]
    return commit + (" (dirty)" if git.get("dirty") else "") if commit else "unknown"


def _device(prov: dict[str, Any]) -> str:
    dev = prov.get("device") or {}
    return " ".join(str(x) for x in (dev.get("device"), dev.get("name")) if x) or "unknown"


def _round(v: Any) -> Any:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(x) else round(x, 1)
