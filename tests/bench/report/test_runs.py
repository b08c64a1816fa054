"""Reading run directories: well-formed fixtures load; malformed ones give errors naming file and field."""

from __future__ import annotations

import json

import pytest

from bench.report.runs import (
    RunFormatError,
    group_runs,
    is_default_options,
    latest_sweeps,
    load_eval_run,
    load_runs,
    switches_of,
)


def test_load_runs_finds_evals_sweeps_and_problems(runs_dir, make_eval_run, make_speed_sweep):
    make_eval_run(runs_dir, "smoke", "rside-resnet18", "rside", "resnet18", frames=range(1, 6))
    make_eval_run(runs_dir, "smoke", "drnet-resnet18", "drnet", "resnet18", seed=1, frames=range(1, 6))
    make_speed_sweep(runs_dir, "speed-cpu", {("rside", "resnet18"): (10.0, 50.0)})
    (runs_dir / "smoke-unfinished-s0").mkdir()
    (runs_dir / "smoke-unfinished-s0" / "config.json").write_text("{}")
    found = load_runs(runs_dir)
    assert sorted(r.run_id for r in found.evals) == ["smoke-drnet-resnet18-s1", "smoke-rside-resnet18-s0"]
    assert [s.sweep_id for s in found.sweeps] == ["speed-cpu"]
    assert found.sweeps[0].summary["options"].tolist() == [{}]
    assert len(found.problems) == 1 and "unfinished" in found.problems[0].problem
    assert found.suites == ["smoke"]


def test_missing_runs_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_runs(tmp_path / "nope")


def test_metrics_json_missing_field_names_file_and_field(runs_dir, make_eval_run):
    path = make_eval_run(runs_dir, "smoke", "x", "rside", "resnet18", frames=range(1, 4))
    metrics = json.loads((path / "metrics.json").read_text())
    del metrics["backbone"]
    (path / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(RunFormatError, match=r"metrics\.json: missing field\(s\) 'backbone'"):
        load_eval_run(path)
    found = load_runs(runs_dir)  # the report lists it instead of crashing
    assert found.evals == [] and "backbone" in found.problems[0].problem


def test_per_image_csv_checks(runs_dir, make_eval_run):
    path = make_eval_run(runs_dir, "smoke", "x", "rside", "resnet18", frames=range(1, 4))
    csv = (path / "per_image.csv").read_text().splitlines()
    (path / "per_image.csv").write_text("\n".join(csv[:-1]) + "\n")
    with pytest.raises(RunFormatError, match="2 rows but metrics.json says n_frames = 3"):
        load_eval_run(path)
    header = csv[0].replace(",sum_sq,", ",sum_sq_renamed,")
    (path / "per_image.csv").write_text("\n".join([header, *csv[1:]]) + "\n")
    with pytest.raises(RunFormatError, match=r"per_image\.csv: missing column\(s\) sum_sq"):
        load_eval_run(path)
    (path / "per_image.csv").write_text("\n".join([csv[0], csv[1], csv[1], csv[2]]) + "\n")
    with pytest.raises(RunFormatError, match="appear more than once"):
        load_eval_run(path)


def test_broken_json_is_reported(runs_dir, make_eval_run):
    path = make_eval_run(runs_dir, "smoke", "x", "rside", "resnet18", frames=range(1, 4))
    (path / "metrics.json").write_text("{not json")
    with pytest.raises(RunFormatError, match="not valid JSON"):
        load_eval_run(path)


def test_grouping_seeds_and_switches(runs_dir, make_eval_run):
    for seed in (2, 0, 1):
        make_eval_run(runs_dir, "paper", "drnet-resnet18", "drnet", "resnet18", seed=seed, frames=range(1, 4))
    groups = group_runs(load_runs(runs_dir).evals)
    assert len(groups) == 1 and [r.seed for r in groups[0].runs] == [0, 1, 2]
    assert groups[0].label == "paper-drnet-resnet18-s{0,1,2}"
    assert switches_of({}) == (True, True, True)
    assert switches_of({"aux_losses": False, "channels": 64}) == (True, False, True)
    assert is_default_options({"diagonal": True}) and not is_default_options({"second_branch": False})


def test_nan_error_sums_are_allowed_but_nan_counts_are_not(runs_dir, make_eval_run):
    """A non-positive prediction makes the log sums NaN (bench.metrics, as RSIDE): the run still loads."""
    path = make_eval_run(runs_dir, "smoke", "x", "rside", "resnet18", frames=range(1, 4))
    csv = (path / "per_image.csv").read_text().splitlines()
    header = csv[0].split(",")
    row = csv[1].split(",")
    row[header.index("sum_log10")] = ""
    (path / "per_image.csv").write_text("\n".join([csv[0], ",".join(row), *csv[2:]]) + "\n")
    assert load_eval_run(path).per_image["sum_log10"].isna().sum() == 1
    row[header.index("lt1")] = ""
    (path / "per_image.csv").write_text("\n".join([csv[0], ",".join(row), *csv[2:]]) + "\n")
    with pytest.raises(RunFormatError, match="empty value.*count column.*lt1"):
        load_eval_run(path)


def test_latest_sweeps_keeps_the_newest_of_each_setup_and_device(runs_dir, make_speed_sweep):
    models = {("rside", "resnet18"): (10.0, 50.0)}
    ids = [
        "speed-smoke-cpu-fp32-nchw-pt2141-20261202T011643Z",
        "speed-smoke-cpu-fp32-nchw-pt2141-20261201T230000Z",
        "speed-smoke-cpu-fp32-nchw-pt2141-20261202T011540Z",
    ]
    for sweep_id in ids:
        make_speed_sweep(runs_dir, sweep_id, models)
    other_cpu = make_speed_sweep(runs_dir, ids[2] + "-x", models, device_name="Other CPU").name  # not a stamp end
    make_speed_sweep(runs_dir, "speed-smoke-cpu-fp32-nchw-pt2141-20261202T020000Z", models, device_name="Other CPU")
    kept, superseded = latest_sweeps(load_runs(runs_dir).sweeps)
    assert sorted(sw.sweep_id for sw in kept) == sorted(
        [ids[0], other_cpu, "speed-smoke-cpu-fp32-nchw-pt2141-20261202T020000Z"]
    )
    assert sorted((old.sweep_id, new.sweep_id) for old, new in superseded) == [(ids[1], ids[0]), (ids[2], ids[0])]
