"""bench run --launcher local|slurm (bench.launchers): options, the sbatch script, and real jobs on the CPU
(submitit's local executor, and a fake SLURM on PATH) that are preempted or killed and resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import fake_slurm
import pytest
from click.testing import CliRunner
from runner_fixtures import REPO, process_env, tiny_rside_suite
from runner_fixtures import bench_process as bench
from test_runlock import Holder

from bench.cli import cli
from bench.config import ConfigError, RunConfig
from bench.launchers.options import LaunchOptions, parse_slurm_args, parse_time_minutes
from bench.launchers.slurm import slurm_parameters
from bench.rundir import RunDir

submitit = pytest.importorskip("submitit")  # the `cluster` extra (also in `test`)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_time_limits_parse_like_slurm():
    assert [parse_time_minutes(t) for t in ("90", "1:30:00", "45:30", "2-00:00:00", "1-12", "0-0:0:1")] == [
        90,
        90,
        46,
        2880,
        2160,
        1,
    ]
    assert parse_time_minutes(None) is None
    for bad in ("abc", "1:2:3:4", "0"):
        with pytest.raises(ConfigError, match="--time"):
            parse_time_minutes(bad)


def test_slurm_args_parse_and_bad_ones_are_named():
    assert parse_slurm_args(["constraint=a100", "--exclude=node[01-03]"]) == {
        "constraint": "a100",
        "exclude": "node[01-03]",
    }
    with pytest.raises(ConfigError, match="--slurm-arg 'constraint'"):
        parse_slurm_args(["constraint"])


def test_the_sbatch_script_asks_for_what_the_options_say(tmp_path):
    from submitit.slurm.slurm import _make_sbatch_string

    config = RunConfig(suite="paper", name="drnet-resnet50", arch="drnet", backbone="resnet50", device="cuda")
    options = LaunchOptions(
        launcher="slurm",
        gpus_per_run=4,
        partition="gpu",
        cpus_per_gpu=8,
        mem="200G",
        time_min=parse_time_minutes("2-00:00:00"),
        account="lab",
        qos="high",
        slurm_args={"constraint": "a100"},
    )
    script = _make_sbatch_string(
        command="python -u -m submitit.core._submit X", folder=tmp_path, **slurm_parameters(config, options)
    )
    for line in (
        "--gres=gpu:4",
        "--ntasks-per-node=4",
        "--cpus-per-task=8",
        "--mem=200G",
        "--time=2880",
        "--partition=gpu",
        "--account=lab",
        "--qos=high",
        "--constraint=a100",
        "--requeue",
        "--job-name=paper-drnet-resnet50-s0",
        "--signal=USR2@120",
    ):
        assert f"#SBATCH {line}\n" in script
    cpu = slurm_parameters(config.replace(device="cpu", amp="none"), LaunchOptions(launcher="slurm"))
    assert "gres" not in cpu and cpu["ntasks_per_node"] == 1 and cpu["time"] == 24 * 60


def test_launcher_options_without_a_launcher_are_refused(tmp_path):
    result = invoke("run", "--suite", "regression", "--partition", "gpu", "--wait", "--runs-dir", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert "--partition, --wait need(s) --launcher local or slurm" in result.output
    assert not (tmp_path / "r").exists()
    result = invoke(
        "run", "--suite", "regression", "--launcher", "local", "--partition", "gpu", "--runs-dir", str(tmp_path / "r")
    )
    assert result.exit_code == 2 and "--partition need(s) --launcher slurm" in result.output


def test_the_plan_is_checked_before_anything_is_submitted(tmp_path, monkeypatch):
    env = fake_slurm.install(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setenv("FAKE_SLURM_DIR", env["FAKE_SLURM_DIR"])
    suite = tiny_suite(tmp_path)
    runs = tmp_path / "runs"
    (runs / "k-r-s0").mkdir(parents=True)
    (runs / "k-r-s0" / "config.json").write_text("{not json")
    result = invoke("run", "--suite", str(suite), "--runs-dir", str(runs), "--launcher", "slurm", "--mem", "lots")
    assert result.exit_code == 2 and "--mem 'lots'" in result.output
    result = invoke("run", "--suite", str(suite), "--runs-dir", str(runs), "--launcher", "slurm")
    assert result.exit_code == 2 and "nothing was submitted" in result.output and "config.json" in result.output
    assert not (Path(env["FAKE_SLURM_DIR"]) / "counter").exists()  # sbatch never ran
    (runs / "k-r-s0" / "config.json").unlink()  # now a job that is still queued for the run
    (runs / "k-r-s0" / "launch.json").write_text(json.dumps({"launcher": "slurm", "job_id": "77", "state": "queued"}))
    (Path(env["FAKE_SLURM_DIR"]) / "77.state").write_text("PENDING")
    result = invoke("run", "--suite", str(suite), "--runs-dir", str(runs), "--launcher", "slurm")
    assert result.exit_code == 2 and "slurm job 77 is queued for this run; wait for it or `scancel 77`" in result.output
    assert not (Path(env["FAKE_SLURM_DIR"]) / "counter").exists()
    other = Holder(RunDir(runs / "k-r-s0").lock_path)  # a process writing the run (an inline `bench run`, say)
    try:
        result = invoke("run", "--suite", str(suite), "--runs-dir", str(runs), "--launcher", "slurm")
    finally:
        other.done()
    assert result.exit_code == 0, result.output  # no job for a run another process writes: it is skipped
    assert f"note: {runs / 'k-r-s0'} will be skipped: locked by " in result.output
    assert f"skipping k-r-s0: {runs / 'k-r-s0'} is being written by another runner (locked by " in result.output
    assert not (Path(env["FAKE_SLURM_DIR"]) / "counter").exists()


# --- real jobs (CPU) --------------------------------------------------------------------------------------


tiny_suite = tiny_rside_suite  # RSIDE-ResNet-18, 48x64, 8 frames, 3 epochs of 4 steps


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        env=env or process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_log(proc: subprocess.Popen, log: Path, text: str, timeout_s: float = 300) -> None:
    deadline = time.time() + timeout_s
    while not (log.exists() and text in log.read_text()):
        assert proc.poll() is None, f"ended before {text!r}:\n{proc.stdout.read()}"
        assert time.time() < deadline, f"no {text!r} in {log}"
        time.sleep(0.05)


def same_results(a: Path, b: Path) -> None:
    assert json.loads((a / "metrics.json").read_text()) == json.loads((b / "metrics.json").read_text())
    assert (a / "per_image.csv").read_bytes() == (b / "per_image.csv").read_bytes()


@pytest.mark.slow
def test_local_launcher_gives_the_same_metrics_as_inline(tmp_path, regression_reference):
    rooms, inline = regression_reference  # `bench run` of the same suite, inline in its own process
    common = ["run", "--suite", "regression", "--data", f"synthetic:{rooms}"]
    local = bench(*common, "--runs-dir", str(tmp_path / "local"), "--launcher", "local", "--max-parallel", "2")
    assert local.returncode == 0, local.stdout + local.stderr
    assert "local: 2 run(s), 2 at a time" in local.stdout
    assert "on CPU cores" in local.stdout and "summary (headline" in local.stdout
    for run in ("regression-rside-resnet18-s0", "regression-drnet-resnet18-s0"):
        same_results(inline / run, tmp_path / "local" / run)
        record = json.loads((tmp_path / "local" / run / "launch.json").read_text())
        assert record["state"] == "complete" and record["attempts"] == 1
        assert list((tmp_path / "local" / run / "submitit").glob("*_log.out"))  # logs in the run directory


@pytest.mark.slow
def test_a_preempted_slurm_job_is_requeued_and_ends_with_the_same_metrics(tmp_path, tiny_rside_reference):
    suite, ref = tiny_rside_reference
    env = fake_slurm.install(tmp_path)
    runs = tmp_path / "runs"
    proc = start(
        "run",
        "--suite",
        str(suite),
        "--runs-dir",
        str(runs),
        "--launcher",
        "slurm",
        "--partition",
        "gpu",
        "--time",
        "1:00:00",
        "--wait",
        env=process_env(env),
    )
    try:
        wait_for_log(proc, runs / "k-r-s0" / "log.txt", "epoch 2/3 | step 1/4")
        job_id = json.loads((runs / "k-r-s0" / "launch.json").read_text())["job_id"]
        subprocess.run(["scancel", job_id, "--signal", "USR2"], env=env, check=True)  # what SLURM sends
        out, _ = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert f"submitted k-r-s0: SLURM job {job_id}" in out and "k-r-s0  trained" in out
    script = fake_slurm.submitted_script(env, job_id)
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=60", "#SBATCH --requeue", "#SBATCH --ntasks-per-node=1"):
        assert line in script
    assert "srun --unbuffered" in script and "-m submitit.core._submit" in script
    assert str(runs / "k-r-s0" / "submitit") in script  # logs go to the run directory
    attempts = (Path(env["FAKE_SLURM_DIR"]) / f"{job_id}.attempts").read_text().splitlines()
    assert len(attempts) == 2  # started, preempted, requeued, started again
    log = (runs / "k-r-s0" / "log.txt").read_text()
    # USR2 went to the training loop first: the step finished and last.pt was saved, then submitit requeued
    stopped = re.search(r"k-r-s0: interrupted by SIGUSR2 after global step (\d+) \(epoch 2/3, step (\d)/4\)", log)
    assert stopped, log
    assert f"resuming in epoch 2/3 after step {stopped.group(2)}/4" in log and "resuming k-r-s0" in log
    same_results(ref, runs / "k-r-s0")
    assert json.loads((runs / "k-r-s0" / "launch.json").read_text())["state"] == "complete"


@pytest.mark.slow
def test_a_local_job_killed_with_sigkill_is_started_again_and_ends_with_the_same_metrics(
    tmp_path, tiny_rside_reference
):
    suite, ref = tiny_rside_reference
    runs = tmp_path / "runs"
    proc = start("run", "--suite", str(suite), "--runs-dir", str(runs), "--launcher", "local")
    try:
        wait_for_log(proc, runs / "k-r-s0" / "log.txt", "epoch 2/3 | step 1/4")
        pid = json.loads((runs / "k-r-s0" / "launch.json").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "requeued k-r-s0" in out and "k-r-s0  trained" in out
    assert "resuming k-r-s0" in (runs / "k-r-s0" / "log.txt").read_text()
    assert json.loads((runs / "k-r-s0" / "launch.json").read_text())["attempts"] == 2
    same_results(ref, runs / "k-r-s0")


@pytest.mark.slow
def test_slurm_submission_returns_with_job_ids_and_status_follows_the_job(tmp_path, monkeypatch):
    env = fake_slurm.install(tmp_path)
    job_env = process_env(env)  # sbatch, squeue and sacct on PATH; submitit passes the rest on to the job's process
    for name in ("PATH", "FAKE_SLURM_DIR", "OMP_NUM_THREADS", "PYTHONPATH", "PYTHONUNBUFFERED"):
        monkeypatch.setenv(name, job_env[name])
    suite = tiny_suite(tmp_path, epochs=1)
    runs = tmp_path / "runs"
    args = ["--suite", str(suite), "--runs-dir", str(runs), "--launcher", "slurm", "--device", "cuda"]
    done = invoke("run", *args, "--gpus-per-run", "2")  # submitting needs no process of its own
    assert done.exit_code == 0, done.output
    assert "submitted k-r-s0: SLURM job 1001" in done.output
    assert "summary" not in done.output  # returns after submitting
    script = fake_slurm.submitted_script(env, "1001")
    assert "#SBATCH --gres=gpu:2" in script and "#SBATCH --ntasks-per-node=2" in script
    state = Path(env["FAKE_SLURM_DIR"])
    deadline = time.time() + 300
    while (state / "1001.state").read_text() != "FAILED":
        assert time.time() < deadline, "the fake jobs did not end"
        time.sleep(0.2)
    # this machine has no CUDA device: the job fails, and status says why (torch's own words)
    status = invoke("status", "--runs", str(runs), "--suite", str(suite))
    assert status.exit_code == 0, status.output
    row = next(line for line in status.output.splitlines() if line.startswith("k-r-s0"))
    assert "failed" in row and "slurm 1001" in row and "RuntimeError:" in row


@pytest.mark.slow
def test_gpus_per_run_above_one_trains_one_run_with_ddp(tmp_path, regression_reference):
    rooms, _ = regression_reference
    runs = tmp_path / "runs"
    done = bench(
        "run",
        "--suite",
        "regression",
        "--only",
        "rside-resnet18",
        "--data",
        f"synthetic:{rooms}",
        "--runs-dir",
        str(runs),
        "--launcher",
        "local",
        "--gpus-per-run",
        "2",
    )  # on the CPU: 2 gloo tasks
    assert done.returncode == 0, done.stdout + done.stderr
    run = runs / "regression-rside-resnet18-s0"
    assert "batch 2 (2 process(es))" in (run / "log.txt").read_text()  # bench.distributed, as under torchrun
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_frames"] == 4 and metrics["steps"] == 4  # 8 frames, global batch 2: 4 steps
    assert len(list((run / "submitit").glob("*_log.out"))) == 2  # one log per task
    assert done.stdout.count("regression-rside-resnet18-s0  trained") == 1
