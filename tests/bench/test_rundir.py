from __future__ import annotations

import io
import json
import os

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


# --- one writer, intact weights, disk space (issue 25) -----------------------------------------------------


def test_a_directory_another_process_holds_is_not_moved_aside(tmp_path):
    from test_runlock import Holder

    from bench.rundir import RunLockedError

    rd = RunDir(tmp_path / "test-tiny-s0")
    rd.write_config(tiny_config(), {})
    assert rd.lock_path == tmp_path / ".locks" / "test-tiny-s0.lock" and rd.lock_holder() is None
    other = Holder(rd.lock_path)
    try:
        assert other.first_line == "held"
        holder = rd.lock_holder()
        assert holder.pid == other.proc.pid and rd.lock_holder().describe().startswith("locked by ")
        with pytest.raises(
            RunLockedError, match=rf"test-tiny-s0 is in use, not moved aside: locked by .*:{holder.pid} "
        ):
            rd.move_aside()
        assert rd.config_path.is_file() and not (tmp_path / ".old").exists()
    finally:
        other.done()
    with rd.try_lock() as mine:  # a --rerun holds the run's lock from the move to the end of the new run
        moved = rd.move_aside()
        assert mine.held and rd.lock_holder() == mine.holder and (moved / "config.json").is_file()
    assert rd.lock_holder() is None


def finished_run(tmp_path, **changes):
    from bench.io import write_json_atomic
    from bench.train import CHECKPOINT_FORMAT

    rd = RunDir(tmp_path / "r")
    rd.checkpoints.mkdir(parents=True)
    import torch

    torch.save({"format": CHECKPOINT_FORMAT, "kind": "final", "model": {"w": torch.arange(1000.0)}}, rd.final_weights)
    write_json_atomic(rd.metrics_path, {"checkpoint": "last", "final_weights": rd.final_weights_record(), **changes})
    return rd


