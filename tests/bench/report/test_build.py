"""bench report end to end on fixture run directories: CSVs, HTML, missing runs, seeds, Table 2 and 3 rows."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from bench.report.build import ReportConfig, choose_suite, make_report
from bench.report.records import Table1Row, Table2Row, Table3Row, frame
from bench.report.runs import load_runs

FRAMES = range(1, 21)
N_BOOT = 200  # enough for the plumbing; the statistics are tested in test_stats.py


def report(runs_dir, tmp_path, suite=None, html=False):
    return make_report(
        ReportConfig(runs_dir=runs_dir, out_dir=tmp_path / "reports", suite=suite, html=html, n_boot=N_BOOT),
        log=lambda _: None,
    )


def test_smoke_report_writes_three_tables_and_a_self_contained_html(
    runs_dir, tmp_path, make_eval_run, make_speed_sweep
):
    make_eval_run(runs_dir, "smoke", "rside-resnet18", "rside", "resnet18", frames=FRAMES)
    make_eval_run(runs_dir, "smoke", "drnet-resnet18", "drnet", "resnet18", frames=FRAMES)
    make_speed_sweep(runs_dir, "smoke-speed", {("rside", "resnet18"): (5.0, 80.0), ("drnet", "resnet18"): (20.0, 9.0)})
    res = report(runs_dir, tmp_path, html=True)
    out = tmp_path / "reports"
    for name in ("table1.csv", "table2.csv", "table3.csv", "report.html"):
        assert (out / name).is_file(), name
    t1 = pd.read_csv(out / "table1.csv")
    for m in ("rmse", "log10", "delta1", "delta2", "delta3"):
        for s in ("paper", "measured", "diff", "ci_low", "ci_high", "seed_std"):
            assert f"{m}_{s}" in t1.columns
    own = t1[t1["backbone"] == "resnet18"]
    assert sorted(own["arch"]) == ["drnet", "rside"] and set(own["status"]) == {"no paper value"}
    assert (own["rmse_ci_low"] < own["rmse_measured"]).all() and (own["rmse_measured"] < own["rmse_ci_high"]).all()
    html = (out / "report.html").read_text()
    assert res.suite == "smoke"
    assert html.count('src="data:image/png;base64,') == 2  # speed plot + Table 4 grid
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<link" not in html  # nothing fetched: offline
    for table_id in ("claims", "table1", "paired", "table2", "table3", "provenance"):
        assert f'id="{table_id}"' in html
    assert "Fixture CPU (cpu)" in html  # Table 2 names the measured device


def test_a_run_missing_from_runs_appears_as_missing(runs_dir, tmp_path, make_eval_run):
    make_eval_run(runs_dir, "paper", "rside-resnet50", "rside", "resnet50", frames=FRAMES)
    res = report(runs_dir, tmp_path, suite="paper", html=True)
    t1 = frame(res.tables.table1, Table1Row).set_index(["arch", "backbone", "source"])
    assert t1.loc[("rside", "resnet50", "rside-paper"), "status"] == "measured"
    row = t1.loc[("drnet", "resnet50", "drnet-paper")]
    assert row["status"] == "missing" and row["rmse_paper"] == 0.587 and pd.isna(row["rmse_measured"])
    assert t1.loc[("dorn", "", "cited"), "status"] == "not in harness"
    missing = pd.read_csv(tmp_path / "reports" / "missing_runs.csv")
    assert any(
        "DRNet ResNet-50" in w and "arch=drnet, backbone=resnet50" in x
        for w, x in zip(missing["where"], missing["what"], strict=True)
    )
    assert any(w.startswith("Table 3 · resnet152 · no second branch") for w in missing["where"])
    assert sum(w.startswith("Table 2 ·") for w in missing["where"]) == 7  # no sweep at all
    html = (tmp_path / "reports" / "report.html").read_text()
    drnet_row = re.search(r"<tr><td>DRNet ResNet-50</td>.*?</tr>", html, re.S).group(0)
    assert drnet_row.count(">missing</td>") == 5  # one per metric, not empty cells
    assert "Missing runs and problems" in html and "arch=drnet, backbone=resnet50" in html


def test_measured_values_are_the_runs_metrics_and_diff_is_measured_minus_paper(runs_dir, tmp_path, make_eval_run):
    path = make_eval_run(runs_dir, "paper", "drnet-resnet50", "drnet", "resnet50", frames=FRAMES)
    written = json.loads((path / "metrics.json").read_text())["reductions"]
    for reduction in ("rside", "pooled", "per_image"):
        res = make_report(
            ReportConfig(runs_dir=runs_dir, out_dir=tmp_path / reduction, reduction=reduction, n_boot=N_BOOT),
            log=lambda _: None,
        )
        row = frame(res.tables.table1, Table1Row).set_index(["arch", "backbone"]).loc[("drnet", "resnet50")]
        for m in ("rmse", "log10", "delta1"):
            assert row[f"{m}_measured"] == pytest.approx(written[reduction][m], rel=1e-9)
            assert row[f"{m}_diff"] == pytest.approx(written[reduction][m] - row[f"{m}_paper"], rel=1e-9)
        assert not res.tables.selection.notes  # per_image.csv and metrics.json agree


def test_several_seeds_show_mean_and_std(runs_dir, tmp_path, make_eval_run):
    for seed, noise in ((0, 0.10), (1, 0.12), (2, 0.14)):
        make_eval_run(runs_dir, "paper", "drnet-resnet152", "drnet", "resnet152", seed=seed, noise=noise, frames=FRAMES)
    res = report(runs_dir, tmp_path)
    values = [
        json.loads((runs_dir / f"paper-drnet-resnet152-s{s}" / "metrics.json").read_text())["reductions"]["rside"][
            "rmse"
        ]
        for s in range(3)
    ]
    row = frame(res.tables.table1, Table1Row).set_index(["arch", "backbone"]).loc[("drnet", "resnet152")]
    assert row["seeds"] == 3 and row["run"] == "paper-drnet-resnet152-s{0,1,2}"
    assert row["rmse_measured"] == pytest.approx(sum(values) / 3)
    assert row["rmse_seed_std"] == pytest.approx(pd.Series(values).std(ddof=1))


def test_table3_rows_come_from_option_switches(runs_dir, tmp_path, make_eval_run):
    make_eval_run(runs_dir, "ablations", "drnet-resnet18", "drnet", "resnet18", frames=FRAMES, noise=0.1)
    make_eval_run(
        runs_dir,
        "ablations",
        "drnet-resnet18-no-second-branch",
        "drnet",
        "resnet18",
        frames=FRAMES,
        noise=0.4,
        options={"second_branch": False},
    )
    res = report(runs_dir, tmp_path)
    t3 = frame(res.tables.table3, Table3Row)
    assert set(t3["backbone"]) == {"resnet152", "resnet18"}
    paper_rows = t3[t3["backbone"] == "resnet152"]
    assert (paper_rows["status"] == "missing").all() and paper_rows["rmse_paper"].tolist() == [0.528, 0.533, 0.544, 1.9]
    ours = t3[t3["backbone"] == "resnet18"].set_index("variant")
    assert ours["rmse_paper"].isna().all()  # the paper's numbers belong to ResNet-152 only
    assert ours.loc["no second branch", "status"] == "no paper value"
    assert ours.loc["no second branch", "rmse_vs_full_measured"] > 0
    assert ours.loc["no second branch", "rmse_vs_full_ci_low"] > 0
    assert ours.loc["no diagonal connections", "status"] == "missing"
    # the full model also fills Table 1
    assert (
        frame(res.tables.table1, Table1Row).set_index(["arch", "backbone"]).loc[("drnet", "resnet18"), "status"]
        == "no paper value"
    )


def test_table2_ratios_only_inside_one_sweep(runs_dir, tmp_path, make_speed_sweep):
    make_speed_sweep(runs_dir, "sweep-a", {("rside", "resnet50"): (2.0, 900.0), ("drnet", "resnet50"): (30.0, 90.0)})
    make_speed_sweep(runs_dir, "sweep-b", {("drnet", "senet154"): (6.0, 100.0)}, device_name="Other CPU")
    make_speed_sweep(runs_dir, "sweep-c", {("rside", "senet154"): (1.0, 1000.0)}, device_name="Other CPU")
    res = report(runs_dir, tmp_path)
    t2 = frame(res.tables.table2, Table2Row).set_index(["arch", "backbone"])
    assert t2.loc[("drnet", "resnet50"), "speedup_b1_measured"] == pytest.approx(15.0)
    assert t2.loc[("drnet", "resnet50"), "mem_ratio_measured"] == pytest.approx(10.0)
    assert t2.loc[("drnet", "resnet50"), "speedup_b1_paper"] == pytest.approx(18.0)
    assert pd.isna(t2.loc[("drnet", "senet154"), "speedup_b1_measured"])  # RSIDE measured in another sweep
    assert t2.loc[("drnet", "senet154"), "device_name"] == "Other CPU"
    assert t2.loc[("drnet", "densenet161"), "status"] == "missing"


def test_choose_suite(runs_dir, make_eval_run):
    make_eval_run(runs_dir, "smoke", "rside-resnet18", "rside", "resnet18", frames=range(1, 3))
    assert choose_suite(load_runs(runs_dir), None, log=lambda _: None) == "smoke"
    make_eval_run(runs_dir, "paper", "rside-resnet50", "rside", "resnet50", frames=range(1, 3))
    messages = []
    assert choose_suite(load_runs(runs_dir), None, log=messages.append) == "paper"
    assert "several suites" in messages[0]
    assert choose_suite(load_runs(runs_dir), "smoke", log=messages.append) == "smoke"
