"""The report's row records: every column documented, report_columns.md current, CSV headers from the records."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

import pytest

from bench.report import records
from bench.report.build import ReportConfig, make_report
from bench.report.records import (
    REPORT_CSVS,
    Claim,
    MetricCells,
    PairedCells,
    PairedRow,
    ProvenanceRow,
    RelativeCells,
    Table1Row,
    Table2Row,
    Table3Row,
    column_of,
    columns,
    columns_markdown,
    csv_text,
    frame,
    from_frame,
    from_values,
    row_values,
)
from bench.report.runs import ABLATION_SWITCHES
from bench.report.tables import (
    ABLATIONS,
    MEMORY_DEFINITIONS,
    MODE_QUANTITIES,
    TABLE3_VARIANTS,
    ablated,
    variant_name,
)

REFERENCE = Path(records.__file__).with_name("report_columns.md")
RECORDS = (*(r for r, _ in REPORT_CSVS.values()), ProvenanceRow, MetricCells, PairedCells, RelativeCells)


def test_report_columns_md_is_generated_from_the_records():
    assert REFERENCE.read_text(encoding="utf-8") == columns_markdown(), (
        "bench/report/report_columns.md is stale: regenerate it with python -m bench.docgen, or "
        "python -c 'from bench.report.records import columns_markdown as c; print(c(), end=\"\")' "
        "> bench/report/report_columns.md"
    )


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.__name__)
def test_every_field_is_a_documented_column(record):
    for f in fields(record):
        assert f.metadata.get("doc"), f"{record.__name__}.{f.name} has no doc"
        assert "unit" in f.metadata and "label" in f.metadata


def test_cells_fields_expand_to_one_column_per_cell_with_the_metrics_unit():
    names = [c.name for c in columns(Table1Row)]
    assert names[names.index("rmse_paper") : names.index("rmse_seed_std") + 1] == [
        "rmse_paper",
        "rmse_measured",
        "rmse_diff",
        "rmse_ci_low",
        "rmse_ci_high",
        "rmse_seed_std",
    ]
    assert column_of(Table1Row, "rmse_ci_low").unit == "m"
    assert column_of(Table1Row, "delta1_measured").unit == "fraction"
    assert column_of(PairedRow, "rmse_p").unit == ""  # a p-value keeps its own (no) unit
    assert column_of(PairedRow, "rmse_rel_diff").unit == "fraction"
    assert column_of(Table1Row, "rmse").label == "RMSE (m)"  # the group header of the rmse columns
    assert len({c.name for c in columns(Table3Row)}) == len(columns(Table3Row))  # no column twice
    with pytest.raises(KeyError, match="no column 'rmse_median'"):
        column_of(Table1Row, "rmse_median")


def test_csv_header_and_values_come_from_the_record():
    row = Table3Row(
        variant="no second branch", backbone="resnet18", diagonal=True, aux_losses=True, second_branch=False
    )
    row.rmse.measured, row.vs_full_seeds = 0.5, 3
    header, line = csv_text([row], Table3Row).splitlines()
    assert header.split(",") == [c.name for c in columns(Table3Row)]
    values = dict(zip(header.split(","), line.split(","), strict=True))
    assert values["variant"] == "no second branch" and values["second_branch"] == "False"
    assert values["rmse_measured"] == "0.5" and values["rmse_paper"] == "" and values["vs_full_seeds"] == "3"
    assert values["status"] == "missing"  # a row no run fills until one is assigned


def test_from_values_inverts_row_values_and_rejects_unknown_columns():
    row = PairedRow(backbone="resnet50", paper_regime="matches", frames_common=3)
    row.rmse.diff, row.rmse_rel.ci_high = 0.01, 0.2
    assert from_values(PairedRow, row_values(row)) == row
    again = from_frame(frame([row], PairedRow), PairedRow)[0]
    assert again.rmse.diff == 0.01 and again.rmse_rel.ci_high == 0.2 and math.isnan(again.log10.p)
    with pytest.raises(KeyError, match="rmse_median"):
        from_values(PairedRow, {"backbone": "resnet50", "paper_regime": "", "rmse_median": 1.0})


def test_claim_outcome_defaults_to_its_verdict():
    assert Claim("c", "s", "p", "m", "not measured here").outcome == "not measured here"
    assert [c.name for c in columns(Claim)] == [
        "claim",
        "scope",
        "paper",
        "measured",
        "verdict",
        "outcome",
        "notes",
        "headline",
        "level",
        "to_decide",
    ]


def test_table2_definitions_name_table2_fields():
    names = {c.name for c in columns(Table2Row)}
    for d in MEMORY_DEFINITIONS:
        assert {d.value, d.ratio} <= names, d
    for _, measured, paper in MODE_QUANTITIES:
        assert {measured, paper} <= names


def test_one_switch_map_names_every_table3_variant():
    assert tuple(ABLATIONS) == ABLATION_SWITCHES  # the order of switches_of's tuples
    assert ablated("second_branch") == (True, True, False)
    assert TABLE3_VARIANTS[ablated("diagonal")] == "no diagonal connections"
    assert variant_name((False, False, True)) == "no diagonal, no aux losses"
    assert variant_name((True, True, True)) == "DRNet (all elements)"
    with pytest.raises(KeyError, match="switches: diagonal"):
        ablated("decoder")


def test_html_headers_carry_the_column_definitions(runs_dir, tmp_path, make_eval_run, make_speed_sweep):
    make_eval_run(runs_dir, "smoke", "rside-resnet18", "rside", "resnet18", frames=range(1, 6))
    make_speed_sweep(runs_dir, "smoke-speed", {("rside", "resnet18"): (5.0, 80.0), ("drnet", "resnet18"): (20.0, 9.0)})
    make_report(ReportConfig(runs_dir=runs_dir, out_dir=tmp_path / "out", html=True, n_boot=50), log=lambda _: None)
    html = (tmp_path / "out" / "report.html").read_text()
    slope = column_of(Table2Row, "ram_per_img_measured_mib")
    assert f'title="ram_per_img_measured_mib: {slope.tooltip}; ram_per_img_source: ' in html
    assert ">slope MiB/img</th>" in html
