from __future__ import annotations

import csv
import io

import pytest
from runner_fixtures import tiny_config

import bench.tensorboard_log as tb_log
from bench.lifecycle import execute_run
from bench.rundir import RunDir
from bench.tensorboard_log import write_history_scalars


def read_scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag's (step, value) list, as TensorBoard reads the directory (purging included)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def row(step: int, loss: float, rmse: float | None = None) -> dict:
    out = {"epoch": step / 2, "step": step, "train_loss": loss, "lr": 1e-3}
    if rmse is not None:
        out["test_rmse"] = rmse
    return out


def test_a_run_writes_its_history_as_tensorboard_scalars(tmp_path, tiny_data):
    pytest.importorskip("tensorboard")
    config = tiny_config(epochs=3)
    execute_run(config, tmp_path, stream=io.StringIO())
    rd = RunDir.for_config(config, tmp_path)
    with open(rd.history_path, newline="") as f:
        history = list(csv.DictReader(f))
    assert len(history) == 3
    scalars = read_scalars(rd.tensorboard_dir)
    columns = [c for c in history[0] if c != "step"]
    assert sorted(scalars) == sorted(columns) and "test_rmse" in scalars and "train_loss" in scalars
    for column in columns:  # event files hold float32
        expected = [(int(r["step"]), pytest.approx(float(r[column]), rel=1e-6)) for r in history]
        assert scalars[column] == expected, column


def test_appending_and_rewriting_never_duplicate_a_step(tmp_path):
    pytest.importorskip("tensorboard")
    log_dir = tmp_path / "tensorboard"
    write_history_scalars(log_dir, [row(2, 5.0, 3.0)])
    write_history_scalars(log_dir, [row(2, 5.0, 3.0), row(4, 4.0, 2.0)])  # the next epoch: appended
    write_history_scalars(log_dir, [row(2, 5.0, 3.0), row(4, 4.0, 2.0)])  # nothing new: nothing written
    write_history_scalars(log_dir, [row(2, 5.0, 3.0)])  # resumed from the first epoch's checkpoint
    write_history_scalars(log_dir, [row(2, 5.0, 3.0), row(4, 3.5, 1.5)])  # that epoch again, other numbers
    write_history_scalars(log_dir, [row(2, 5.0, 3.0), row(4, 3.5, 1.5), row(6, 3.0)])
    scalars = read_scalars(log_dir)
    assert scalars["train_loss"] == [(2, 5.0), (4, 3.5), (6, 3.0)]
    assert scalars["test_rmse"] == [(2, 3.0), (4, 1.5)]


def test_events_without_their_record_are_replaced_not_duplicated(tmp_path):
    pytest.importorskip("tensorboard")
    log_dir = tmp_path / "tensorboard"
    write_history_scalars(log_dir, [row(2, 5.0), row(4, 4.0)])
    (log_dir / tb_log.WRITTEN_FILE).unlink()  # a process stopped between the events and their record
    write_history_scalars(log_dir, [row(2, 5.0), row(4, 4.0), row(6, 3.0)])
    assert read_scalars(log_dir)["train_loss"] == [(2, 5.0), (4, 4.0), (6, 3.0)]


def test_without_tensorboard_one_notice_and_no_files(tmp_path, monkeypatch):
    monkeypatch.setattr(tb_log, "tensorboard_available", lambda: False)
    rd = RunDir(tmp_path / "run")
    rd.root.mkdir()
    for n in (1, 2, 3):
        rd.write_history([row(2 * k, 1.0) for k in range(1, n + 1)])
    assert rd.history_path.is_file() and not rd.tensorboard_dir.exists()
    notices = [line for line in rd.log_path.read_text().splitlines() if "tensorboard" in line]
    assert len(notices) == 1 and "pip install 'drnet-bench[tensorboard]'" in notices[0]
