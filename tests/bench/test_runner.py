from __future__ import annotations

import io
import json
import math

import pytest
import torch
from runner_fixtures import RSIDE_LIKE_PROTOCOL, TinyDepthSet, tiny_config

from bench.checks import preflight
from bench.evaluate import evaluate
from bench.importing import import_rside_checkpoint
from bench.launchers.inline import run_plan
from bench.lifecycle import execute_run
from bench.outcomes import summary_table
from bench.rundir import RunDir, RunDirError, RunState
from bench.suite import load_suite, with_seeds


def quiet():
    return io.StringIO()


def test_existing_runs_are_never_clobbered(tmp_path, tiny_data):
    config = tiny_config(epochs=1)
    first = execute_run(config, tmp_path, stream=quiet())
    before = (tmp_path / config.run_id / "metrics.json").read_text()
    assert preflight([config], tmp_path, resume=False) == []  # complete, same config: reused
    for resume in (False, True):
        [again] = run_plan([config], tmp_path, resume=resume, stream=quiet())
        assert again.status == "reused" and again.metrics == first.metrics
    assert (tmp_path / config.run_id / "metrics.json").read_text() == before
    changed = config.replace(epochs=2, log_every_steps=7)  # log_every_steps does not change results
    for resume in (False, True):
        [problem] = preflight([changed], tmp_path, resume=resume)
        assert "cannot reuse the finished run: the configuration differs" in problem
        assert "epochs: 1 in the run directory, 2 now" in problem and "log_every_steps" not in problem
        assert "--rerun" in problem
    [refused] = run_plan([changed], tmp_path, stream=quiet())  # without the preflight: refused all the same
    assert refused.status == "failed" and "epochs: 1 in the run directory, 2 now" in refused.message
    assert (tmp_path / config.run_id / "metrics.json").read_text() == before


def test_resume_refuses_a_different_config(tmp_path, tiny_data):
    config = tiny_config()
    rd = RunDir.for_config(config, tmp_path)
    rd.write_config(config.replace(train_variant="tiny-6"), {})
    assert preflight([config], tmp_path, resume=True) == []
    changed = config.replace(lr=2e-3, epochs=5, num_workers=3)  # num_workers does not change results
    [problem] = preflight([changed], tmp_path, resume=True)
    assert "cannot resume: the configuration differs" in problem
    assert "epochs: 2 in the run directory, 5 now" in problem and "lr: 0.001 in the run directory, 0.002 now" in problem
    assert "num_workers" not in problem


def test_seeds_give_one_directory_each(tmp_path, tiny_data):
    configs = with_seeds([tiny_config(epochs=1)], [0, 1])
    outcomes = run_plan(configs, tmp_path, stream=quiet())
    assert [o.run_id for o in outcomes] == ["test-tiny-s0", "test-tiny-s1"]
    seeds = [json.loads((tmp_path / o.run_id / "metrics.json").read_text())["seed"] for o in outcomes]
    assert seeds == [0, 1]
    assert outcomes[0].metrics["reductions"] != outcomes[1].metrics["reductions"]  # other init, other result


def test_a_failing_run_is_reported_and_the_next_one_runs(tmp_path, tiny_data, monkeypatch):
    import bench.datasets as runner

    def load(config, depth_size, train=True):
        if config.name == "bad":
            raise FileNotFoundError("no such data file: /nowhere.mat")
        return tiny_data(config, depth_size, train)

    monkeypatch.setattr(runner, "load_datasets", load)
    outcomes = run_plan([tiny_config(name="bad", epochs=1), tiny_config(epochs=1)], tmp_path, stream=quiet())
    assert [o.status for o in outcomes] == ["failed", "trained"]
    table = summary_table(outcomes)
    assert "test-bad-s0" in table and "test-tiny-s0" in table
    assert "failed: test-bad-s0: FileNotFoundError: no such data file: /nowhere.mat" in table


