"""Shared test setup: small CPU thread count so parallel runs on 2 cores stay predictable."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _cpu_threads():
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    yield


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip cleanly, saying why, where torch sees no CUDA device (the GPU self-test:
    ``python -m pytest -m gpu -q``)."""
    if torch.cuda.is_available():
        return
    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
    skip = pytest.mark.skip(reason=f"needs a CUDA device (torch {torch.__version__}, {build}, sees none)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
