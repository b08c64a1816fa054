"""Fixtures for the runner tests (helpers in runner_fixtures.py)."""

from __future__ import annotations

import pytest
from runner_fixtures import RSIDE_LIKE_PROTOCOL, TinyDepthSet

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
