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

from bench.metrics import LOWER_IS_BETTER
from bench.report.claims import (
    BETTER_THAN_MARGIN,
    DEPENDS_ON_DEFINITION,
    DEPENDS_ON_SETUP,
    INCONCLUSIVE,
    NOT_COMPARABLE,
    NOT_JUDGED,
    NOT_MEASURED,
    NOT_REPRODUCED,
    REPRODUCED,
)
from bench.report.records import (
    METRIC_LABELS,
    MISSING_ROW,
    TABLE1_METRICS,
    TABLE3_METRICS,
    Claim,
    MissingRow,
    PairedRow,
    ProvenanceRow,
    RepeatedRow,
    Table1Row,
    Table2ModeRow,
    Table2Row,
    Table3Row,
    column_of,
    columns,
    row_values,
)

__all__ = ["Figure", "ReportPage", "data_uri", "render_html", "summary_sections"]

VERDICT_CLASS = {
    REPRODUCED: "ok",
    NOT_REPRODUCED: "bad",
    INCONCLUSIVE: "warn",
    NOT_MEASURED: "na",
    NOT_JUDGED: "na",
    NOT_COMPARABLE: "na",
    DEPENDS_ON_DEFINITION: "warn",  # memory: some definitions reproduce the claim, others do not
    DEPENDS_ON_SETUP: "warn",  # a summary headline whose sweeps and modes disagree
    BETTER_THAN_MARGIN: "warn",  # amber: the paper claims equality, so a much better DRNet questions the RSIDE run
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
    table1: Sequence[Table1Row]
    table2: Sequence[Table2Row]
    table2_modes: Sequence[Table2ModeRow]
    table3: Sequence[Table3Row]
    paired: Sequence[PairedRow]
    missing: Sequence[MissingRow]
    notes: Sequence[str]
    provenance: Sequence[ProvenanceRow]
    sweeps: Sequence[dict[str, Any]]  # sweep id, device text, figure
    grid: Figure | None
    grid_note: str
    sources: dict[str, str]
    evidence: str = ""  # one line on what the verdicts rest on (runs, data, epochs, test frames, purpose)
    curves: Figure | None = None  # training curves from history.csv (train loss, test RMSE vs steps)
    curve_notes: Sequence[str] = ()  # one convergence-check line per run, then any unreadable history.csv
    suite_note: str = ""  # which suites runs/ holds and which one this page reports, when there was a choice
    sweep_notes: Sequence[str] = ()  # older sweeps of a setup measured again later: listed, not used
    repeats: Sequence[RepeatedRow] = ()  # run directories counted once (each repeats another run)


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
    sections = summary_sections(page.claims)
    counts = {v: sum(sec["row"].outcome == v for sec in sections) for v in VERDICT_CLASS}
    missing_counts: dict[str, int] = {}
    for m in page.missing:
        key = m.where.split(" · ")[0] if " · " in m.where else "unusable run directories"
        missing_counts[key] = missing_counts.get(key, 0) + 1
    return env.get_template("report.html.j2").render(
        page=page,
        verdict_class=VERDICT_CLASS,
        verdict_counts=counts,
        summary=sections,
        detail_rows=sum(len(sec["details"]) for sec in sections),
        missing_counts=missing_counts,
        test_selected_text=f"{TEST_SELECTED_MARK} {TEST_SELECTED_TEXT}",
        table1=_display_accuracy(page.table1, Table1Row, TABLE1_METRICS, ("method", "source"), "table1"),
        table3=_display_accuracy(page.table3, Table3Row, TABLE3_METRICS, ("variant", "backbone", "source"), "table3"),
        table2=_display_speed(page.table2),
        table2_modes=_display_modes(page.table2_modes),
        paired=_display_paired(page.paired),
        provenance=_display_records(page.provenance, ProvenanceRow, "provenance"),
        repeats=_display_records(page.repeats, RepeatedRow, "repeated_runs"),
    )


def summary_sections(claims: Sequence[Claim]) -> list[dict[str, Any]]:
    """The summary as {"row": a headline (level 0), "details": the rows under it} in order; a row before any
    headline is a section of its own."""
    sections: list[dict[str, Any]] = []
    for c in claims:
        if c.level == 0 or not sections:
            sections.append({"row": c, "details": []})
        else:
            sections[-1]["details"].append(c)
    return sections


# ---- display tables ---------------------------------------------------------------------------------
# A header cell's text is its column's label and its tooltip the column's definition (bench.report.records),
# so the page and the CSVs describe a column in the same words.


def _cell(text: Any, cls: str = "", colspan: int = 1, rowspan: int = 1, title: str = "") -> dict[str, Any]:
    return {"text": text, "cls": cls, "colspan": colspan, "rowspan": rowspan, "title": title}


def _head(record: type, *names: str, label: str | None = None, **kw: Any) -> dict[str, Any]:
    """A header cell over the columns ``names`` of ``record``: the first one's label (or ``label``), and as
    tooltip each column's name and definition."""
    cols = [column_of(record, n) for n in names]
    title = "; ".join(f"{c.name}: {c.tooltip}" for c in cols)
    return _cell(cols[0].label if label is None else label, title=title, **kw)


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
VS_FULL_LABEL = "RMSE change when removed (vs full model, paired)"
TEST_SELECTED_MARK = "†"  # on the run cell of a Table 1 or 3 row whose weights were selected on the test set
TEST_SELECTED_TEXT = "weights selected on the test set (checkpoint best): optimistic values, never judged"


def _display_accuracy(
    rows: Sequence[Table1Row | Table3Row], record: type, metrics: Sequence[str], first: Sequence[str], table_id: str
) -> dict[str, Any]:
    """Per metric: paper | measured | Δ | 95% CI. Table 3 adds the paired change vs the full model after RMSE."""
    vs_full = record is Table3Row
    head1 = [_head(record, c, rowspan=2) for c in (*first, "run", "regime", "paper_regime")]
    head1 += [_head(record, m, cls="group", colspan=4) for m in metrics]
    head2 = [h for m in metrics for h in _metric_head(record, m)]
    if vs_full:
        title = column_of(record, "rmse_vs_full_measured").tooltip
        head1.insert(len(first) + 4, _cell(VS_FULL_LABEL, "group", colspan=4, title=title))
        head2[4:4] = _vs_full_head()
    body = []
    for r in rows:
        per_metric = [_metric_cells(r, m) for m in metrics]
        if vs_full:
            per_metric.insert(1, _vs_full_cells(r))
        body.append(_run_cells(r, first) + [c for group in per_metric for c in group])
    return {"id": table_id, "head": [head1, head2], "rows": body}


def _metric_head(record: type, m: str) -> list[dict[str, Any]]:
    return [
        _head(record, *(f"{m}_{cell}" for cell in cells), cls="sub")
        for cells in (("paper",), ("measured", "seed_std"), ("diff",), ("ci_low", "ci_high"))
    ]


def _vs_full_head() -> list[dict[str, Any]]:
    names = (("paper",), ("measured",), ("ci_low", "ci_high"), ("p",))
    return [_head(Table3Row, *(f"rmse_vs_full_{n}" for n in cells), cls="sub") for cells in names]


def _run_cells(r: Table1Row | Table3Row, first: Sequence[str]) -> list[dict[str, Any]]:
    """The row's identity cells, then run, regime and paper's regime?"""
    cells = [_cell(getattr(r, c)) for c in first]
    run_title = f"{r.seeds} seed(s), {_num(r.n_frames, 0)} frames" if r.run else ""
    if r.test_selected:  # the row's numbers were chosen on the test set: marked, never judged
        title = f"{TEST_SELECTED_TEXT}: {r.test_selected}"
        cells.append(_cell(f"{r.run} {TEST_SELECTED_MARK}", "run warn", title=title))
    else:
        cells.append(_cell(r.run, "run", title=run_title))
    cells.append(_cell(r.regime, "run", title=f"CI covers: {r.ci_covers}" if r.ci_covers else ""))
    differs = str(r.paper_regime).startswith("differs")
    cells.append(_cell(r.paper_regime, "warn" if differs else ""))
    return cells


def _metric_cells(r: Table1Row | Table3Row, m: str) -> list[dict[str, Any]]:
    c = r.metric(m)
    paper = _cell(_num(c.paper), "paper")
    if r.status in UNMEASURED:
        text, cls, title = UNMEASURED[r.status]
        return [paper, _cell(text, cls, title=title or r.note), _cell(""), _cell("")]
    std = c.seed_std
    measured = _num(c.measured) + (f" ± {_num(std)}" if not _isnan(std) else "")
    return [
        paper,
        _cell(measured, "measured", title="mean ± std over seeds" if not _isnan(std) else ""),
        _cell(_num(c.diff, signed=True), _diff_class(m, c.diff)),
        _cell(_ci(c.ci_low, c.ci_high), "ci"),
    ]


def _vs_full_cells(r: Table3Row) -> list[dict[str, Any]]:
    return [
        _cell(_num(r.rmse_vs_full_paper, signed=True), "paper"),
        _cell(_num(r.rmse_vs_full_measured, signed=True), _diff_class("rmse", r.rmse_vs_full_measured)),
        _cell(_ci(r.rmse_vs_full_ci_low, r.rmse_vs_full_ci_high), "ci"),
        _cell(_p(r.rmse_vs_full_p), "sig" if _sig(r.rmse_vs_full_p) else ""),
    ]


# Table 2's columns: the paper's (field, digits), the measured ones' header columns, the ratios (field, class).
SPEED_PAPER = (
    ("fps_b1_paper", 1),
    ("fps_max_paper", 1),
    ("fps_max_batch_paper", 0),
    ("net_ram_paper_mb", 0),
    ("ram_per_img_paper_mb", 0),
)
SPEED_MEASURED = (
    ("device_name", "device_kind", "dtype", "input", "sweep"),
    ("mode",),
    ("fps_b1_measured",),
    ("fps_max_measured", "fps_max_batch_measured"),
    ("max_batch_fit_measured",),
    ("net_ram_measured_mib",),
    ("net_ram_loaded_measured_mib",),
    ("mem_b1_measured_mib",),
    ("ram_per_img_measured_mib", "ram_per_img_source"),
    ("ram_per_img_r2",),
    ("mem_max_b_per_img_measured_mib", "mem_max_b_batch_measured"),
)
SPEED_RATIOS = (
    ("speedup_b1_paper", "paper"),
    ("speedup_b1_measured", "measured"),
    ("mem_ratio_paper", "paper"),
    ("mem_ratio_b1_measured", "measured"),
    ("mem_ratio_measured", "measured"),
    ("mem_ratio_max_b_measured", "measured"),
)


def _display_speed(rows: Sequence[Table2Row]) -> dict[str, Any]:
    """Table 2: the paper's Tesla P40 values | what one sweep measured | the DRNet-vs-RSIDE ratios."""
    head1 = [
        _head(Table2Row, "method", rowspan=2),
        _head(Table2Row, "source", rowspan=2),
        _cell("paper (Tesla P40)", "group", colspan=len(SPEED_PAPER)),
        _cell("measured here", "group", colspan=len(SPEED_MEASURED)),
        _cell("DRNet / RSIDE fps, batch 1", "group", colspan=2),
        _cell("RSIDE / DRNet RAM per image", "group", colspan=4),
    ]
    names = [*((n,) for n, _ in SPEED_PAPER), *SPEED_MEASURED, *((n,) for n, _ in SPEED_RATIOS)]
    head2 = [_head(Table2Row, *n, cls="sub") for n in names]
    return {"id": "table2", "head": [head1, head2], "rows": [_speed_cells(r) for r in rows]}


def _speed_cells(r: Table2Row) -> list[dict[str, Any]]:
    cells = [_cell(r.method), _cell(r.source)]
    cells += [_cell(_num(getattr(r, name), digits), "paper") for name, digits in SPEED_PAPER]
    if r.status == MISSING_ROW:
        cells.append(_cell("missing sweep", "missing", colspan=len(SPEED_MEASURED), title="no speed_summary.csv row"))
    else:
        cells += _speed_measured_cells(r)
    return cells + [_cell(_ratio(getattr(r, name)), cls) for name, cls in SPEED_RATIOS]


def _speed_measured_cells(r: Table2Row) -> list[dict[str, Any]]:
    """The cells of SPEED_MEASURED, in its order."""
    max_b = _num(r.mem_max_b_per_img_measured_mib, 0)
    return [
        _cell(f"{r.device_name} ({r.device_kind}, {r.dtype}, {r.input})", "run", title=f"sweep {r.sweep}"),
        _cell(r.mode),
        _cell(_num(r.fps_b1_measured, 1), "measured"),
        _cell(f"{_num(r.fps_max_measured, 1)} ({_num(r.fps_max_batch_measured, 0)})", "measured"),
        _cell(_num(r.max_batch_fit_measured, 0)),
        _cell(_num(r.net_ram_measured_mib, 0), "measured"),
        _cell(_num(r.net_ram_loaded_measured_mib, 0), "measured"),
        _cell(_num(r.mem_b1_measured_mib, 0), "measured"),
        _cell(_num(r.ram_per_img_measured_mib, 0), "measured", title=f"source: {r.ram_per_img_source}"),
        _cell(_num(r.ram_per_img_r2, 3)),
        _cell(f"{max_b} ({_num(r.mem_max_b_batch_measured, 0)})" if max_b else "", "measured"),
    ]


def _display_modes(rows: Sequence[Table2ModeRow]) -> dict[str, Any]:
    """Which sweep mode's ratios come closest to the paper's (table2_modes.csv)."""
    names = ("backbone", "device_name", "sweep", "quantity", "mode", "measured", "paper", "log_distance")
    head = [_head(Table2ModeRow, n) for n in (*names, "closest_mode")]
    body = [
        [
            _cell(r.backbone),
            _cell(f"{r.device_name} ({r.device_kind})"),
            _cell(r.sweep),
            _cell(r.quantity),
            _cell(r.mode, "ok" if r.mode == r.closest_mode else ""),
            _cell(_ratio(r.measured), "measured"),
            _cell(_ratio(r.paper), "paper"),
            _cell(_num(r.log_distance, 2)),
            _cell(r.closest_mode),
        ]
        for r in rows
    ]
    return {"id": "table2_modes", "head": [head], "rows": body}


PAIRED_FIRST = (  # header columns before the metrics
    ("backbone",),
    ("data",),
    ("drnet_run",),
    ("rside_run",),
    ("drnet_regime", "rside_regime"),
    ("not_comparable",),
    ("frames_common", "frames_drnet", "frames_rside", "same_frames"),
)


def _display_paired(rows: Sequence[PairedRow]) -> dict[str, Any]:
    head1 = [_head(PairedRow, *names, rowspan=2) for names in PAIRED_FIRST]
    head1 += [
        _head(PairedRow, m, label=f"{METRIC_LABELS.get(m, m)}: DRNet − RSIDE", cls="group", colspan=3)
        for m in TABLE1_METRICS
    ]
    head1.append(_head(PairedRow, "rmse_rel", cls="group", colspan=2))
    sub = (("diff",), ("ci_low", "ci_high"), ("p",))
    head2 = [_head(PairedRow, *(f"{m}_{c}" for c in cells), cls="sub") for m in TABLE1_METRICS for cells in sub]
    head2 += [_head(PairedRow, *(f"rmse_rel_{c}" for c in cells), cls="sub") for cells in sub[:2]]
    return {"id": "paired", "head": [head1, head2], "rows": [_paired_cells(r) for r in rows]}


def _paired_cells(r: PairedRow) -> list[dict[str, Any]]:
    frames = str(r.frames_common)
    if not r.same_frames:
        frames += f" common (DRNet {r.frames_drnet}, RSIDE {r.frames_rside})"
    cells = [
        _cell(r.backbone),
        _cell(r.data),
        _cell(r.drnet_run, "run"),
        _cell(r.rside_run, "run"),
        _cell(f"{r.drnet_regime} / {r.rside_regime}", "run"),
        _cell(f"no: {r.not_comparable}" if r.not_comparable else "yes", "bad" if r.not_comparable else ""),
        _cell(frames, "" if r.same_frames else "warn"),
    ]
    for m in TABLE1_METRICS:
        c = r.metric(m)
        cells += [
            _cell(_num(c.diff, 4, signed=True), _diff_class(m, c.diff)),
            _cell(_ci(c.ci_low, c.ci_high, 4), "ci"),
            _cell(_p(c.p), "sig" if _sig(c.p) else ""),
        ]
    rel = r.rmse_rel
    return cells + [_cell(_pct(rel.diff)), _cell(f"[{_pct(rel.ci_low)}, {_pct(rel.ci_high)}]", "ci")]


def _display_records(rows: Sequence[Any], record: type, table_id: str) -> dict[str, Any]:
    """A plain table of ``record`` rows: one header per column, every value as text."""
    head = [[_head(record, c.name) for c in columns(record)]]
    body = [[_cell("" if _isnan(v) else v, "text") for v in row_values(r).values()] for r in rows]
    return {"id": table_id, "head": head, "rows": body}


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
