"""Shared test setup: one test worker per core (pytest-xdist, pyproject's addopts), each with its share of the
cores as torch threads, so that the workers do not oversubscribe the CPU."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _cpu_threads():
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // workers)))
    yield


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` are scheduled first; tests marked ``gpu`` run one after another on one worker (they
    share the GPU, and NVML sees every process on it), and skip cleanly, saying why, where torch sees no CUDA
    device (the GPU self-test: ``python -m pytest -m gpu -q``)."""
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.xdist_group("gpu"))
    # The long tests first (a stable sort keeps their order): the workers then fill the gaps with the short ones
    # instead of ending on a long one while the other cores sit idle.
    items.sort(key=lambda item: "slow" not in item.keywords)
    if torch.cuda.is_available():
        return
    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
    skip = pytest.mark.skip(reason=f"needs a CUDA device (torch {torch.__version__}, {build}, sees none)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
