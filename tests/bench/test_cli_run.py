"""bench run / list / import from the command line: in-process with CliRunner, and as real processes for
kill-and-resume and 2-process DDP (marked slow)."""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from runner_fixtures import REPO, process_env, register_tiny_model, tiny_rside_suite

import bench as bench_package
from bench.cli import cli
from bench.pipeline import run_speed
from bench.plan import plan_from_options
from bench.suite import load_suite


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


@pytest.mark.slow
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


def test_a_named_synthetic_file_is_generated_before_training_with_progress(tmp_path, capsys):
    from bench.checks import check_data

    named = tmp_path / "synthetic-s0-n8-16x24.h5"  # as the mini suite names its 256-frame file
    config = load_suite("mini").runs[0].replace(data_path=str(named), train_frames=None, eval_frames=None)
    assert check_data([config], generate=False) == [] and not named.exists()  # a dry run writes nothing
    assert check_data([config]) == []
    out = capsys.readouterr().out
    assert f"generating the synthetic rooms at {named} (once)" in out and "8/8 frames" in out and named.is_file()


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
    return tiny_rside_suite(tmp_path, **{"epochs": 2, **extra})


def history_without_time(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_metrics(tmp_path, tiny_rside_reference, one_thread):
    suite, ref_dir = tiny_rside_reference
    cut_dir = tmp_path / "cut"
    log = cut_dir / "k-r-s0" / "log.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--runs-dir", str(cut_dir)],
        cwd=REPO,
        env=process_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 300
        # step 3 of epoch 2 logged => the checkpoint of global step 6 (mid-epoch 2) is on disk
        while not (log.exists() and "epoch 2/3 | step 3/4" in log.read_text()):
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

    refused = invoke("run", "--suite", str(suite), "--runs-dir", str(cut_dir))  # the plan refuses: no training
    assert refused.exit_code == 2 and "pass --resume" in refused.output
    resumed = invoke("run", "--suite", str(suite), "--runs-dir", str(cut_dir), "--resume")  # on one thread, as it began
    assert resumed.exit_code == 0, resumed.output
    assert "resuming k-r-s0" in resumed.output

    a = json.loads((ref_dir / "metrics.json").read_text())
    b = json.loads((run_dir / "metrics.json").read_text())
    assert a == b  # exact: same weights to the bit, same evaluation
    assert (ref_dir / "per_image.csv").read_bytes() == (run_dir / "per_image.csv").read_bytes()
    assert history_without_time(ref_dir / "history.csv") == history_without_time(run_dir / "history.csv")
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
    proc = subprocess.run(cmd, cwd=REPO, env=process_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert [p.name for p in runs.iterdir()] == ["k-r-s0"]
    run_dir = runs / "k-r-s0"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n_frames"] == 4 and metrics["steps"] == 4  # 8 frames, global batch 2: 4 steps
    assert "batch 2 (2 process(es))" in (run_dir / "log.txt").read_text()
    assert proc.stdout.count("summary (headline") == 1  # rank 0 alone reports


@pytest.mark.slow
def test_regression_suite_is_deterministic(tmp_path, regression_reference, one_thread):
    """A second run of the regression suite, in this process, gives the metrics of the reference run's own
    process to the bit (both on one thread: the thread count changes float summation order)."""
    rooms, reference = regression_reference
    result = invoke("run", "--suite", "regression", "--data", f"synthetic:{rooms}", "--runs-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    for run in ("regression-rside-resnet18-s0", "regression-drnet-resnet18-s0"):
        a = json.loads((reference / run / "metrics.json").read_text())
        b = json.loads((tmp_path / run / "metrics.json").read_text())
        assert a == b and a["n_frames"] == 4 and a["steps"] == 4  # 8 train frames, batch 2, 1 epoch


# --- long campaigns: faults (issue 25) --------------------------------------------------------------------------
# Items 1 and 2 are about processes: real `bench run` processes (tests/bench/tiny_bench.py: the CLI with the tiny
# network and frames, a run takes a second). Items 3 and 4 go through the CLI in this process (CliRunner).

TINY_BENCH = Path(__file__).with_name("tiny_bench.py")


def process_suite(tmp_path: Path) -> Path:
    """Runs a and b of the tiny-test network (tiny_bench.py's frames): 2 epochs of 3 steps, last.pt only at
    epoch ends (checkpoint_every_steps = 0), one DataLoader worker."""
    data = tmp_path / "rooms.h5"  # tiny_bench reads TinyDepthSet frames; the runner still fingerprints the file
    data.write_bytes(b"rooms" * 100)
    body = {
        "arch": register_tiny_model(),
        "backbone": "none",
        "data": "synthetic",
        "data_path": str(data),
        "device": "cpu",
        "input_size": [64, 80],
        "epochs": 2,
        "batch_size": 2,
        "eval_batch_size": 4,
        "lr": 1e-3,
        "checkpoint_every_steps": 0,
        "log_every_steps": 1,
        "num_workers": 1,
    }
    path = tmp_path / "tiny.toml"
    path.write_text(
        "[defaults]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in body.items()) + '\n[[runs]]\nname = "a"\n'
        '[[runs]]\nname = "b"\n'
    )
    return path


def tiny_bench(*args: str, hold: str | None = None, **popen) -> subprocess.Popen:
    """`bench ARGS` as a process of its own (tiny_bench.py), stdout and stderr together in ``.stdout``."""
    extra = {"TINY_BENCH_HOLD": hold} if hold else {}
    return subprocess.Popen(
        [sys.executable, str(TINY_BENCH), *args],
        cwd=REPO,
        env={**process_env(), **extra},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def read_until(proc: subprocess.Popen, text: str) -> str:
    """What ``proc`` printed up to and including the line holding ``text``."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return "".join(seen)
    proc.wait()
    raise AssertionError(f"ended (exit code {proc.returncode}) before printing {text!r}:\n{''.join(seen)}")


def finish(proc: subprocess.Popen, timeout_s: float = 120) -> str:
    out, _ = proc.communicate(timeout=timeout_s)
    return out


def same_run(a: Path, b: Path) -> None:
    """The same results, byte for byte (metrics.json holds final.pt's sha256: the same weights)."""
    for name in ("metrics.json", "per_image.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert history_without_time(a / "history.csv") == history_without_time(b / "history.csv")


@pytest.fixture(scope="module")
def one_runner(tmp_path_factory) -> tuple[Path, Path]:
    """(suite file, runs directory) of one uninterrupted runner of process_suite's runs."""
    tmp = tmp_path_factory.mktemp("one-runner")
    suite = process_suite(tmp)
    proc = tiny_bench("run", "--suite", str(suite), "--runs-dir", str(tmp / "runs"))
    out = finish(proc)
    assert proc.returncode == 0, out
    return suite, tmp / "runs"


@pytest.mark.slow
def test_two_runners_on_one_runs_directory_never_write_the_same_run(one_runner, tmp_path):
    """Item 1: a second `bench run --resume` started while the first trains run a skips it, saying who holds it,
    and trains b; the first then finishes a and reuses b. Both end well, and each run is what one runner makes."""
    suite, reference = one_runner
    runs, go = tmp_path / "runs", tmp_path / "go"
    first = tiny_bench("run", "--suite", str(suite), "--runs-dir", str(runs), hold=f"2:{go}")
    try:
        read_until(first, "at step 2")  # run a is in its second step, holding its lock
        second = tiny_bench("run", "--suite", str(suite), "--runs-dir", str(runs), "--resume")
        out = finish(second)
        status = invoke("status", "--runs", str(runs))  # while the first still holds a
    finally:
        go.touch()
    first_out = finish(first)
    holder = f"locked by {socket.gethostname()}:{first.pid} since "
    assert second.returncode == 0, out
    assert f"note: {runs / 'tiny-a-s0'} will be skipped: {holder}" in out  # never "pass --resume"
    assert f"skipping tiny-a-s0: {runs / 'tiny-a-s0'} is being written by another runner ({holder}" in out
    assert "tiny-a-s0  locked" in out and "tiny-b-s0  trained" in out and f"locked: tiny-a-s0: {holder}" in out
    row = next(line for line in status.output.splitlines() if line.startswith("tiny-a-s0"))
    assert "running" in row and holder in row, status.output
    assert first.returncode == 0, first_out
    assert "tiny-a-s0  trained" in first_out and "tiny-b-s0  reused" in first_out
    for run in ("tiny-a-s0", "tiny-b-s0"):
        same_run(reference / run, runs / run)
    assert "resuming" not in (runs / "tiny-a-s0" / "log.txt").read_text()  # one session wrote it
    assert not (runs / ".locks").exists()  # the locks went with their holders


@pytest.mark.slow
def test_sigterm_mid_epoch_saves_every_finished_step_and_resume_gives_the_same_results(one_runner, tmp_path):
    """Item 2: SIGTERM to `bench run` (its process group: the DataLoader worker too) in step 2 of epoch 2 with
    checkpoint_every_steps = 0: the step finishes, last.pt holds steps 1-5, exit code 75 and a message that
    says how to continue; `bench run --resume` then ends with byte-identical results."""
    import torch

    suite, reference = one_runner
    runs = tmp_path / "runs"
    proc = tiny_bench("run", "--suite", str(suite), "--runs-dir", str(runs), hold="5", start_new_session=True)
    try:
        read_until(proc, "at step 5")
        os.killpg(proc.pid, signal.SIGTERM)
        out = finish(proc)
    finally:
        proc.kill()
    run_dir = runs / "tiny-a-s0"
    assert proc.returncode == 75, out
    assert "SIGTERM: finishing the current step, then saving checkpoints/last.pt" in out
    stopped = (
        f"tiny-a-s0: interrupted by SIGTERM after global step 5 (epoch 2/2, step 2/3); {run_dir}/checkpoints/last.pt"
        " holds every finished step; continue with `bench run --resume` (exit code 75: interrupted, resumable)"
    )
    assert out.rstrip().endswith(stopped)  # the last line
    assert "tiny-a-s0  interrupted" in out and "tiny-b-s0  not started" in out
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["state"]
    assert (state["epoch"], state["step_in_epoch"], state["global_step"], state["loss_count"]) == (1, 2, 5, 2)
    assert not (run_dir / "metrics.json").exists() and not (runs / "tiny-b-s0").exists()
    status = invoke("status", "--runs", str(runs))
    assert "interrupted  -    resumable: last checkpoint step 5 (epoch 2, step 2 of it)" in status.output

    resumed = tiny_bench("run", "--suite", str(suite), "--runs-dir", str(runs), "--resume")
    resumed_out = finish(resumed)
    assert resumed.returncode == 0, resumed_out
    assert "resuming tiny-a-s0 from" in resumed_out and "resuming in epoch 2/2 after step 2/3" in resumed_out
    for run in ("tiny-a-s0", "tiny-b-s0"):
        same_run(reference / run, runs / run)


def two_run_suite(tmp_path: Path, name: str, **extra: object) -> Path:
    """Runs a and b of the tiny-test network (the tiny_data fixture's frames): 2 epochs of 3 steps, last.pt at
    epoch ends only."""
    body = {"arch": register_tiny_model(), "backbone": "none", "device": "cpu", "input_size": [64, 80], "epochs": 2,
            "batch_size": 2, **extra}  # fmt: skip
    path = tmp_path / f"{name}.toml"
    path.write_text(
        "[defaults]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in body.items()) + '\n[[runs]]\nname = "a"\n'
        '[[runs]]\nname = "b"\n'
    )
    return path


def full_disk_at(monkeypatch, name: str, nth: int) -> dict[str, object]:
    """The ``nth`` write of a file called ``name`` fails for lack of space (ENOSPC once part of it reached the
    disk), through bench.io's atomic writes (checkpoints, final.pt, metrics.json, per_image.csv, config.json...).
    Returns {"before": what the file held before that write (None: nothing)}."""
    import bench.io

    real, seen = bench.io.atomic_path, {"n": 0, "before": None}

    @contextlib.contextmanager
    def atomic_path(path, expected_bytes=None):
        with real(path, expected_bytes) as tmp:
            yield tmp
            if Path(path).name == name:
                seen["n"] += 1
                if seen["n"] == nth:
                    seen["before"] = Path(path).read_bytes() if Path(path).exists() else None
                    tmp.write_bytes(tmp.read_bytes()[: tmp.stat().st_size // 2])
                    raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bench.io, "atomic_path", atomic_path)
    return seen


@pytest.mark.parametrize(
    "name, nth, kept",
    [
        ("last.pt", 2, "the previous last.pt is unchanged"),
        ("predictions.h5", 1, "nothing was written"),  # HDF5 writing onto a full disk itself crashed the process
        ("metrics.json", 1, "nothing was written"),
    ],
    ids=["last.pt-at-the-end-of-epoch-2", "predictions.h5", "metrics.json-when-finishing"],
)
def test_a_full_disk_stops_the_suite_in_one_line_and_resume_finishes_it(
    tmp_path, tiny_data, monkeypatch, name, nth, kept
):
    """Item 3: ENOSPC at a write: one line naming the file, the space it needs and the space free; the previous
    checkpoint and every finished file intact, the suite stopped; `--resume` once there is room ends with the
    results of a run that never met a full disk."""
    suite = two_run_suite(tmp_path, "disk")
    assert invoke("run", "--suite", str(suite), "--runs-dir", str(tmp_path / "ref"), "--only", "a").exit_code == 0
    runs = tmp_path / "runs"
    run_dir = runs / "disk-a-s0"
    with monkeypatch.context() as m:
        seen = full_disk_at(m, name, nth)
        result = invoke("run", "--suite", str(suite), "--runs-dir", str(runs))
    target = run_dir / ("checkpoints" if name.endswith(".pt") else "") / name
    assert result.exit_code == 1, result.output
    line = re.search(rf"^error: no space left on device for {re.escape(str(target))}: .*$", result.output, re.M)
    assert line, result.output
    assert re.fullmatch(
        rf"error: no space left on device for \S+: it needs about \S+ \S+ \([\d,]+ bytes\), \S+ \S+ \([\d,]+ bytes\) "
        rf"free on its filesystem; {kept}",
        line.group(0),
    )
    lines = result.output.rstrip().splitlines()
    assert lines[-2] == line.group(0) and lines[-1].startswith("free space, then `bench run --resume` continues")
    assert "disk-a-s0  failed" in result.output and "disk-b-s0  not started" in result.output
    assert not (runs / "disk-b-s0").exists()  # the next run would have failed too
    if seen["before"] is not None:
        assert target.read_bytes() == seen["before"]  # the epoch-1 checkpoint, whole
    else:
        assert not target.exists()
    assert not list(runs.rglob(".*.tmp")) and "no space left" not in (run_dir / "log.txt").read_text()
    json.loads((run_dir / "config.json").read_text())  # finished files intact

    resumed = invoke("run", "--suite", str(suite), "--runs-dir", str(runs), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming disk-a-s0 from {run_dir / 'checkpoints' / 'last.pt'}" in resumed.output
    assert "disk-a-s0  trained" in resumed.output and "disk-b-s0  trained" in resumed.output
    same_run(tmp_path / "ref" / "disk-a-s0", run_dir)


def test_the_preflight_warns_when_the_disk_has_less_room_than_the_runs_will_write(tmp_path, tiny_data, monkeypatch):
    import bench.rundir

    suite, runs = mini_suite(tmp_path), tmp_path / "runs"
    monkeypatch.setattr(bench.rundir, "free_bytes", lambda path: 2**20)
    for dry in (["--dry-run"], []):
        result = invoke("run", "--suite", str(suite), "--runs-dir", str(runs), *dry)
        assert result.exit_code == 0, result.output  # a warning, not a problem
        assert (
            f"warning: {runs} has 1.0 MiB (1,048,576 bytes) free; the 1 run(s) to train will need about "
            in result.output
        )
        assert "(final.pt per run, last.pt while training: up to " in result.output
    assert "mini-a-s0  trained" in result.output
    again = invoke("run", "--suite", str(suite), "--runs-dir", str(runs))
    assert again.exit_code == 0 and "warning:" not in again.output  # nothing left to write


def test_a_damaged_final_pt_is_never_reused_and_the_way_out_works(tmp_path, tiny_data):
    """Item 4: final.pt cut to half its size (a copy between machines) is refused with what was expected, what
    was found and the way out (exit 2, nothing trained), `bench status` says so, and --rerun trains it again;
    with the training state kept, a flipped bit is refused too and re-evaluating from last.pt restores it."""
    suite, runs = mini_suite(tmp_path), tmp_path / "runs"
    run_dir = runs / "mini-a-s0"
    base = ["run", "--suite", str(suite), "--runs-dir", str(runs)]
    assert invoke(*base).exit_code == 0
    metrics = (run_dir / "metrics.json").read_bytes()
    final = run_dir / "checkpoints" / "final.pt"
    record = json.loads(metrics)["final_weights"]
    assert record == {
        "path": "checkpoints/final.pt",
        "bytes": final.stat().st_size,
        "sha256": hashlib.sha256(final.read_bytes()).hexdigest(),
    }
    data = final.read_bytes()
    final.write_bytes(data[: len(data) // 2])

    refused = invoke(*base)
    assert refused.exit_code == 2, refused.output
    assert "1 problem(s); nothing was run" in refused.output
    assert (
        f"  - cannot reuse the finished run: {final} is damaged ({len(data) // 2:,} bytes, metrics.json recorded "
        f"{len(data):,} (sha256 {record['sha256'][:16]}...)); `bench run --rerun` trains it again "
        f"(checkpoints/last.pt was not kept)" in refused.output
    )
    assert (run_dir / "metrics.json").read_bytes() == metrics and not (runs / ".old").exists()
    status = invoke("status", "--runs", str(runs))
    assert re.search(rf"^mini-a-s0  damaged  -    {re.escape(str(final))} is damaged \(", status.output, re.M)

    rerun = invoke(*base, "--rerun")
    assert rerun.exit_code == 0 and "mini-a-s0  trained" in rerun.output, rerun.output
    assert (run_dir / "metrics.json").read_bytes() == metrics  # the same weights again, the same digest
    assert invoke(*base).exit_code == 0  # reused

    kept = two_run_suite(tmp_path, "kept", keep_checkpoints=True, epochs=1)
    kept_base = ["run", "--suite", str(kept), "--runs-dir", str(runs), "--only", "a"]
    assert invoke(*kept_base).exit_code == 0
    kept_dir = runs / "kept-a-s0"
    kept_metrics = (kept_dir / "metrics.json").read_bytes()
    flipped = bytearray((kept_dir / "checkpoints" / "final.pt").read_bytes())
    flipped[len(flipped) // 2] ^= 0x04  # one bit, same size
    (kept_dir / "checkpoints" / "final.pt").write_bytes(bytes(flipped))
    refused = invoke(*kept_base)
    assert refused.exit_code == 2 and "is damaged (sha256 " in refused.output
    assert "re-evaluate it from checkpoints/last.pt, which was kept (move metrics.json aside and run" in refused.output
    (kept_dir / "metrics.json").rename(kept_dir / "metrics.json.damaged")  # the way out it names
    again = invoke(*kept_base, "--resume")
    assert again.exit_code == 0, again.output
    assert "training already finished" in again.output and (kept_dir / "metrics.json").read_bytes() == kept_metrics


def test_rerun_never_moves_a_run_that_another_process_holds(tmp_path, tiny_data):
    from test_runlock import Holder

    from bench.rundir import RunDir

    suite, runs = mini_suite(tmp_path), tmp_path / "runs"
    base = ["run", "--suite", str(suite), "--runs-dir", str(runs)]
    assert invoke(*base).exit_code == 0
    metrics = (runs / "mini-a-s0" / "metrics.json").read_bytes()
    other = Holder(RunDir(runs / "mini-a-s0").lock_path)  # another process, as a runner writing the run
    try:
        assert other.first_line == "held"
        result = invoke(*base, "--rerun")
    finally:
        other.done()
    holder = f"locked by {socket.gethostname()}:{other.proc.pid} since "
    assert result.exit_code == 0, result.output  # skipped: not a failure
    assert f"skipping mini-a-s0: {runs / 'mini-a-s0'} is being written by another runner ({holder}" in result.output
    assert "mini-a-s0  locked" in result.output
    assert not (runs / ".old").exists() and (runs / "mini-a-s0" / "metrics.json").read_bytes() == metrics


def test_a_full_disk_under_any_command_is_one_line(tmp_path, tiny_data, monkeypatch, capsys):
    """`bench report` writing its tables onto a full disk: the file, the space it needs and the space free."""
    from bench.cli import main

    suite, runs = mini_suite(tmp_path), tmp_path / "runs"
    assert invoke("run", "--suite", str(suite), "--runs-dir", str(runs)).exit_code == 0
    full_disk_at(monkeypatch, "table1.csv", 1)
    monkeypatch.setattr(sys, "argv", ["bench", "report", "--runs", str(runs), "--out", str(tmp_path / "reports")])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 1
    err = capsys.readouterr().err
    table = tmp_path / "reports" / "table1.csv"
    assert re.search(rf"^error: no space left on device for {re.escape(str(table))}: it needs about .+ free on its "
                     r"filesystem; nothing was written$", err, re.M), err  # fmt: skip
    assert "Traceback" not in err


def test_bench_run_help_gives_the_exit_codes():
    from bench import pipeline, train

    assert pipeline.EXIT_INTERRUPTED == train.EXIT_INTERRUPTED == 75  # the pipeline is torch-free: said twice
    text = invoke("run", "--help").output
    assert "75  interrupted by SIGTERM/SIGINT, resumable: `bench run --resume` continues" in text
    assert "2   the plan cannot run" in text and "130 stopped at once by a second signal" in text
