"""Shared test setup: each test process takes its share of the cores as torch threads (all of them, at most 2,
without pytest-xdist; with it, cores / workers), so that parallel test processes do not oversubscribe the CPU;
under pytest-xdist a test marked ``alone`` (it measures CPU memory or time) runs while no other test does."""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _cpu_threads():
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // workers)))
    yield


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip cleanly, saying why, where torch sees no CUDA
    device (the GPU self-test: ``python -m pytest -m gpu -q``)."""
    if torch.cuda.is_available():
        return
    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
    skip = pytest.mark.skip(reason=f"needs a CUDA device (torch {torch.__version__}, {build}, sees none)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@contextmanager
def _cpu_to_myself(alone: bool, basetemp: str | None) -> Iterator[None]:
    """A readers-writer lock over the test workers of one pytest-xdist run: every test holds ``main`` shared, a test
    marked ``alone`` holds it exclusively. ``gate`` is a turnstile: a test waiting for ``main`` alone holds it, so
    the other workers start no new test until it has run (their running tests finish first). A worker that is
    still starting (importing torch, collecting) holds no lock, so an ``alone`` test first waits until every
    worker has begun its first test (at most a minute)."""
    run, worker = os.environ.get("PYTEST_XDIST_TESTRUNUID"), os.environ.get("PYTEST_XDIST_WORKER")
    if run is None or worker is None:  # one test process: one test at a time anyway
        yield
        return
    # a worker's basetemp is <the run's basetemp>/popen-gwN: the parent is shared, and pytest prunes old ones
    shared = Path(basetemp).parent if basetemp else Path(tempfile.gettempdir())
    base = shared / f"drnet-bench-tests-{run}"
    Path(f"{base}.started-{worker}").touch()
    with open(f"{base}.gate", "a") as gate, open(f"{base}.lock", "a") as main:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            if alone:
                _wait_for_every_worker(base)
            fcntl.flock(main, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(main, fcntl.LOCK_UN)


def _wait_for_every_worker(base: Path, timeout_s: float = 60.0) -> None:
    """Until every worker of the run has started a test (``<base>.started-gwN`` files), or ``timeout_s``."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    deadline = time.monotonic() + timeout_s
    while len(list(base.parent.glob(f"{base.name}.started-*"))) < workers and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Setup, call and teardown of each test inside its share of the CPU (see ``_cpu_to_myself``). GPU tests run
    alone too: they share the one GPU, and NVML sees every process on it. A test marked to skip takes no
    exclusive turn: waiting for the other workers' tests to end only to skip left a core idle (80 s a run here)."""
    skipped = item.get_closest_marker("skip") is not None or any(
        bool(m.args[0]) for m in item.iter_markers("skipif") if m.args and isinstance(m.args[0], bool)
    )
    alone = not skipped and any(item.get_closest_marker(m) is not None for m in ("alone", "gpu"))
    with _cpu_to_myself(alone, item.config.option.basetemp):
        yield
