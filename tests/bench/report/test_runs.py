"""Reading run directories: well-formed fixtures load; malformed ones give errors naming file and field."""

from __future__ import annotations

import json

import pytest

from bench.report.runs import (
    RunFormatError,
    group_runs,
    is_default_options,
    load_eval_run,
    load_runs,
    select_sweeps,
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


def stamped(day_hour: str) -> str:
    return f"2026-12-{day_hour}:00:00+00:00"


def test_select_sweeps_judges_the_latest_complete_sweep_of_each_setup_and_device(runs_dir, make_speed_sweep):
    models = {("rside", "resnet50"): (1.0, 50.0), ("drnet", "resnet50"): (12.0, 5.0)}
    old_id = "speed-smoke-cpu-fp32-nchw-pt2141-20261202T011540Z"
    old = make_speed_sweep(runs_dir, old_id, models, created_utc=stamped("02T01"))
    newest = make_speed_sweep(runs_dir, "mine", models, created_utc=stamped("02T03"))  # an --out name, no stamp
    make_speed_sweep(runs_dir, "other-cpu", models, device_name="Other CPU", created_utc=stamped("01T00"))
    selection = select_sweeps(load_runs(runs_dir).sweeps, "smoke")
    assert sorted(sw.sweep_id for sw in selection.used) == ["mine", "other-cpu"]
    assert selection.notes == [
        f"speed sweep {old.name} not used: {newest.name} measured the same setup later (a verdict rests on the "
        "latest complete sweep of each device, mode and model pair, never on the best of several)"
    ]


def test_select_sweeps_uses_only_the_reported_suites_sweeps(runs_dir, make_speed_sweep):
    models = {("rside", "resnet50"): (1.0, 50.0), ("drnet", "resnet50"): (12.0, 5.0)}
    make_speed_sweep(runs_dir, "a-smoke", models, suite="smoke")
    make_speed_sweep(runs_dir, "b-mini", models, suite="mini", created_utc=stamped("05T00"))
    make_speed_sweep(runs_dir, "c-out", models, suite=None, created_utc=stamped("06T00"))
    sweeps = load_runs(runs_dir).sweeps
    selection = select_sweeps(sweeps, "smoke")
    assert [sw.sweep_id for sw in selection.used] == ["a-smoke"]
    assert selection.notes == [
        "speed sweep b-mini not used: suite mini; this report judges the sweeps of suite smoke",
        "speed sweep c-out not used: not from this suite (models named on the command line); this report judges "
        "the sweeps of suite smoke",
    ]
    # a report of no suite (a runs directory with sweeps only) judges every suite's, still one per setup
    anyone = select_sweeps(sweeps, None)
    assert [sw.sweep_id for sw in anyone.used] == ["c-out"] and len(anyone.notes) == 2


def test_an_incomplete_sweep_is_not_used_and_a_partly_repeated_one_is_cut(runs_dir, make_speed_sweep):
    pair = {("rside", "resnet50"): (1.0, 50.0), ("drnet", "resnet50"): (12.0, 5.0)}
    both = {**pair, ("rside", "senet154"): (1.0, 60.0), ("drnet", "senet154"): (4.0, 30.0)}
    first = make_speed_sweep(runs_dir, "first", both, created_utc=stamped("01T00"))
    again = make_speed_sweep(runs_dir, "again", pair, created_utc=stamped("02T00"))  # resnet50 only, later
    cut = make_speed_sweep(runs_dir, "cut", pair, created_utc=stamped("03T00"))
    record = json.loads((cut / "config.json").read_text())
    record["config"].update(  # asked for two models in 3 sessions each; RSIDE's row has only 2 (interrupted)
        targets=[{"arch": "rside", "backbone": "resnet50"}, {"arch": "drnet", "backbone": "resnet50"}], pairs=3
    )
    (cut / "config.json").write_text(json.dumps(record))
    summary = (cut / "speed_summary.csv").read_text().replace(",rside-resnet50,3", ",rside-resnet50,2")
    (cut / "speed_summary.csv").write_text(summary)
    selection = select_sweeps(load_runs(runs_dir).sweeps, "smoke")
    used = {sw.sweep_id: sw for sw in selection.used}
    assert sorted(used) == ["again", "first"]
    assert sorted(used["first"].summary["backbone"]) == ["senet154", "senet154"]  # its resnet50 rows: not used
    assert set(used["first"].pairs["backbone"]) == {"senet154"} and set(used["first"].points["backbone"]) == {
        "senet154"
    }
    assert selection.notes == [  # in the order of the directories
        f"speed sweep {cut.name} not used: incomplete: not every model or timing session of its config was "
        "measured (interrupted?)",
        f"speed sweep {first.name}: resnet50 inference not used: {again.name} measured the same setup later (a "
        "verdict rests on the latest complete sweep of each device, mode and model pair, never on the best of "
        "several)",
    ]
