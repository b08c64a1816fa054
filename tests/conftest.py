"""Shared test setup: small CPU thread count so parallel runs on 2 cores stay predictable."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _cpu_threads():
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    yield
