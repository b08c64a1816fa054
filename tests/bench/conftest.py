"""Fixtures for the runner tests (helpers in runner_fixtures.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from runner_fixtures import RSIDE_LIKE_PROTOCOL, TinyDepthSet, bench_process, tiny_rside_suite

from bench.config import RunConfig


@pytest.fixture
def tiny_data(monkeypatch):
    """Route the runner's data and protocol lookups to TinyDepthSet / a RSIDE-like protocol."""
    import bench.datasets
    import bench.runmodel

    def load(config: RunConfig, depth_size, train: bool = True):
        train_set = (
            TinyDepthSet(list(range(1, 7)), depth_size=tuple(depth_size), train=True, split="train") if train else None
        )
        test_set = TinyDepthSet([2, 5, 9, 11])
        return train_set, test_set

    monkeypatch.setattr(bench.datasets, "load_datasets", load)
    monkeypatch.setattr(bench.runmodel, "resolve_protocol", lambda name: RSIDE_LIKE_PROTOCOL)
    return load


@pytest.fixture
def one_thread():
    """torch on one thread, as the separate processes of a test run (the same float sums in both)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _shared_dir(tmp_path_factory) -> Path:
    """The base directory every pytest-xdist worker of this session sees (the session's own without xdist)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()


def _bench_process(*args: str) -> None:
    """``bench ARGS`` as a process of its own, on one CPU thread (as the runs compared with it); must succeed."""
    done = bench_process(*args)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
def regression_reference(tmp_path_factory) -> tuple[Path, Path]:
    """(synthetic file, runs directory) of one `bench run --suite regression` process on 16 synthetic frames (its
    two runs: regression-rside-resnet18-s0 and regression-drnet-resnet18-s0), on one thread: the result a second
    run of that suite, inline or through a launcher, must reproduce. Trained once per test session (see
    ``tiny_rside_reference``)."""
    from filelock import FileLock

    from architectures.data import ensure_synthetic

    shared = _shared_dir(tmp_path_factory)
    tmp = shared / "regression-reference"
    runs = tmp / "runs"
    with FileLock(str(shared / "regression-reference.lock")):
        rooms = tmp / "rooms.h5"
        if not (runs / "regression-drnet-resnet18-s0" / "metrics.json").is_file():
            tmp.mkdir(exist_ok=True)
            ensure_synthetic(rooms, frames=16, seed=0)
            _bench_process("run", "--suite", "regression", "--data", f"synthetic:{rooms}", "--runs-dir", str(runs))
    return rooms, runs


@pytest.fixture(scope="session")
def tiny_rside_reference(tmp_path_factory) -> tuple[Path, Path]:
    """(suite file, run directory) of one uninterrupted `bench run` process of ``tiny_rside_suite`` (3 epochs):
    the result every interrupted, killed, requeued or relaunched run of that suite must reproduce. Trained once
    per test session: under pytest-xdist the workers share this session's base directory, and a file lock lets
    the first worker train it while the others wait for it."""
    from filelock import FileLock

    shared = _shared_dir(tmp_path_factory)
    tmp = shared / "tiny-rside-reference"
    run_dir = tmp / "runs" / "k-r-s0"
    with FileLock(str(shared / "tiny-rside-reference.lock")):
        if not (run_dir / "metrics.json").is_file():
            tmp.mkdir(exist_ok=True)
            suite = tiny_rside_suite(tmp)
            _bench_process("run", "--suite", str(suite), "--runs-dir", str(tmp / "runs"))
    return tmp / "k.toml", run_dir
