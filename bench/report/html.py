"""One self-contained report.html (jinja2): inline CSS, figures as base64 data URIs, opens offline.

The tables are turned into display tables here (header rows and cells with text, CSS class and tooltip) so
that the template stays a dumb loop. A tiny inline script marks, after the page's load event, each image
with ``data-rendered="yes|no"`` (decoded: naturalWidth > 0) and each table with its rendered height, so a
headless browser's DOM dump shows whether the page really rendered (tests/bench/report/test_browser.py).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
import pandas as pd

from bench.metrics import LOWER_IS_BETTER
from bench.report.claims import (
    BETTER_THAN_MARGIN,
    DEPENDS_ON_DEFINITION,
    INCONCLUSIVE,
    NOT_COMPARABLE,
    NOT_JUDGED,
    NOT_MEASURED,
    NOT_REPRODUCED,
    REPRODUCED,
    Claim,
)
from bench.report.tables import TABLE1_METRICS, TABLE3_METRICS

__all__ = ["Figure", "ReportPage", "data_uri", "render_html"]

VERDICT_CLASS = {
    REPRODUCED: "ok",
    NOT_REPRODUCED: "bad",
    INCONCLUSIVE: "warn",
    NOT_MEASURED: "na",
    NOT_JUDGED: "na",
    NOT_COMPARABLE: "na",
    DEPENDS_ON_DEFINITION: "warn",  # memory: some definitions reproduce the claim, others do not
    BETTER_THAN_MARGIN: "warn",  # amber: the paper claims equality, so a much better DRNet questions the RSIDE run
}
METRIC_LABEL = {
    "rmse": "RMSE (m)",
    "log10": "log10",
    "delta1": "δ<1.25",
    "delta2": "δ<1.25²",
    "delta3": "δ<1.25³",
    "abs_rel": "AbsRel",
}


@dataclass(frozen=True)
class Figure:
    """A PNG figure with its caption."""

    title: str
    png: bytes
    caption: str = ""

    @property
    def uri(self) -> str:
        return data_uri(self.png)


@dataclass
class ReportPage:
    """Everything the template shows."""

    title: str
    suite: str | None
    generated_utc: str
    settings: dict[str, Any]
    claims: Sequence[Claim]
    tolerances: Sequence[str]
    table1: pd.DataFrame
    table2: pd.DataFrame
    table2_modes: pd.DataFrame
    table3: pd.DataFrame
    paired: pd.DataFrame
    missing: Sequence[tuple[str, str]]  # (where, what)
    notes: Sequence[str]
    provenance: pd.DataFrame
    sweeps: Sequence[dict[str, Any]]  # sweep id, device text, figure
    grid: Figure | None
    grid_note: str
    sources: dict[str, str]
    evidence: str = ""  # one line on what the verdicts rest on (runs, data, epochs, test frames, purpose)
    curves: Figure | None = None  # training curves from history.csv (train loss, test RMSE vs steps)
    curve_notes: Sequence[str] = ()  # one convergence-check line per run, then any unreadable history.csv
    suite_note: str = ""  # which suites runs/ holds and which one this page reports, when there was a choice
    sweep_notes: Sequence[str] = ()  # older sweeps of a setup measured again later: listed, not used


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(page: ReportPage) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bench.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    counts = {v: sum(c.outcome == v for c in page.claims) for v in VERDICT_CLASS}
    missing_counts: dict[str, int] = {}
    for where, _ in page.missing:
        key = where.split(" · ")[0] if " · " in where else "unusable run directories"
        missing_counts[key] = missing_counts.get(key, 0) + 1
    return env.get_template("report.html.j2").render(
        page=page,
        verdict_class=VERDICT_CLASS,
        verdict_counts=counts,
        missing_counts=missing_counts,
        table1=_display_accuracy(page.table1, TABLE1_METRICS, ("method", "source"), "table1"),
        table3=_display_accuracy(
            page.table3, TABLE3_METRICS, ("variant", "backbone", "source"), "table3", vs_full=True
        ),
        table2=_display_speed(page.table2),
        table2_modes=_display_modes(page.table2_modes),
        paired=_display_paired(page.paired),
        provenance=_display_plain(page.provenance, "provenance"),
    )


# ---- display tables ---------------------------------------------------------------------------------


def _cell(text: Any, cls: str = "", colspan: int = 1, rowspan: int = 1, title: str = "") -> dict[str, Any]:
    return {"text": text, "cls": cls, "colspan": colspan, "rowspan": rowspan, "title": title}


def _num(v: Any, digits: int = 3, signed: bool = False) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "" if v is None else str(v)
    if math.isnan(x):
        return ""
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _ci(lo: Any, hi: Any, digits: int = 3) -> str:
    a, b = _num(lo, digits), _num(hi, digits)
    return f"[{a}, {b}]" if a and b else ""


UNMEASURED = {  # status -> (cell text, CSS class, tooltip)
    "missing": ("missing", "missing", "no run in runs/ fills this row"),
    "not in harness": ("—", "na", "quoted from the paper; not implemented in this harness"),
    "error": ("error", "bad", ""),
}


def _display_accuracy(
    df: pd.DataFrame, metrics: Sequence[str], first: Sequence[str], table_id: str, vs_full: bool = False
) -> dict[str, Any]:
    """Per metric: paper | measured | Δ | 95% CI. Table 3 adds the paired change vs the full model after RMSE."""
    sub = ("paper", "measured", "Δ", "95% CI")
    vs_sub = ("paper", "measured", "95% CI", "p")
    groups: list[tuple[str, Sequence[str]]] = [(METRIC_LABEL.get(m, m), sub) for m in metrics]
    if vs_full:
        groups.insert(1, ("RMSE change when removed (vs full model, paired)", vs_sub))
    head1 = [_cell(c, rowspan=2) for c in (*first, "run", "regime", "paper's regime?")]
    head1 += [_cell(label, "group", colspan=len(subs)) for label, subs in groups]
    head2 = [_cell(s, "sub") for _, subs in groups for s in subs]
    rows = []
    for r in df.to_dict("records"):
        cells = [_cell(r[c]) for c in first]
        run_title = f"{r['seeds']} seed(s), {_num(r['n_frames'], 0)} frames" if r["run"] else ""
        cells.append(_cell(r["run"], "run", title=run_title))
        cells.append(_cell(r["regime"], "run", title=f"CI covers: {r['ci_covers']}" if r["ci_covers"] else ""))
        differs = str(r["paper_regime"]).startswith("differs")
        cells.append(_cell(r["paper_regime"], "warn" if differs else ""))
        per_metric = [_metric_cells(r, m) for m in metrics]
        if vs_full:
            per_metric.insert(1, _vs_full_cells(r))
        rows.append(cells + [c for group in per_metric for c in group])
    return {"id": table_id, "head": [head1, head2], "rows": rows}


def _metric_cells(r: dict[str, Any], m: str) -> list[dict[str, Any]]:
    paper = _cell(_num(r[f"{m}_paper"]), "paper")
    if r["status"] in UNMEASURED:
        text, cls, title = UNMEASURED[r["status"]]
        return [paper, _cell(text, cls, title=title or r["note"]), _cell(""), _cell("")]
    std = r[f"{m}_seed_std"]
    measured = _num(r[f"{m}_measured"]) + (f" ± {_num(std)}" if not _isnan(std) else "")
    return [
        paper,
        _cell(measured, "measured", title="mean ± std over seeds" if not _isnan(std) else ""),
        _cell(_num(r[f"{m}_diff"], signed=True), _diff_class(m, r[f"{m}_diff"])),
        _cell(_ci(r[f"{m}_ci_low"], r[f"{m}_ci_high"]), "ci"),
    ]


def _vs_full_cells(r: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _cell(_num(r.get("rmse_vs_full_paper"), signed=True), "paper"),
        _cell(
            _num(r.get("rmse_vs_full_measured"), signed=True),
            _diff_class("rmse", r.get("rmse_vs_full_measured")),
        ),
        _cell(_ci(r.get("rmse_vs_full_ci_low"), r.get("rmse_vs_full_ci_high")), "ci"),
        _cell(_p(r.get("rmse_vs_full_p")), "sig" if _sig(r.get("rmse_vs_full_p")) else ""),
    ]


def _display_speed(df: pd.DataFrame) -> dict[str, Any]:
    head1 = [
        _cell("method", rowspan=2),
        _cell("source", rowspan=2),
        _cell("paper (Tesla P40)", "group", colspan=5),
        _cell("measured here", "group", colspan=12),
        _cell("DRNet / RSIDE fps, batch 1", "group", colspan=2),
        _cell("RSIDE / DRNet RAM per image", "group", colspan=4),
    ]
    head2 = [
        _cell(s, "sub", title=title)
        for s, title in (
            ("fps b1", ""),
            ("fps max", ""),
            ("at b", ""),
            ("net RAM MB", ""),
            ("RAM/img MB", "the paper's 'RAM / img', never defined"),
            ("device", ""),
            (
                "mode",
                "inference: eval, inference_mode; autograd: eval, gradients on; train: forward + loss + "
                "backward + Adam step",
            ),
            ("fps b1", ""),
            ("fps max (b)", ""),
            ("max b fits", ""),
            ("net RAM MiB", "weights and buffers"),
            ("loaded MiB", "memory increase from the pre-model baseline to the model loaded"),
            ("peak b1 MiB", "per image (1): peak at batch 1 above the pre-model baseline"),
            ("slope MiB/img", "per image (2): marginal slope of peak memory against batch size"),
            ("R²", "R² of that slope"),
            ("peak/b MiB (b)", "per image (3): peak at the largest batch / that batch"),
            ("paper", ""),
            ("measured", ""),
            ("paper", "from the paper's 'RAM / img'"),
            ("peak b1", ""),
            ("slope", ""),
            ("peak/b", ""),
        )
    ]
    rows = []
    for r in df.to_dict("records"):
        cells = [_cell(r["method"]), _cell(r["source"])]
        cells += [
            _cell(_num(r["fps_b1_paper"], 1), "paper"),
            _cell(_num(r["fps_max_paper"], 1), "paper"),
            _cell(_num(r["fps_max_batch_paper"], 0), "paper"),
            _cell(_num(r["net_ram_paper_mb"], 0), "paper"),
            _cell(_num(r["ram_per_img_paper_mb"], 0), "paper"),
        ]
        if r["status"] == "missing":
            cells += [_cell("missing sweep", "missing", colspan=12, title="no speed_summary.csv row")]
        else:
            device = f"{r['device_name']} ({r['device_kind']}, {r['dtype']}, {r['input']})"
            max_b = _num(r["mem_max_b_per_img_measured_mib"], 0)
            cells += [
                _cell(device, "run", title=f"sweep {r['sweep']}"),
                _cell(r["mode"]),
                _cell(_num(r["fps_b1_measured"], 1), "measured"),
                _cell(f"{_num(r['fps_max_measured'], 1)} ({_num(r['fps_max_batch_measured'], 0)})", "measured"),
                _cell(_num(r["max_batch_fit_measured"], 0)),
                _cell(_num(r["net_ram_measured_mib"], 0), "measured"),
                _cell(_num(r["net_ram_loaded_measured_mib"], 0), "measured"),
                _cell(_num(r["mem_b1_measured_mib"], 0), "measured"),
                _cell(
                    _num(r["ram_per_img_measured_mib"], 0),
                    "measured",
                    title=f"source: {r['ram_per_img_source']}",
                ),
                _cell(_num(r["ram_per_img_r2"], 3)),
                _cell(f"{max_b} ({_num(r['mem_max_b_batch_measured'], 0)})" if max_b else "", "measured"),
            ]
        cells += [
            _cell(_ratio(r["speedup_b1_paper"]), "paper"),
            _cell(_ratio(r["speedup_b1_measured"]), "measured"),
            _cell(_ratio(r["mem_ratio_paper"]), "paper"),
            _cell(_ratio(r["mem_ratio_b1_measured"]), "measured"),
            _cell(_ratio(r["mem_ratio_measured"]), "measured"),
            _cell(_ratio(r["mem_ratio_max_b_measured"]), "measured"),
        ]
        rows.append(cells)
    return {"id": "table2", "head": [head1, head2], "rows": rows}


def _display_modes(df: pd.DataFrame) -> dict[str, Any]:
    """Which sweep mode's ratios come closest to the paper's (table2_modes.csv)."""
    head = [
        _cell(c)
        for c in (
            "backbone",
            "device",
            "sweep",
            "ratio",
            "mode",
            "measured",
            "paper",
            "|ln(measured / paper)|",
            "closest mode",
        )
    ]
    rows = []
    for r in df.to_dict("records"):
        closest = r["mode"] == r["closest_mode"]
        rows.append(
            [
                _cell(r["backbone"]),
                _cell(f"{r['device_name']} ({r['device_kind']})"),
                _cell(r["sweep"]),
                _cell(r["quantity"]),
                _cell(r["mode"], "ok" if closest else ""),
                _cell(_ratio(r["measured"]), "measured"),
                _cell(_ratio(r["paper"]), "paper"),
                _cell(_num(r["log_distance"], 2)),
                _cell(r["closest_mode"]),
            ]
        )
    return {"id": "table2_modes", "head": [head], "rows": rows}


def _display_paired(df: pd.DataFrame) -> dict[str, Any]:
    head1 = [
        _cell(c, rowspan=2)
        for c in ("backbone", "data", "DRNet run", "RSIDE run", "regimes (DRNet / RSIDE)", "comparable?", "frames")
    ]
    head1 += [_cell(f"{METRIC_LABEL.get(m, m)}: DRNet − RSIDE", "group", colspan=3) for m in TABLE1_METRICS]
    head1.append(_cell("relative RMSE", "group", colspan=2))
    head2 = [_cell(s, "sub") for _ in TABLE1_METRICS for s in ("Δ", "95% CI", "p")]
    head2 += [_cell(s, "sub") for s in ("Δ / RSIDE", "95% CI")]
    rows = []
    for r in df.to_dict("records"):
        frames = str(r["frames_common"])
        if not r["same_frames"]:
            frames += f" common (DRNet {r['frames_drnet']}, RSIDE {r['frames_rside']})"
        cells = [
            _cell(r["backbone"]),
            _cell(r["data"]),
            _cell(r["drnet_run"], "run"),
            _cell(r["rside_run"], "run"),
            _cell(f"{r['drnet_regime']} / {r['rside_regime']}", "run"),
            _cell(f"no: {r['not_comparable']}" if r["not_comparable"] else "yes", "bad" if r["not_comparable"] else ""),
            _cell(frames, "" if r["same_frames"] else "warn"),
        ]
        for m in TABLE1_METRICS:
            cells += [
                _cell(_num(r.get(f"{m}_diff"), 4, signed=True), _diff_class(m, r.get(f"{m}_diff"))),
                _cell(_ci(r.get(f"{m}_ci_low"), r.get(f"{m}_ci_high"), 4), "ci"),
                _cell(_p(r.get(f"{m}_p")), "sig" if _sig(r.get(f"{m}_p")) else ""),
            ]
        cells += [
            _cell(_pct(r.get("rmse_rel_diff"))),
            _cell(f"[{_pct(r.get('rmse_rel_ci_low'))}, {_pct(r.get('rmse_rel_ci_high'))}]", "ci"),
        ]
        rows.append(cells)
    return {"id": "paired", "head": [head1, head2], "rows": rows}


def _display_plain(df: pd.DataFrame, table_id: str) -> dict[str, Any]:
    head = [[_cell(c) for c in df.columns]]
    rows = [[_cell("" if _isnan(v) else v, "text") for v in r] for r in df.itertuples(index=False)]
    return {"id": table_id, "head": head, "rows": rows}


def _diff_class(metric: str, diff: Any) -> str:
    """Colour a difference by whether measured is better (lower error / higher delta) than the paper."""
    try:
        d = float(diff)
    except (TypeError, ValueError):
        return ""
    if math.isnan(d) or d == 0:
        return "diff"
    better = d < 0 if LOWER_IS_BETTER[metric] else d > 0
    return "diff better" if better else "diff worse"


def _ratio(v: Any) -> str:
    s = _num(v, 1)
    return f"{s}x" if s else ""


def _pct(v: Any) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(x) else f"{x:+.1%}"


def _p(v: Any) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return ""
    if math.isnan(x):
        return ""
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def _sig(v: Any) -> bool:
    try:
        return float(v) < 0.05
    except (TypeError, ValueError):
        return False


def _isnan(v: Any) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return v is None
