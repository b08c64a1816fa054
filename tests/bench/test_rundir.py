from __future__ import annotations

import io
import json

import h5py
import pytest
from runner_fixtures import tiny_config

from bench.config import RunConfig
from bench.lifecycle import execute_run
from bench.rundir import RunDir, RunDirError, RunState
from bench.tensorboard_log import tensorboard_available


def test_states(tmp_path):
    rd = RunDir(tmp_path / "r")
    assert rd.state() == RunState.ABSENT
    rd.root.mkdir()
    assert rd.state() == RunState.ABSENT  # a directory without config.json holds nothing worth keeping
    rd.write_config(RunConfig(), {"seed": 0})
    assert rd.state() == RunState.STARTED
    rd.metrics_path.write_text("{}")
    assert rd.state() == RunState.COMPLETE
    imported = RunDir(tmp_path / "i")
    imported.write_config(RunConfig(source="imported", epochs=0), {})
    assert imported.state() == RunState.IMPORTED


def test_config_round_trip_and_provenance_update(tmp_path):
    rd = RunDir(tmp_path / "r")
    c = RunConfig(name="x", options={"a": 1})
    rd.write_config(c, {"seed": 3})
    rd.update_provenance(wall_time_s=1.5)
    back, prov = rd.read_config()
    assert back == c and prov == {"seed": 3, "wall_time_s": 1.5}


def test_damaged_config_is_a_clear_error(tmp_path):
    rd = RunDir(tmp_path / "r")
    rd.root.mkdir()
    rd.config_path.write_text("{not json")
    with pytest.raises(RunDirError, match="cannot read .*config.json"):
        rd.read_config()
    rd.config_path.write_text(json.dumps({"config": {"epoch": 1}}))
    with pytest.raises(RunDirError, match="unknown key.*'epoch'"):
        rd.read_config()
    rd.config_path.write_text(json.dumps({"something": 1}))
    with pytest.raises(RunDirError, match="has no 'config' object"):
        rd.read_config()


def test_run_directory_layout(tmp_path, tiny_data):
    """A finished run has exactly the files runs/README.md lists, with the fields it promises."""
    config = tiny_config(epochs=1)
    outcome = execute_run(config, tmp_path, stream=io.StringIO())
    assert outcome.status == "trained" and outcome.steps == 3
    rd = RunDir(tmp_path / "test-tiny-s0")
    files = sorted(str(p.relative_to(rd.root)) for p in rd.root.rglob("*") if p.is_file())
    events = [f for f in files if f.startswith("tensorboard/")]
    assert events == (
        ["tensorboard/" + next(rd.tensorboard_dir.glob("events.out.tfevents.*")).name, "tensorboard/written.json"]
        if tensorboard_available()
        else []
    )
    assert [f for f in files if f not in events] == [
        "checkpoints/final.pt",
        "config.json",
        "history.csv",
        "log.txt",
        "metrics.json",
        "per_image.csv",
        "predictions.h5",
    ]  # last.pt (with the optimiser state) is dropped
    doc = json.loads(rd.config_path.read_text())
    assert set(doc) == {"config", "provenance"}
    assert RunConfig.from_dict(doc["config"]) == config.replace(train_variant="tiny-6")
    prov = doc["provenance"]
    assert {"git", "versions", "device", "data", "seed", "created_utc", "wall_time_s", "model_options"} <= set(prov)
    assert {"python", "torch", "torchvision", "timm", "cuda"} <= set(prov["versions"])
    assert "commit" in prov["git"] and prov["seed"] == 0 and prov["wall_time_s"] > 0
    assert prov["data"]["source"] == "synthetic" and prov["data"]["test"]["frames"] == 4
    metrics = json.loads(rd.metrics_path.read_text())
    for key in (
        "run_id",
        "suite",
        "name",
        "arch",
        "backbone",
        "options",
        "seed",
        "checkpoint",
        "epoch",
        "protocol",
        "data",
        "n_frames",
        "reductions",
        "boundary",
        "headline_reduction",
    ):
        assert key in metrics, key
    assert metrics["run_id"] == "test-tiny-s0" and metrics["checkpoint"] == "last" and metrics["n_frames"] == 4
    assert metrics["data"]["train_variant"] == "tiny-6"
    assert len(rd.per_image_path.read_text().splitlines()) == 1 + 4
    with h5py.File(rd.predictions_path) as f:
        assert set(f) == {"frame", "image", "depth", "valid", "pred"}
    assert "finished test-tiny-s0" in rd.log_path.read_text()


def test_final_weights_alone_reproduce_the_metrics(tmp_path, tiny_data):
    """final.pt holds the evaluated weights and nothing else; evaluating them again gives metrics.json."""
    from runner_fixtures import RSIDE_LIKE_PROTOCOL, TinyNet

    from bench.evaluate import evaluate
    from bench.train import load_checkpoint

    config = tiny_config(epochs=2, checkpoint_select="best")
    outcome = execute_run(config, tmp_path, stream=io.StringIO())
    rd = RunDir(tmp_path / config.run_id)
    assert sorted(p.name for p in rd.checkpoints.iterdir()) == ["final.pt"]
    payload = load_checkpoint(rd.final_weights)
    assert payload["kind"] == "final" and payload["checkpoint"] == "best" and "optimizer" not in payload
    model = TinyNet()
    model.load_state_dict(payload["model"])
    _, test_set = tiny_data(config, (64, 80), train=False)
    again = evaluate(model, test_set, RSIDE_LIKE_PROTOCOL, batch_size=3, input_size=config.input_size)
    stored = json.loads(rd.metrics_path.read_text())["reductions"]["rside"]
    assert again.headline()["rmse"] == pytest.approx(stored["rmse"], rel=1e-6)
    assert outcome.size_bytes is None  # execute_run alone does not measure; run_plan does


def test_keep_checkpoints_keeps_the_training_state(tmp_path, tiny_data):
    from bench.launchers.inline import run_plan

    [outcome] = run_plan([tiny_config(epochs=1, keep_checkpoints=True)], tmp_path, stream=io.StringIO())
    rd = RunDir(tmp_path / "test-tiny-s0")
    assert sorted(p.name for p in rd.checkpoints.iterdir()) == ["final.pt", "last.pt"]
    on_disk = sum(p.stat().st_size for p in rd.root.rglob("*") if p.is_file())
    assert outcome.size_bytes == on_disk > rd.last_checkpoint.stat().st_size


def test_move_aside_never_overwrites_and_the_report_does_not_read_it(tmp_path, tiny_data):
    from datetime import datetime, timezone

    from bench.report.runs import load_runs

    execute_run(tiny_config(epochs=1), tmp_path, stream=io.StringIO())
    rd = RunDir(tmp_path / "test-tiny-s0")
    now = datetime(2026, 12, 1, 7, 15, 0, tzinfo=timezone.utc)
    first = rd.move_aside(now)
    assert first == tmp_path / ".old" / "test-tiny-s0.old-20261201T071500Z" and (first / "metrics.json").is_file()
    assert not rd.root.exists()
    execute_run(tiny_config(epochs=1), tmp_path, stream=io.StringIO())
    second = rd.move_aside(now)  # same second: a new name, the first copy untouched
    assert second != first and second.parent == first.parent and (first / "metrics.json").is_file()
    execute_run(tiny_config(epochs=1), tmp_path, stream=io.StringIO())
    found = load_runs(tmp_path)
    assert [r.path.name for r in found.evals] == ["test-tiny-s0"] and not found.problems