def test_preflight_names_unknown_models_options_and_missing_weights(tmp_path, tiny_data, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    problems = preflight(
        [
            tiny_config(name="a", arch="nonet"),
            tiny_config(name="b", options={"widht": 3}),
            tiny_config(name="c", arch="rside", backbone="resnet50", weights="imagenet"),
        ],
        tmp_path,
        resume=False,
    )
    text = "\n".join(problems)
    assert "test-a-s0: unknown architecture 'nonet'; registered:" in text
    assert "test-b-s0: tiny-test has no option(s) widht; valid: width" in text
    assert f"not in the local cache ({tmp_path / 'hub' / 'hub' / 'checkpoints'}/)" in text  # torch.hub layout
    assert "run `bench fetch weights --backbone resnet50`" in text and "place resnet50-0676ba61.pth" in text


def test_imported_rside_checkpoint_is_evaluated_without_training(tmp_path, tiny_data):
    from architectures.rside import build_rside, load_official_checkpoint, to_official_state_dict

    torch.manual_seed(0)
    official = tmp_path / "model_resnet18"
    torch.save(to_official_state_dict(build_rside("resnet18")), official)
    rd = import_rside_checkpoint(official, "resnet18", runs_dir=tmp_path / "runs")
    assert rd.root.name == "paper-rside-resnet18-s0" and rd.state() == RunState.IMPORTED
    config, provenance = rd.read_config()
    assert config.source == "imported" and config.epochs == 0 and config.weights == str(official.resolve())
    assert len(provenance["imported"]["checkpoint"]["header_sha256"]) == 64
    with pytest.raises(RunDirError, match="already holds a run"):
        import_rside_checkpoint(official, "resnet18", runs_dir=tmp_path / "runs")

    planned = load_suite("paper").defaults.replace(
        name="rside-resnet18",
        arch="rside",
        backbone="resnet18",
        device="cpu",
        weights=None,
        input_size=(64, 80),
        num_workers=0,
    )
    assert preflight([planned], tmp_path / "runs", resume=False, with_data=False) == []
    outcome = execute_run(planned, tmp_path / "runs", stream=quiet())
    assert outcome.status == "evaluated" and outcome.steps == 0
    assert not rd.history_path.exists()  # nothing was trained
    metrics = json.loads(rd.metrics_path.read_text())
    assert metrics["checkpoint"] == "imported" and metrics["source"] == "imported"
    direct = evaluate(
        load_official_checkpoint(official, "resnet18"),
        TinyDepthSet([2, 5, 9, 11]),
        RSIDE_LIKE_PROTOCOL,
        input_size=(64, 80),
    )
    for reduction, values in direct.reductions().items():
        for key, value in values.items():  # JSON has null where the metric is NaN (negative predictions)
            assert metrics["reductions"][reduction][key] == (None if math.isnan(value) else pytest.approx(value))
    assert rd.read_config()[1]["imported"]["backbone"] == "resnet18"  # provenance of the import is kept
    assert rd.state() == RunState.COMPLETE
    assert preflight([planned], tmp_path / "runs", resume=False, with_data=False) == []  # evaluated: reused
    [again] = run_plan([planned], tmp_path / "runs", stream=quiet())
    assert again.status == "reused" and again.metrics == metrics
    [problem] = preflight([planned.replace(protocol="eigen")], tmp_path / "runs", resume=False, with_data=False)
    assert "protocol: 'rside' in the run directory, 'eigen' now" in problem


def test_imported_weights_must_fit_the_planned_run(tmp_path, tiny_data):
    config = tiny_config()
    rd = RunDir.for_config(config, tmp_path)
    rd.write_config(config.replace(source="imported", epochs=0, backbone="other"), {})
    [problem] = preflight([config], tmp_path, resume=False, with_data=False)
    assert "imported weights do not fit the planned run (backbone: 'other'" in problem


def test_preflight_lists_a_damaged_run_directory_of_a_run_with_weights(tmp_path, tiny_data):
    weights = tmp_path / "init.pt"
    weights.write_bytes(b"")
    config = tiny_config(weights=str(weights))
    rd = RunDir.for_config(config, tmp_path)
    rd.root.mkdir()
    rd.config_path.write_text("{not json")
    for resume in (False, True):
        [problem] = preflight([config], tmp_path, resume=resume, with_data=False)
        assert problem.startswith(f"{rd.root}: cannot read {rd.config_path}")


def test_missing_data_message_never_suggests_writing_over_a_file(tmp_path, monkeypatch):
    from architectures.data.downloads import NYU_LABELED_URL, missing_data_message

    monkeypatch.chdir(tmp_path)
    err = OSError("not an HDF5 / MATLAB v7.3 file")
    corrupt = tmp_path / "mine.mat"
    corrupt.write_bytes(b"partial download")
    msg = missing_data_message("nyu-labeled", str(corrupt), err)
    assert f"-o {corrupt}" not in msg and f"{corrupt} is left as it is" in msg
    assert f"mkdir -p data && curl -L --fail -o data/nyu_depth_v2_labeled.mat {NYU_LABELED_URL}" in msg
    assert "then pass --data nyu-labeled:data/nyu_depth_v2_labeled.mat" in msg

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nyu_depth_v2_labeled.mat").write_bytes(b"truncated")  # the default path, damaged
    msg = missing_data_message("nyu-labeled", None, err)
    assert "-o data/nyu_depth_v2_labeled.mat " not in msg and "mkdir" not in msg
    assert "curl -L --fail -o data/nyu_depth_v2_labeled-2.mat" in msg

    msg = missing_data_message("nyu-labeled", "/nonexistent.mat", FileNotFoundError("no such file"))
    assert "mkdir -p /" not in msg and "provide the official labeled NYU Depth v2 file" in msg

    deep = tmp_path / "sub" / "dir" / "x.mat"
    msg = missing_data_message("nyu-labeled", str(deep), FileNotFoundError("no such file"))
    assert f"mkdir -p {deep.parent} && curl -L --fail -o {deep} {NYU_LABELED_URL}" in msg
    assert "then pass" not in msg  # the path asked for is where the file goes


def test_resume_message_numbers_epochs_and_steps_as_the_progress_lines(tmp_path, tiny_data, monkeypatch):
    import bench.lifecycle as lifecycle

    real = lifecycle.evaluate_run
    calls = {"n": 0}

    def evaluate_once_then_crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("killed during the first evaluation")
        return real(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "evaluate_run", evaluate_once_then_crash)
    config = tiny_config(epochs=2)  # 6 frames, batch 2: 3 steps per epoch; a checkpoint every 2 steps
    [failed] = run_plan([config], tmp_path, stream=quiet())
    assert failed.status == "failed"
    out = io.StringIO()
    [resumed] = run_plan([config], tmp_path, resume=True, stream=out)
    assert resumed.status == "trained", resumed.message
    text = out.getvalue()
    assert "resuming in epoch 1/2 after step 2/3" in text  # last.pt was written after global step 2
    assert "epoch 1/2 | step 3/3" in text  # the next progress line continues from there


def test_train_variant_says_how_many_frames_were_used(tmp_path):
    data = pytest.importorskip("architectures.data")
    from bench.datasets import load_datasets

    rooms = data.ensure_synthetic(tmp_path / "rooms.h5", frames=16, seed=0)  # 12 train + 4 test frames
    config = tiny_config(data_path=str(rooms), train_frames=5)
    train_set, _ = load_datasets(config, (32, 40))
    assert len(train_set) == 5 and train_set.identity["train_variant"] == "synthetic-12-first-5"
    whole, _ = load_datasets(config.replace(train_frames=None), (32, 40))
    assert len(whole) == 12 and whole.identity["train_variant"] == "synthetic-12"


def test_a_signal_outside_the_training_steps_stops_the_suite_at_once_and_the_run_resumes(
    tmp_path, tiny_data, monkeypatch
):
    """SIGTERM while a run evaluates after training (no step to finish): the run stops at once, interrupted, its
    last.pt as it was; the suite stops; --resume evaluates it and trains the rest."""
    import os
    import signal

    from bench import lifecycle

    real = lifecycle.evaluate_run

    def evaluate_after_a_sigterm(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # lands at once, in this (the main) thread
        return real(*args, **kwargs)

    configs = [tiny_config(epochs=1, eval_every_epochs=0), tiny_config(name="later", epochs=1)]
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(lifecycle, "evaluate_run", evaluate_after_a_sigterm)
    stopped = run_plan(configs, tmp_path, stream=quiet())
    assert [o.status for o in stopped] == ["interrupted", "not started"] and stopped[0].stopped_suite
    last = tmp_path / "test-tiny-s0" / "checkpoints" / "last.pt"
    assert stopped[0].message == (
        f"interrupted by SIGTERM outside its training steps (setting up, evaluating or writing results); {last} "
        "holds every finished step; continue with `bench run --resume` (exit code 75: interrupted, resumable)"
    )
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers  # put back
    assert not (tmp_path / "test-tiny-s0" / "metrics.json").exists() and not (tmp_path / ".locks").exists()
    monkeypatch.setattr(lifecycle, "evaluate_run", real)
    out = io.StringIO()
    resumed = run_plan(configs, tmp_path, resume=True, stream=out)
    assert [o.status for o in resumed] == ["trained", "trained"] and "training already finished" in out.getvalue()