def test_final_weights_are_checked_against_the_digest_in_metrics_json(tmp_path):
    rd = finished_run(tmp_path)
    record = rd.read_metrics()["final_weights"]
    assert record["path"] == "checkpoints/final.pt" and record["bytes"] == rd.final_weights.stat().st_size
    assert len(record["sha256"]) == 64 and rd.final_weights_problem() is None
    data = rd.final_weights.read_bytes()
    rd.final_weights.write_bytes(data[: len(data) // 2])  # cut in half by a copy between machines
    assert rd.final_weights_problem() == (
        f"{rd.final_weights} is damaged ({len(data) // 2:,} bytes, metrics.json recorded {len(data):,} (sha256 "
        f"{record['sha256'][:16]}...)); `bench run --rerun` trains it again (checkpoints/last.pt was not kept)"
    )
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10  # one flipped bit, same size
    rd.final_weights.write_bytes(bytes(flipped))
    rd.last_checkpoint.write_bytes(b"training state")  # kept (keep_checkpoints = true)
    problem = rd.final_weights_problem()
    assert (
        problem.startswith(f"{rd.final_weights} is damaged (sha256 ") and f"recorded {record['sha256'][:16]}" in problem
    )
    assert (
        "re-evaluate it from checkpoints/last.pt, which was kept (move metrics.json aside and run `bench run "
        in problem
    )
    assert problem.endswith("or `bench run --rerun` trains it again") and "\n" not in problem
    rd.final_weights.unlink()
    assert rd.final_weights_problem().startswith(f"{rd.final_weights} is damaged (missing); re-evaluate it from")


def test_final_pt_is_the_same_bytes_for_the_same_weights_and_config_wherever_the_config_came_from(tmp_path):
    """A job gets its config unpickled (its strings not shared with the code's literals); pickle would store
    them differently, and final.pt's sha256 in metrics.json would differ from an inline run's."""
    import pickle

    from runner_fixtures import TinyNet

    from bench.lifecycle import save_final_weights

    config, model = tiny_config(), TinyNet()
    here, job = RunDir(tmp_path / "here"), RunDir(tmp_path / "job")
    save_final_weights(here, config, model, "last", 2.0, 6)
    save_final_weights(job, pickle.loads(pickle.dumps(config)), model, "last", 2.0, 6)
    assert here.final_weights.read_bytes() == job.final_weights.read_bytes()
    assert here.final_weights_record()["sha256"] == job.final_weights_record()["sha256"]


def test_a_digest_is_computed_once_while_the_file_is_unchanged(tmp_path, monkeypatch):
    import bench.rundir

    rd = finished_run(tmp_path)
    calls = []
    monkeypatch.setattr(bench.rundir, "sha256_file", lambda path: calls.append(path) or "0" * 64)
    os.utime(rd.final_weights, ns=(1, 1))  # touched since finished_run digested it: read again, once
    assert rd.final_weights_problem() and rd.final_weights_problem() and len(calls) == 1
    assert rd.final_weights_problem(digest=False) is None and len(calls) == 1  # the size alone: no file read


def test_a_best_checkpoint_run_is_re_evaluated_from_best_pt_only(tmp_path):
    rd = finished_run(tmp_path, checkpoint="best")
    rd.final_weights.write_bytes(b"x")
    rd.last_checkpoint.write_bytes(b"last")  # the wrong weights for a run that evaluated its best epoch
    assert rd.final_weights_problem().endswith("`bench run --rerun` trains it again (checkpoints/best.pt was not kept)")
    rd.best_checkpoint.write_bytes(b"best")
    assert "re-evaluate it from checkpoints/best.pt, which was kept" in rd.final_weights_problem()


def test_runs_finished_before_the_digest_existed_are_not_judged(tmp_path):
    rd = RunDir(tmp_path / "old")
    rd.root.mkdir()
    rd.metrics_path.write_text('{"checkpoint": "last"}')
    assert rd.final_weights_problem() is None


def test_a_full_disk_at_the_log_names_log_txt(tmp_path, monkeypatch):
    import builtins
    import errno

    from bench.io import DiskFullError

    rd = RunDir(tmp_path / "r")
    rd.log("first")
    real_open = builtins.open

    class FullFile:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: FullFile(real_open(p, *a, **k)))
    with pytest.raises(DiskFullError) as caught:
        rd.log("second")
    assert str(caught.value).startswith(f"no space left on device for {rd.log_path}: it needs about 28 bytes, ")
    assert str(caught.value).endswith("free on its filesystem; its earlier lines are kept")
    monkeypatch.undo()
    assert rd.log_path.read_text().endswith(" first\n")


def test_the_space_planned_runs_need(tmp_path, monkeypatch):
    import bench.rundir as rundir

    c = tiny_config(amsgrad=True)
    params, buffers = rundir.model_tensor_bytes(c)
    assert (params, buffers) == ((3 * 8 * 9 + 8 + 8 * 9 + 1 + 2 * 8) * 4, (2 * 8) * 4 + 8)  # TinyNet(8), fp32
    fp = rundir.run_footprint(c, 4_000_000, 1_000)
    weights = 4_001_000 + rundir.CHECKPOINT_EXTRA_BYTES
    assert fp.final_bytes == weights and fp.last_bytes == weights + 3 * 4_000_000  # Adam + amsgrad: 3 moments
    assert fp.peak_bytes == 2 * fp.last_bytes + weights + rundir.RESULTS_BYTES  # last.pt and its next version
    assert fp.kept_bytes == weights + rundir.RESULTS_BYTES
    assert rundir.run_footprint(c.replace(amsgrad=False), 4_000_000, 1_000).last_bytes == weights + 8_000_000
    kept = rundir.run_footprint(c.replace(keep_checkpoints=True, checkpoint_select="best"), 4_000_000, 1_000)
    assert kept.kept_bytes == weights + rundir.RESULTS_BYTES + 2 * kept.last_bytes

    monkeypatch.setattr(rundir, "model_tensor_bytes", lambda config: (4_000_000, 1_000))
    runs = [c.replace(seed=s) for s in range(3)]
    needed, prints = rundir.planned_bytes(runs, tmp_path)
    assert needed == 3 * fp.kept_bytes + (fp.peak_bytes - fp.kept_bytes) + rundir.REPORT_BYTES
    assert [p.run_id for p in prints] == ["test-tiny-s0", "test-tiny-s1", "test-tiny-s2"]
    assert rundir.planned_bytes(runs, tmp_path, parallel=2)[0] == needed + fp.peak_bytes - fp.kept_bytes
    done = RunDir(tmp_path / "test-tiny-s1")
    done.root.mkdir()
    done.metrics_path.write_text("{}")  # complete: needs nothing more
    assert rundir.planned_bytes(runs, tmp_path)[0] == needed - fp.kept_bytes
    monkeypatch.setattr(rundir, "free_bytes", lambda path: 10**9)
    assert rundir.disk_space_warning(runs, tmp_path) is None
    monkeypatch.setattr(rundir, "free_bytes", lambda path: 50 * 2**20)
    warning = rundir.disk_space_warning(runs, tmp_path)
    assert warning.startswith(f"{tmp_path} has 50.0 MiB (52,428,800 bytes) free; the 2 run(s) to train will need ")
    assert "last.pt while training: up to 15.5 MiB" in warning and "\n" not in warning
