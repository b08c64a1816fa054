"""bench status (bench.status): a runs directory holding a run in every state, with and without a launcher."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import time
from pathlib import Path

from click.testing import CliRunner
from fake_slurm import install
from runner_fixtures import register_tiny_model, tiny_config

from bench.cli import cli
from bench.io import write_json_atomic
from bench.lifecycle import execute_run
from bench.rundir import RunDir
from bench.status import collect_status, status_table

NAMES = ("done", "cut", "live", "starting", "local", "queued", "requeued", "broken", "node-fail", "damaged", "never")


def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "st.toml"
    path.write_text(
        f'[defaults]\narch = "{register_tiny_model()}"\nbackbone = "none"\ndevice = "cpu"\n'
        + "".join(f'[[runs]]\nname = "{n}"\n' for n in NAMES)
    )
    return path


def trained(runs: Path, name: str) -> RunDir:
    """A finished tiny run of suite st in ``runs``, in the directory of run ``name`` (trained once, copied)."""
    template = runs.parent / "template"
    if not template.is_dir():
        execute_run(tiny_config(suite="st", name="done", keep_checkpoints=True), template, stream=io.StringIO())
    shutil.copytree(template / "st-done-s0", runs / f"st-{name}-s0")
    return RunDir(runs / f"st-{name}-s0")


def interrupted(runs: Path, name: str, age_s: float = 1200) -> RunDir:
    """A run whose metrics were never written (as if killed after its last checkpoint), log ``age_s`` old."""
    rd = trained(runs, name)
    rd.metrics_path.unlink()
    old = time.time() - age_s
    os.utime(rd.log_path, (old, old))
    return rd


def record(rd: RunDir, **fields) -> None:
    write_json_atomic(rd.root / "launch.json", {"run_id": rd.root.name, "suite": "st", "token": "t", **fields})


def test_status_shows_every_state(tmp_path, tiny_data, monkeypatch):
    env = install(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setenv("FAKE_SLURM_DIR", env["FAKE_SLURM_DIR"])
    slurm = Path(env["FAKE_SLURM_DIR"])
    runs = tmp_path / "runs"
    trained(runs, "done")
    interrupted(runs, "cut")
    live = interrupted(runs, "live", age_s=0)
    live.log("st-live-s0 | epoch 2/2 | step 1/3 | loss 0.41 | lr 1.0e-03 | 3.1 img/s | eta 0:02")
    record(
        interrupted(runs, "local"),
        launcher="local",
        state="running",
        job_id="4242",
        pid=os.getpid(),
        host=socket.gethostname(),
    )
    queued = RunDir(runs / "st-queued-s0")
    record(queued, launcher="slurm", state="queued", job_id="1001")
    record(interrupted(runs, "requeued"), launcher="slurm", state="requeued", job_id="1002")
    broken = interrupted(runs, "broken")
    broken.log("FAILED st-broken-s0: ValueError: boom")
    record(interrupted(runs, "node-fail"), launcher="slurm", state="running", job_id="1003")
    for job, state in (("1001", "PENDING"), ("1002", "REQUEUED"), ("1003", "NODE_FAIL")):
        (slurm / f"{job}.state").write_text(state)
    shutil.copytree(runs / "st-done-s0", runs / "other-x-s0")  # another suite's run: left out with --suite
    config = json.loads((runs / "other-x-s0" / "config.json").read_text())
    config["config"]["suite"] = "other"
    (runs / "other-x-s0" / "config.json").write_text(json.dumps(config))

    damaged = trained(runs, "damaged")
    damaged.final_weights.write_bytes(damaged.final_weights.read_bytes()[:100])  # cut short by a copy
    with live.try_lock(), RunDir(runs / "st-starting-s0").try_lock():  # held, as by a run being written
        rows = {r.run_id: r for r in collect_status(runs, str(suite_file(tmp_path)))}
    assert list(rows) == [f"st-{n}-s0" for n in NAMES]
    state = {name.split("-", 1)[1][:-3]: (r.state, r.job) for name, r in rows.items()}
    assert state == {
        "done": ("complete", "-"),
        "cut": ("interrupted", "-"),
        "live": ("running", "-"),
        "starting": ("running", "-"),
        "local": ("running", "local 4242"),
        "queued": ("queued", "slurm 1001"),
        "requeued": ("queued", "slurm 1002"),
        "broken": ("failed", "-"),
        "node-fail": ("interrupted", "slurm 1003"),
        "damaged": ("damaged", "-"),
        "never": ("not started", "-"),
    }
    steps = 6  # 6 frames, batch 2, 2 epochs: the last checkpoint is at step 6
    assert rows["st-done-s0"].detail.startswith("rmse ") and f"({steps} steps)" in rows["st-done-s0"].detail
    assert rows["st-cut-s0"].detail.startswith(f"resumable: last checkpoint step {steps} (epoch 3, step 0 of it)")
    holder = f"locked by {socket.gethostname()}:{os.getpid()} since "
    assert (
        rows["st-live-s0"].detail.startswith("epoch 2/2, step 1/3, eta 0:02 (log ")
        and holder in rows["st-live-s0"].detail
    )
    assert rows["st-starting-s0"].detail.startswith(f"starting; {holder}")
    assert rows["st-damaged-s0"].detail.startswith(
        f"{damaged.final_weights} is damaged (100 bytes, metrics.json recorded "
    )
    assert rows["st-damaged-s0"].detail.endswith("or `bench run --rerun` trains it again")  # last.pt was kept
    assert rows["st-requeued-s0"].detail == f"requeued; resumes from step {steps} (epoch 3, step 0 of it)"
    assert rows["st-broken-s0"].detail == "ValueError: boom"
    assert "other-x-s0" in {r.run_id for r in collect_status(runs)}  # without --suite: every run directory

    table = status_table(list(rows.values()))
    assert table.splitlines()[0].split() == ["run", "state", "job", "progress", "/", "detail"]
    assert table.splitlines()[-1] == (
        "1 complete, 2 interrupted, 3 running, 2 queued, 1 failed, 1 damaged, 1 not started"
    )


def test_status_without_a_scheduler_trusts_the_launch_record(tmp_path, tiny_data, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no sacct, no squeue
    runs = tmp_path / "runs"
    record(interrupted(runs, "cut"), launcher="slurm", state="running", job_id="77")
    (row,) = collect_status(runs)
    assert (row.state, row.job) == ("running", "slurm 77")


def test_status_command(tmp_path, tiny_data):
    runs = tmp_path / "runs"
    trained(runs, "done")
    result = CliRunner().invoke(cli, ["status", "--runs", str(runs), "--suite", str(suite_file(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "st-done-s0" in result.output and "complete" in result.output
    assert "st-never-s0" in result.output and "not started" in result.output
    empty = CliRunner().invoke(cli, ["status", "--runs", str(tmp_path / "nothing")])
    assert empty.exit_code == 0 and "no runs in" in empty.output
    bad = CliRunner().invoke(cli, ["status", "--runs", str(runs), "--suite", "nope"])
    assert bad.exit_code == 1 and "unknown suite 'nope'" in bad.output


def test_a_job_stopped_by_a_signal_is_interrupted_and_resumable(tmp_path, tiny_data):
    runs = tmp_path / "runs"
    stopped = {"state": "interrupted", "signal": "SIGTERM", "interrupted_utc": "2026-01-01T00:00:00Z"}
    record(interrupted(runs, "cut"), launcher="local", job_id="9", pid=1, host=socket.gethostname(), **stopped)
    (row,) = collect_status(runs)
    assert (row.state, row.job) == ("interrupted", "local 9")
    assert row.detail.startswith("resumable (SIGTERM at 2026-01-01T00:00:00Z): last checkpoint step 6 (epoch 3")
