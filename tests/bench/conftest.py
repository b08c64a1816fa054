"""Fixtures for the runner tests (helpers in runner_fixtures.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from runner_fixtures import RSIDE_LIKE_PROTOCOL, TinyDepthSet, tiny_rside_suite

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


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_rside_reference(tmp_path_factory) -> tuple[Path, Path]:
    """(suite file, run directory) of one uninterrupted `bench run` process of ``tiny_rside_suite`` (3 epochs):
    the result every interrupted, killed, requeued or relaunched run of that suite must reproduce. Trained once
    per test session: under pytest-xdist the workers share this session's base directory, and a file lock lets
    the first worker train it while the others wait for it."""
    from filelock import FileLock

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    shared = tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()
    tmp = shared / "tiny-rside-reference"
    run_dir = tmp / "runs" / "k-r-s0"
    with FileLock(str(shared / "tiny-rside-reference.lock")):
        if not (run_dir / "metrics.json").is_file():
            tmp.mkdir(exist_ok=True)
            suite = tiny_rside_suite(tmp)
            done = subprocess.run(
                [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--runs-dir", str(tmp / "runs")],
                cwd=REPO,
                env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, done.stdout + done.stderr
    return tmp / "k.toml", run_dir
