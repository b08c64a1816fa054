"""bench run / list / import from the command line: in-process with CliRunner, and as real processes for
kill-and-resume and 2-process DDP (marked slow)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from runner_fixtures import register_tiny_model

import bench as bench_package
from bench.cli import cli
from bench.pipeline import run_speed
from bench.plan import plan_from_options
from bench.suite import load_suite

REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_list_shows_suites_and_runs():
    result = invoke("list")
    assert result.exit_code == 0
    for name in ("smoke", "paper", "ablations", "regression", "rside-senet154", "drnet-resnet152-no-diagonal"):
        assert name in result.output


def test_bad_suite_or_pattern_exits_2():
    result = invoke("run", "--suite", "nope")
    assert result.exit_code == 2 and "unknown suite 'nope'" in result.output
    result = invoke("run", "--suite", "smoke", "--only", "zzz*")
    assert result.exit_code == 2 and "matches nothing in suite smoke" in result.output
    result = invoke("run", "--suite", "smoke", "--seeds", "0,x")
    assert result.exit_code == 2 and "--seeds '0,x'" in result.output


def test_paper_dry_run_lists_table1_and_table3_and_says_which_file_to_provide(tmp_path):
    pytest.importorskip("architectures.data")
    result = invoke("run", "--suite", "paper", "--dry-run", "--runs-dir", str(tmp_path))
    assert result.exit_code == 2, result.output  # it lists problems (no data file here): usable as a check
    out = result.output
    assert "problem(s) to fix before this can run" in out
    assert (
        "Table 1: 7 run(s): rside-resnet50, rside-densenet161, rside-senet154, drnet-resnet50, "
        "drnet-resnet152, drnet-densenet161, drnet-senet154" in out
    )
    assert (
        "Table 3: 4 run(s): drnet-resnet152, drnet-resnet152-no-diagonal, drnet-resnet152-no-aux-losses, "
        "drnet-resnet152-no-second-branch" in out
    )
    for run in ("paper-rside-senet154-s0", "paper-drnet-resnet152-no-second-branch-s0"):
        assert run in out
    # the paper regime trains on RSIDE's data: without it the plan says what to fetch and where to put it
    assert "data rside-csv:data cannot be used" in out and "Revisiting_Single_Depth_Estimation" in out
    assert "data/nyu2_train.csv  ~50,688 rows" in out and "data/nyu2_test.csv   654 rows" in out
    assert "bench run --suite paper-labeled" in out and "--data synthetic" in out
    assert not list(tmp_path.iterdir())  # a dry run writes nothing


def test_paper_labeled_dry_run_says_which_file_to_provide(tmp_path):
    pytest.importorskip("architectures.data")
    result = invoke("run", "--suite", "paper-labeled", "--dry-run", "--runs-dir", str(tmp_path))
    assert result.exit_code == 2, result.output  # no labeled file here: a problem
    out = result.output
    assert "NOT the paper's training regime" in out
    assert "252,015 train images (317 epochs, <= 31680 steps, batch 8)" in out  # 795 x 317, capped by max_steps
    assert "provide the official labeled NYU Depth v2 file" in out and "nyu_depth_v2_labeled.mat" in out
    assert "GPU time estimate for the " in out and "not a measurement" in out  # no GPU here: per GPU class
    assert "  A100      (peak 19.5 TFLOP/s fp32): ~" in out
    assert not list(tmp_path.iterdir())


def test_paper_run_without_rside_data_stops_in_the_preflight(tmp_path, monkeypatch):
    pytest.importorskip("architectures.data")
    monkeypatch.chdir(tmp_path)  # no ./data here
    result = invoke(
        "run",
        "--suite",
        "paper",
        "--only",
        "rside-resnet50",
        "--device",
        "cpu",
        "--weights",
        "none",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--no-speed",
    )
    assert result.exit_code == 2 and "nothing was run" in result.output
    out = result.output
    assert "data rside-csv:data cannot be used: data: no such file or directory" in out
    assert "JunjH/Revisiting_Single_Depth_Estimation" in out and "nyu2_train.csv  ~50,688 rows" in out
    assert "bench run --suite paper-labeled" in out
    assert not (tmp_path / "runs").exists()


def test_paper_labeled_suite_is_the_795_frame_variant_with_a_step_budget():
    suite = load_suite("paper-labeled")
    assert "NOT the paper's training regime" in suite.description and "31,680" in suite.description
    assert {r.train_variant for r in suite.runs} == {"nyu-labeled-795"}
    assert {(r.data, r.max_steps, r.lr_schedule, r.lr, r.batch_size) for r in suite.runs} == {
        ("nyu-labeled", 31680, "constant", 1e-4, 8)
    }
    assert suite.runs[0].max_steps == 5 * 50688 // 8  # RSIDE's optimiser steps at lr 1e-4 (its first 5 epochs)
    assert suite.run_names() == load_suite("paper").run_names()  # the same Table 1 / Table 3 rows
    paper = load_suite("paper")
    assert {(r.data, r.train_variant, r.epochs, r.lr_schedule) for r in paper.runs} == {
        ("rside-csv", "rside-*", 20, "step")
    }
    for s in (suite, paper, load_suite("ablations")):  # one optimiser recipe per paired comparison
        assert {r.amsgrad for r in s.runs} == {True}


def test_a_suite_demanding_a_training_set_refuses_another(tmp_path):
    pytest.importorskip("architectures.data")
    from bench.checks import check_data

    suite = load_suite("paper-labeled")
    rooms = str(tmp_path / "rooms.h5")
    from architectures.data import write_synthetic

    write_synthetic(rooms, frames=4, height=48, width=64)
    config = suite.runs[0].replace(data="synthetic", data_path=rooms)
    problems = check_data([config])
    assert len(problems) == 1 and "trains on 'nyu-labeled-795'" in problems[0] and "synthetic-3" in problems[0]
    runs, _ = plan_from_options(suite, data_spec=f"synthetic:{rooms}", only="rside-resnet50")
    assert runs[0].train_variant is None and check_data(runs) == []  # --data: the data decides


def test_gpu_class_estimate_is_flops_over_the_stated_fraction_of_peak():
    from bench.estimate import GPU_ASSUMED_FRACTION, GPU_PEAK_FP32_TFLOPS, gpu_class_estimates

    tflop = GPU_PEAK_FP32_TFLOPS["A100"] * GPU_ASSUMED_FRACTION * 3600  # one hour at that rate
    lines = gpu_class_estimates(tflop)
    assert f"{GPU_ASSUMED_FRACTION:.0%} of each GPU's datasheet peak" in lines[0]
    assert any(line.strip().startswith("A100") and line.endswith("~1h00m") for line in lines)


def test_dry_run_with_synthetic_data_and_seeds(tmp_path):
    pytest.importorskip("architectures.data")
    result = invoke(
        "run",
        "--suite",
        "paper",
        "--dry-run",
        "--data",
        "synthetic",
        "--only",
        "rside-resnet50",
        "--seeds",
        "0,1,2",
        "--runs-dir",
        str(tmp_path),
    )
    assert result.exit_code == 2 and "ImageNet weights for resnet50 are not in the local cache" in result.output
    assert all(f"paper-rside-resnet50-s{s}" in result.output for s in (0, 1, 2))
    assert "nyu_depth_v2_labeled.mat" not in result.output
    assert "GFLOP/image fwd at 228x304" in result.output


def test_device_cpu_turns_amp_off_in_the_runs_and_the_dry_run_defaults(tmp_path):
    suite = tmp_path / "amp.toml"
    suite.write_text(
        f'[defaults]\narch = "{register_tiny_model()}"\nbackbone = "none"\ndevice = "cuda"\n'
        'amp = "bf16"\ninput_size = [64, 80]\n[[runs]]\nname = "a"\n'
        '[[runs]]\nname = "b"\ndevice = "cpu"\namp = "none"\n'
    )
    runs, _ = plan_from_options(load_suite(suite), device="cpu")
    assert [(r.device, r.amp) for r in runs] == [("cpu", "none"), ("cpu", "none")]
    for only in ([], ["--only", "b"]):  # --device cpu; or every planned run on the CPU by itself
        result = invoke(
            "run",
            "--suite",
            str(suite),
            "--dry-run",
            *only,
            "--runs-dir",
            str(tmp_path / "runs"),
            *([] if only else ["--device", "cpu"]),
        )
        assert result.exit_code == 0, result.output
        assert "  amp = 'none'" in result.output and "  device = 'cpu'" in result.output


def test_run_a_suite_file_prints_a_summary(tmp_path, tiny_data):
    suite = tmp_path / "mini.toml"
    suite.write_text(
        f'description = "two tiny runs"\n[defaults]\narch = "{register_tiny_model()}"\n'
        'backbone = "none"\ndevice = "cpu"\ninput_size = [64, 80]\nepochs = 1\nbatch_size = 2\n'
        '[[runs]]\nname = "a"\n[[runs]]\nname = "b"\noptions = {width = 4}\n'
    )
    result = invoke("run", "--suite", str(suite), "--runs-dir", str(tmp_path / "runs"), "--seeds", "3")
    assert result.exit_code == 0, result.output
    assert "summary (headline = the protocol's own reduction)" in result.output
    assert "mini-a-s3  trained" in result.output and "mini-b-s3  trained" in result.output
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["mini-a-s3", "mini-b-s3"]
    again = invoke("run", "--suite", str(suite), "--runs-dir", str(tmp_path / "runs"), "--seeds", "3")
    assert again.exit_code == 0 and "mini-a-s3  reused" in again.output, again.output
    resumed = invoke("run", "--suite", str(suite), "--runs-dir", str(tmp_path / "runs"), "--seeds", "3", "--resume")
    assert resumed.exit_code == 0 and "mini-a-s3  reused" in resumed.output


def mini_suite(tmp_path: Path) -> Path:
    """One tiny-test run (the runner's data routed to TinyDepthSet by the tiny_data fixture), 1 epoch."""
    suite = tmp_path / "mini.toml"
    suite.write_text(
        f'[defaults]\narch = "{register_tiny_model()}"\nbackbone = "none"\ndevice = "cpu"\n'
        'input_size = [64, 80]\nepochs = 1\nbatch_size = 2\n[[runs]]\nname = "a"\n'
    )
    return suite


def test_a_finished_run_is_reused_only_with_the_same_settings_and_data(tmp_path, tiny_data):
    suite, runs = mini_suite(tmp_path), tmp_path / "runs"
    data = tmp_path / "rooms.h5"  # tiny_data ignores the file; the runner still fingerprints it
    data.write_bytes(b"rooms v1" * 100)
    other = tmp_path / "other.h5"
    other.write_bytes(b"other rooms" * 100)
    base = ["run", "--suite", str(suite), "--runs-dir", str(runs)]
    first = invoke(*base, "--data", f"synthetic:{data}")
    assert first.exit_code == 0, first.output
    metrics = (runs / "mini-a-s0" / "metrics.json").read_bytes()

    again = invoke(*base, "--data", f"synthetic:{data}", "--workers", "0")  # operational field: same run
    assert again.exit_code == 0, again.output
    assert f"reusing {runs / 'mini-a-s0'}: complete, same configuration" in again.output
    assert "mini-a-s0  reused" in again.output

    for resume in ([], ["--resume"]):
        result = invoke(*base, "--data", f"synthetic:{other}", *resume)
        assert result.exit_code == 2, result.output
        assert "cannot reuse the finished run: the configuration differs" in result.output
        assert f"data_path: '{data}' in the run directory, '{other}' now" in result.output
        result = invoke(*base, "--data", f"synthetic:{data}", "--epochs", "2", *resume)
        assert result.exit_code == 2 and "epochs: 1 in the run directory, 2 now" in result.output
        assert "data_path" not in result.output and "--rerun" in result.output

    data.write_bytes(b"rooms v2" * 100)  # same path, other content
    result = invoke(*base, "--data", f"synthetic:{data}")
    assert result.exit_code == 2 and f"data fingerprint of {data.resolve()}: '800 bytes" in result.output
    assert (runs / "mini-a-s0" / "metrics.json").read_bytes() == metrics  # nothing was touched


def test_rerun_moves_the_old_directory_aside_and_trains_again(tmp_path, tiny_data):
    suite, runs = mini_suite(tmp_path), tmp_path / "runs"
    base = ["run", "--suite", str(suite), "--runs-dir", str(runs)]
    assert invoke(*base).exit_code == 0
    old_metrics = (runs / "mini-a-s0" / "metrics.json").read_bytes()
    assert invoke(*base, "--rerun", "--resume").exit_code == 2  # usage error: one or the other

    result = invoke(*base, "--rerun", "--epochs", "2")  # other settings are fine: the old run is kept aside
    assert result.exit_code == 0, result.output
    [old] = (runs / ".old").iterdir()
    assert old.name.startswith("mini-a-s0.old-") and f"moved {runs / 'mini-a-s0'} aside to {old}" in result.output
    assert (old / "metrics.json").read_bytes() == old_metrics
    assert "mini-a-s0  trained  2" in result.output
    assert json.loads((runs / "mini-a-s0" / "config.json").read_text())["config"]["epochs"] == 2
    assert sorted(p.name for p in runs.iterdir()) == [".old", "mini-a-s0"]


def test_dry_run_exits_2_when_it_lists_problems(tmp_path, tiny_data):
    suite, runs = mini_suite(tmp_path), tmp_path / "runs"
    base = ["run", "--suite", str(suite), "--runs-dir", str(runs)]
    assert invoke(*base, "--dry-run").exit_code == 0  # nothing to fix
    assert invoke(*base).exit_code == 0
    assert invoke(*base, "--dry-run").exit_code == 0  # complete and the same: would be reused
    result = invoke(*base, "--dry-run", "--epochs", "3")
    assert result.exit_code == 2 and "1 problem(s) to fix before this can run" in result.output
    assert "epochs: 1 in the run directory, 3 now" in result.output
    assert invoke(*base, "--dry-run", "--epochs", "3", "--rerun").exit_code == 0  # it would be moved aside
    assert [p.name for p in runs.iterdir()] == ["mini-a-s0"]  # a dry run moves nothing


def test_speed_entries_go_through_the_speed_api(tmp_path, monkeypatch):
    import io
    import types

    calls = {}
    fake = types.ModuleType("bench.speed")

    class Target:
        def __init__(self, label):
            self.label = label

    fake.speed_targets = lambda path: (Target("rside-resnet50"), Target("drnet-resnet50"))
    fake.SpeedConfig = lambda **kw: calls.setdefault("config", kw) or kw
    fake.default_run_id = lambda config: "speed-paper-cpu"
    fake.run_sweep = lambda config, out_dir, progress=None: calls.update(out_dir=out_dir)
    fake.reusable_sweep = lambda config, runs_dir: calls.get("done")
    monkeypatch.setitem(sys.modules, "bench.speed", fake)
    monkeypatch.setattr(bench_package, "speed", fake, raising=False)  # `from bench import speed` reads it
    entries = [{"name": "drnet-resnet50", "arch": "drnet", "backbone": "resnet50"}]
    assert run_speed(load_suite("paper"), entries, "cpu", tmp_path, io.StringIO())
    assert [t.label for t in calls["config"]["targets"]] == ["drnet-resnet50"]
    assert calls["config"]["suite"] == "paper" and calls["out_dir"] == tmp_path / "speed-paper-cpu"

    # run again: a complete sweep of the same setup is reused, unless --rerun
    calls.update(done=tmp_path / "speed-paper-cpu", out_dir=None)
    out = io.StringIO()
    assert run_speed(load_suite("paper"), entries, "cpu", tmp_path, out)
    assert calls["out_dir"] is None and f"reusing {tmp_path / 'speed-paper-cpu'}: complete" in out.getvalue()
    assert run_speed(load_suite("paper"), entries, "cpu", tmp_path, io.StringIO(), rerun=True)
    assert calls["out_dir"] == tmp_path / "speed-paper-cpu"


def test_import_reports_a_bad_checkpoint_cleanly(tmp_path):
    bad = tmp_path / "model_resnet"
    bad.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(
        cli, ["import", "rside-checkpoint", str(bad), "--backbone", "resnet50", "--runs-dir", str(tmp_path / "runs")]
    )
    assert result.exit_code == 1 and "cannot read checkpoint" in result.output
    assert not (tmp_path / "runs" / "paper-rside-resnet50-s0" / "config.json").exists()


# --- real processes ---------------------------------------------------------------------------------------


def tiny_suite(tmp_path: Path, **extra: object) -> Path:
    """RSIDE-ResNet-18 on 48x64 inputs, 8 synthetic training frames, 2 epochs of 4 steps."""
    data = pytest.importorskip("architectures.data")
    synthetic = data.ensure_synthetic(tmp_path / "rooms.h5", frames=16, seed=0)
    defaults = {
        "data": "synthetic",
        "data_path": str(synthetic),
        "arch": "rside",
        "backbone": "resnet18",
        "device": "cpu",
        "input_size": [48, 64],
        "train_frames": 8,
        "eval_frames": 4,
        "epochs": 2,
        "batch_size": 2,
        "eval_batch_size": 4,
        "lr_schedule": "step",
        "lr_step_epochs": 1,
        "lr": 1e-3,
        "checkpoint_every_steps": 2,
        "log_every_steps": 1,
        "seed": 0,
        **extra,
    }
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in defaults.items())
    path = tmp_path / "k.toml"
    path.write_text(f'[defaults]\n{body}\n[[runs]]\nname = "r"\n')
    return path


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def bench(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


def history_without_time(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_metrics(tmp_path):
    suite = tiny_suite(tmp_path)
    ref = bench("run", "--suite", str(suite), "--runs-dir", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stdout + ref.stderr

    cut_dir = tmp_path / "cut"
    log = cut_dir / "k-r-s0" / "log.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--runs-dir", str(cut_dir)],
        cwd=REPO,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 300
        # step 3 of epoch 2 logged => the checkpoint of global step 6 (mid-epoch 2) is on disk
        while not (log.exists() and "epoch 2/2 | step 3/4" in log.read_text()):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline, "no progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    run_dir = cut_dir / "k-r-s0"
    assert not (run_dir / "metrics.json").exists()
    import torch

    position = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)["state"]
    assert position["epoch"] == 1 and 0 < position["step_in_epoch"] < 4  # killed mid-epoch

    refused = bench("run", "--suite", str(suite), "--runs-dir", str(cut_dir))
    assert refused.returncode == 2 and "pass --resume" in refused.stdout
    resumed = bench("run", "--suite", str(suite), "--runs-dir", str(cut_dir), "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming k-r-s0" in resumed.stdout

    a = json.loads((tmp_path / "ref" / "k-r-s0" / "metrics.json").read_text())
    b = json.loads((run_dir / "metrics.json").read_text())
    assert a == b  # exact: same weights to the bit, same evaluation
    assert (tmp_path / "ref" / "k-r-s0" / "per_image.csv").read_bytes() == (run_dir / "per_image.csv").read_bytes()
    assert history_without_time(tmp_path / "ref" / "k-r-s0" / "history.csv") == history_without_time(
        run_dir / "history.csv"
    )
    provenance = json.loads((run_dir / "config.json").read_text())["provenance"]
    assert provenance["sessions"] == 2 and provenance["wall_time_s"] > 0
    assert len(provenance["resumes"]) == 1 and "git" in provenance["resumes"][0]


@pytest.mark.slow
def test_two_process_ddp_on_cpu_writes_one_run_directory(tmp_path):
    suite = tiny_suite(tmp_path, epochs=1)
    runs = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "bench",
        "run",
        "--suite",
        str(suite),
        "--runs-dir",
        str(runs),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert [p.name for p in runs.iterdir()] == ["k-r-s0"]
    run_dir = runs / "k-r-s0"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n_frames"] == 4 and metrics["steps"] == 4  # 8 frames, global batch 2: 4 steps
    assert "batch 2 (2 process(es))" in (run_dir / "log.txt").read_text()
    assert proc.stdout.count("summary (headline") == 1  # rank 0 alone reports


@pytest.mark.slow
def test_regression_suite_is_deterministic(tmp_path):
    data = pytest.importorskip("architectures.data")
    rooms = data.ensure_synthetic(tmp_path / "rooms.h5", frames=16, seed=0)
    for out in ("a", "b"):
        result = invoke(
            "run", "--suite", "regression", "--data", f"synthetic:{rooms}", "--runs-dir", str(tmp_path / out)
        )
        assert result.exit_code == 0, result.output
    for run in ("regression-rside-resnet18-s0", "regression-drnet-resnet18-s0"):
        a = json.loads((tmp_path / "a" / run / "metrics.json").read_text())
        b = json.loads((tmp_path / "b" / run / "metrics.json").read_text())
        assert a == b and a["n_frames"] == 4 and a["steps"] == 4  # 8 train frames, batch 2, 1 epoch
