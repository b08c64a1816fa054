"""Regression baselines: written from runs, pass on the same runs, fail readably when a metric moves."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.report.baselines import BaselineError, check_baselines, write_baselines
from bench.report.runs import load_runs

FRAMES = range(1, 9)


@pytest.fixture
def regression_runs(runs_dir, make_eval_run):
    make_eval_run(runs_dir, "regression", "rside-resnet18", "rside", "resnet18", frames=FRAMES, noise=0.1)
    make_eval_run(runs_dir, "regression", "drnet-resnet18", "drnet", "resnet18", frames=FRAMES, noise=0.12)
    return runs_dir


def perturb(run_dir, reduction, metric, factor):
    path = run_dir / "metrics.json"
    doc = json.loads(path.read_text())
    doc["reductions"][reduction][metric] *= factor
    path.write_text(json.dumps(doc))


def test_written_baselines_pass_on_the_same_runs(regression_runs, tmp_path):
    path = tmp_path / "regression.json"
    write_baselines(load_runs(regression_runs).evals, path, "regression", "bench report --write-baselines")
    doc = json.loads(path.read_text())
    assert doc["format"] == 1 and doc["suite"] == "regression"
    entry = doc["runs"]["regression-drnet-resnet18-s0"]
    assert entry["n_frames"] == 8 and len(entry["metrics"]) == 24  # 3 reductions x 8 metrics
    assert set(entry["metrics"]["rside.rmse"]) == {"value", "abs", "rel"}
    assert entry["metrics"]["rside.delta1"]["rel"] == 0 and entry["metrics"]["rside.delta1"]["abs"] > 0
    result = check_baselines(load_runs(regression_runs).evals, path)
    assert result.passed, result.format()
    assert "PASSED: 48/48 metrics of 2 run(s)" in result.format()


def test_a_perturbed_metric_fails_with_a_readable_diff(regression_runs, tmp_path):
    path = tmp_path / "regression.json"
    write_baselines(load_runs(regression_runs).evals, path, "regression", "cmd")
    perturb(regression_runs / "regression-drnet-resnet18-s0", "rside", "rmse", 1.01)  # +1 %, tolerance 0.3 %
    result = check_baselines(load_runs(regression_runs).evals, path)
    assert not result.passed
    bad = [c for c in result.checks if not c.ok]
    assert [(c.run_id, c.metric, c.status) for c in bad] == [("regression-drnet-resnet18-s0", "rside.rmse", "FAIL")]
    text = result.format()
    assert "FAILED: 47/48" in text
    line = next(ln for ln in text.splitlines() if "rside.rmse" in ln)
    assert "regression-drnet-resnet18-s0" in line and "FAIL" in line and "±" in line
    assert f"{bad[0].measured - bad[0].baseline:+.6g}" in line


def test_a_move_inside_tolerance_passes_and_tolerances_are_per_metric(regression_runs, tmp_path):
    path = tmp_path / "regression.json"
    write_baselines(load_runs(regression_runs).evals, path, "regression", "cmd")
    perturb(regression_runs / "regression-rside-resnet18-s0", "pooled", "rmse", 1.0005)  # 0.05 % < 0.3 %
    assert check_baselines(load_runs(regression_runs).evals, path).passed
    doc = json.loads(path.read_text())
    doc["runs"]["regression-rside-resnet18-s0"]["metrics"]["pooled.rmse"]["rel"] = 1e-5  # tighten one metric
    path.write_text(json.dumps(doc))
    result = check_baselines(load_runs(regression_runs).evals, path)
    assert [c.metric for c in result.checks if not c.ok] == ["pooled.rmse"]
    # refreshing the values keeps the hand-set tolerance
    write_baselines(load_runs(regression_runs).evals, path, "regression", "cmd")
    assert json.loads(path.read_text())["runs"]["regression-rside-resnet18-s0"]["metrics"]["pooled.rmse"]["rel"] == 1e-5


def test_a_missing_run_fails_and_an_extra_run_is_listed(regression_runs, tmp_path, make_eval_run):
    path = tmp_path / "regression.json"
    write_baselines(load_runs(regression_runs).evals, path, "regression", "cmd")
    make_eval_run(regression_runs, "regression", "drnet-resnet34", "drnet", "resnet34", frames=FRAMES)
    runs = [r for r in load_runs(regression_runs).evals if r.name != "rside-resnet18"]
    result = check_baselines(runs, path)
    assert not result.passed
    assert {c.status for c in result.checks if not c.ok} == {"missing run"}
    assert "not in the baseline file (ignored): regression-drnet-resnet34-s0" in result.format()


def test_malformed_baseline_file_is_a_clear_error(tmp_path):
    path = tmp_path / "b.json"
    with pytest.raises(BaselineError, match="not found"):
        check_baselines([], path)
    path.write_text(json.dumps({"format": 1, "runs": {"r": {"metrics": {"rside.rmse": 0.5}}}}))
    with pytest.raises(BaselineError, match=r"runs\.r\.metrics\.rside\.rmse must be an object with 'value'"):
        check_baselines([], path)


def test_cli_check_baselines_exit_codes(regression_runs, tmp_path):
    base = tmp_path / "regression.json"
    runner = CliRunner()
    args = [
        "report",
        "--runs",
        str(regression_runs),
        "--out",
        str(tmp_path / "rep"),
        "--n-boot",
        "100",
        "--baselines",
        str(base),
    ]
    res = runner.invoke(cli, [*args, "--suite", "regression", "--write-baselines"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, [*args, "--check-baselines"])  # suite taken from the baseline file
    assert res.exit_code == 0, res.output
    assert "baseline check PASSED" in res.output
    perturb(regression_runs / "regression-rside-resnet18-s0", "per_image", "delta1", 0.9)
    res = runner.invoke(cli, [*args, "--check-baselines"])
    assert res.exit_code == 1
    assert "baseline check FAILED" in res.output and "per_image.delta1" in res.output
    res = runner.invoke(cli, [*args, "--check-baselines", "--baselines", str(tmp_path / "none.json")])
    assert res.exit_code == 1 and "baseline file not found" in res.output


def test_nan_metrics_match_only_nan(regression_runs, tmp_path):
    """metrics.json writes NaN as null (e.g. log10 with a non-positive prediction): NaN matches only NaN."""
    run_dir = regression_runs / "regression-drnet-resnet18-s0"
    doc = json.loads((run_dir / "metrics.json").read_text())
    doc["reductions"]["rside"]["log10"] = None
    (run_dir / "metrics.json").write_text(json.dumps(doc))
    path = tmp_path / "regression.json"
    write_baselines(load_runs(regression_runs).evals, path, "regression", "cmd")
    assert check_baselines(load_runs(regression_runs).evals, path).passed
    doc["reductions"]["rside"]["log10"] = 0.05
    (run_dir / "metrics.json").write_text(json.dumps(doc))
    result = check_baselines(load_runs(regression_runs).evals, path)
    assert [(c.metric, c.status) for c in result.checks if not c.ok] == [("rside.log10", "FAIL")]
    assert "nan" in result.format()


def test_a_different_thread_count_is_pointed_out(regression_runs, tmp_path):
    for run_dir in regression_runs.iterdir():
        cfg = json.loads((run_dir / "config.json").read_text())
        cfg["provenance"]["device"]["threads"] = 1
        (run_dir / "config.json").write_text(json.dumps(cfg))
    path = tmp_path / "regression.json"
    write_baselines(load_runs(regression_runs).evals, path, "regression", "cmd")
    assert json.loads(path.read_text())["generated"]["threads"] == 1
    assert check_baselines(load_runs(regression_runs).evals, path).notes == []
    doc = json.loads(path.read_text())
    doc["generated"]["threads"] = 2
    path.write_text(json.dumps(doc))
    result = check_baselines(load_runs(regression_runs).evals, path)
    assert result.passed and "the runs used 1 CPU thread(s), the baseline 2" in result.format()
