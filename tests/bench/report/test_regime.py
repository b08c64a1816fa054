"""Regimes: every regime field of RunConfig is compared and named, the code that computed the numbers too."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from runner_fixtures import tiny_config

from bench.config import REGIME_CONFIG_FIELDS, RunConfig
from bench.lifecycle import execute_run
from bench.report.regime import (
    CODE_DRIFT_ACCEPTED,
    COMPARED_AS,
    compare_groups,
    compare_regimes,
    regime_differences,
    regime_of,
)
from bench.report.runs import RunGroup, load_eval_run

FRAMES = (1, 2, 3, 4)
DIGEST_A, DIGEST_B = "a" * 64, "b" * 64
CODE_A = {
    "torch": "2.14.1",
    "files": {"architectures/drnet.py": "1" * 64, "bench/train.py": "2" * 64},
    "digest": DIGEST_A,
}
CODE_B = {**CODE_A, "files": {**CODE_A["files"], "architectures/drnet.py": "3" * 64}, "digest": DIGEST_B}
DATA = {"source": "synthetic", "fingerprint": {"path": "/data/s.h5", "header_sha256": "f" * 64}}

# For each regime field of RunConfig: another value than the default, and what the run then records besides
# its config (metrics.json, provenance, frames). A new regime field needs an entry here.
OTHER: dict[str, tuple[Any, dict[str, Any]]] = {
    "weights": ("imagenet", {}),
    "source": ("imported", {"metrics": {"source": "imported"}}),
    "data": ("nyu-labeled", {"metrics": {"data": {"source": "nyu-labeled", "train_variant": "synthetic"}}}),
    "data_path": (
        "/elsewhere/other.h5",
        {"provenance": {"data": {"fingerprint": {"path": "/elsewhere/other.h5", "header_sha256": "e" * 64}}}},
    ),
    "train_split": ("all", {}),
    "test_split": ("all", {}),
    "train_variant": ("nyu-labeled-795", {"metrics": {"data": {"source": "synthetic", "train_variant": None}}}),
    "train_frames": (48, {}),
    "eval_frames": (3, {"frames": FRAMES[:3]}),
    "input_size": ([120, 160], {}),
    "protocol": ("eigen", {"metrics": {"protocol": {"name": "eigen", "crop": "eigen"}}}),
    "epochs": (2, {"metrics": {"epoch": 2, "steps": 20}}),
    "max_steps": (5, {"metrics": {"steps": 5}}),
    "batch_size": (4, {}),
    "lr": (1e-3, {}),
    "betas": ([0.5, 0.9], {}),
    "weight_decay": (0.0, {}),
    "amsgrad": (False, {}),
    "lr_schedule": ("constant", {}),
    "lr_step_epochs": (2, {}),
    "lr_gamma": (0.5, {}),
    "grad_clip_norm": (1.0, {}),
    "amp": ("bf16", {}),
    "device": ("cuda", {}),
    "deterministic": (True, {}),
    "eval_every_epochs": (0, {}),
    "checkpoint_select": ("best", {"metrics": {"checkpoint": "best"}}),
}


def write_run(
    root: Path,
    make_eval_run,
    name: str,
    arch: str = "rside",
    seed: int = 0,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    frames=FRAMES,
):
    """A run as the runner writes it: the whole RunConfig in config.json, the code and data fingerprints."""
    cfg = {**RunConfig(suite="t", name=name, arch=arch, seed=seed, epochs=1).to_dict(), **(config or {})}
    path = make_eval_run(
        root,
        "t",
        name,
        arch,
        "resnet50",
        seed=seed,
        frames=frames,
        predictions=False,
        metrics_extra={"steps": 10, "epoch": 1, "checkpoint": "last", **(metrics or {})},
        config_extra=cfg,
    )
    stored = json.loads((path / "config.json").read_text())
    stored["provenance"].update({"code": CODE_A, "processes": 1, "data": DATA, **(provenance or {})})
    (path / "config.json").write_text(json.dumps(stored))
    return load_eval_run(path)


def test_every_regime_field_of_runconfig_has_a_test_value_and_a_name():
    assert set(OTHER) == set(REGIME_CONFIG_FIELDS), "give a new regime field another value in OTHER"
    assert set(COMPARED_AS) == set(REGIME_CONFIG_FIELDS)


def test_runs_of_the_default_recipe_are_comparable(runs_dir, make_eval_run):
    drnet, rside = (write_run(runs_dir, make_eval_run, name, name) for name in ("drnet", "rside"))
    assert regime_differences(regime_of(drnet), regime_of(rside)) == []


@pytest.mark.parametrize("field", REGIME_CONFIG_FIELDS)
def test_a_difference_in_any_regime_field_makes_runs_not_comparable_and_names_it(field, runs_dir, make_eval_run):
    value, records = OTHER[field]
    drnet = write_run(runs_dir, make_eval_run, "drnet", "drnet")
    rside = write_run(
        runs_dir,
        make_eval_run,
        "rside",
        config={field: value},
        metrics=records.get("metrics"),
        provenance=records.get("provenance"),
        frames=records.get("frames", FRAMES),
    )
    named = {d.split(" ")[0] for d in regime_differences(regime_of(drnet), regime_of(rside))}
    also = {"source": {"init"}, "epochs": {"steps"}}.get(field, set())  # imported weights: another init too
    assert named == {COMPARED_AS[field], *also}, (field, named)


def test_the_issue_recipe_is_not_comparable_and_every_difference_is_named(runs_dir, make_eval_run):
    """DRNet trained with another recipe against a default RSIDE, three seeds each."""
    recipe = {
        "lr": 1e-3,
        "weight_decay": 0.0,
        "betas": [0.5, 0.9],
        "lr_gamma": 0.5,
        "lr_step_epochs": 2,
        "grad_clip_norm": 1.0,
        "amp": "bf16",
        "checkpoint_select": "best",
        "train_split": "all",
    }
    drnet = RunGroup(tuple(write_run(runs_dir, make_eval_run, "drnet", "drnet", s, recipe) for s in range(3)))
    rside = RunGroup(tuple(write_run(runs_dir, make_eval_run, "rside", "rside", s) for s in range(3)))
    result = compare_groups(drnet, rside)
    assert not result.comparable and result.notes == ()
    assert result.differences == (
        "train_split all vs train",
        "lr 0.001 vs 0.0001",
        "betas (0.5, 0.9) vs (0.9, 0.999)",
        "weight_decay 0 vs 0.0001",
        "lr_step_epochs 2 vs 5",
        "lr_gamma 0.5 vs 0.1",
        "grad_clip_norm 1 vs none",
        "amp bf16 vs none",
        "checkpoint_select best vs last",
    )
    assert compare_groups(rside, RunGroup(rside.runs[:1])).comparable  # seeds of one recipe agree


def test_what_is_compared_by_what_the_run_did(runs_dir, make_eval_run):
    base = regime_of(write_run(runs_dir, make_eval_run, "a"))
    # the same data file at another path matches (content fingerprint); max_steps that did not stop the run
    # earlier than its epochs did leaves the same steps taken
    moved = write_run(runs_dir, make_eval_run, "b", config={"data_path": "/mnt/elsewhere/s.h5", "max_steps": 1000})
    assert regime_differences(base, regime_of(moved)) == []
    # a run of a version that did not have a field yet: which value it used is unknown
    old = write_run(runs_dir, make_eval_run, "c")
    stored = json.loads((old.path / "config.json").read_text())
    del stored["config"]["grad_clip_norm"], stored["config"]["amp"]
    (old.path / "config.json").write_text(json.dumps(stored))
    older = regime_of(load_eval_run(old.path))
    assert regime_differences(base, older) == ["grad_clip_norm none vs unrecorded", "amp none vs unrecorded"]
    assert regime_differences(older, older) == []  # two runs of that version agree
    # without a data fingerprint (older runs) the path decides
    unprinted = [
        write_run(runs_dir, make_eval_run, n, config={"data_path": p}, provenance={"data": {"source": "synthetic"}})
        for n, p in (("d", "/data/x.h5"), ("e", "/data/y.h5"))
    ]
    assert regime_differences(*map(regime_of, unprinted)) == ["data_fingerprint path /data/x.h5 vs path /data/y.h5"]


def test_training_processes_are_compared_where_both_runs_recorded_them(runs_dir, make_eval_run):
    one, two = (write_run(runs_dir, make_eval_run, f"p{n}", provenance={"processes": n}) for n in (1, 2))
    assert regime_differences(regime_of(one), regime_of(two)) == ["processes 1 vs 2"]
    older = write_run(runs_dir, make_eval_run, "older", provenance={"processes": None})
    assert regime_differences(regime_of(older), regime_of(two)) == []


def test_differing_code_is_named_with_its_files_unless_accepted(runs_dir, make_eval_run):
    a = regime_of(write_run(runs_dir, make_eval_run, "a"))
    b = regime_of(write_run(runs_dir, make_eval_run, "b", provenance={"code": CODE_B}))
    expected = f"code {DIGEST_A[:12]} vs {DIGEST_B[:12]} (architectures/drnet.py)"
    assert regime_differences(a, b) == [expected]
    accepted = compare_regimes([a, b], accept_code_drift=True)
    assert accepted.comparable and regime_differences(a, b, accept_code_drift=True) == []
    assert accepted.notes == (f"{CODE_DRIFT_ACCEPTED}: {expected.removeprefix('code ')}",)
    assert compare_regimes([a, a], accept_code_drift=True).notes == ()  # nothing to accept
    newer_torch = {**CODE_A, "torch": "2.15.0", "digest": "c" * 64}
    torch = regime_of(write_run(runs_dir, make_eval_run, "c", provenance={"code": newer_torch}))
    assert regime_differences(a, torch) == [f"code {DIGEST_A[:12]} vs cccccccccccc (torch 2.14.1 vs 2.15.0)"]


def test_code_without_a_fingerprint(runs_dir, make_eval_run):
    """Older runs: a clean git commit (with the torch version) identifies the code; anything less matches nothing."""
    git = {"commit": "abc1234", "dirty": False}
    old = [write_run(runs_dir, make_eval_run, f"old{i}", provenance={"code": None, "git": git}) for i in range(2)]
    assert regime_differences(regime_of(old[0]), regime_of(old[1])) == []
    new = regime_of(write_run(runs_dir, make_eval_run, "new"))
    assert regime_differences(regime_of(old[0]), new) == [f"code git abc1234, torch 2.14.1 vs {DIGEST_A[:12]}"]
    dirty = regime_of(
        write_run(runs_dir, make_eval_run, "dirty", provenance={"code": None, "git": {**git, "dirty": True}})
    )
    assert regime_differences(dirty, dirty) == ["code unrecorded (git abc1234 with uncommitted changes)"]
    bare = regime_of(write_run(runs_dir, make_eval_run, "bare", provenance={"code": None, "git": {}}))
    assert regime_differences(bare, bare) == ["code unrecorded"]
    assert compare_regimes([bare, new], accept_code_drift=True).notes == (
        f"{CODE_DRIFT_ACCEPTED}: unrecorded vs {DIGEST_A[:12]}",
    )


def test_a_run_resumed_under_other_code_matches_no_run(runs_dir, make_eval_run):
    resumed = write_run(runs_dir, make_eval_run, "r", provenance={"resumes": [{"code": CODE_B}]})
    plain = write_run(runs_dir, make_eval_run, "p")
    diffs = regime_differences(regime_of(resumed), regime_of(plain))
    assert diffs == [f"code mixed {DIGEST_A[:12]}+{DIGEST_B[:12]} vs {DIGEST_A[:12]}"]


def test_real_runs_differing_only_in_lr_and_operational_fields(tmp_path, tiny_data):
    """Two tiny CPU runs: what the runner records makes the lr the one difference; num_workers and logging do
    not count, and both runs carry the same code fingerprint."""
    a = tiny_config(name="a", epochs=1)
    b = tiny_config(name="b", epochs=1, lr=2e-3, num_workers=1, log_every_steps=3, keep_checkpoints=True)
    for config in (a, b):
        execute_run(config, tmp_path, stream=io.StringIO())
    ra, rb = (regime_of(load_eval_run(tmp_path / c.run_id)) for c in (a, b))
    assert regime_differences(ra, rb) == ["lr 0.001 vs 0.002"]
    assert ra.code == rb.code and len(ra.code) == 12
