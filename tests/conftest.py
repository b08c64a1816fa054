"""Shared test setup: each test process takes its share of the cores as torch threads (all of them, at most 2,
without pytest-xdist; with it, cores / workers), so that parallel test processes do not oversubscribe the CPU."""

from __future__ import annotations

import os

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
