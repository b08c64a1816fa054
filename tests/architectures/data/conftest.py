"""Fixtures for the data tests; the writers live in data_fixtures.py (importable by the test modules)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_fixtures import make_rside_root, write_full_index_mat, write_labeled_file


@pytest.fixture
def write_labeled():
    return write_labeled_file


@pytest.fixture
def tiny_frames() -> tuple[np.ndarray, np.ndarray]:
    """3 frames of 6x8: asymmetric random images and depths in 0.7..9.9 m, so any transpose or flip shows."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 6, 8, 3), dtype=np.uint8)
    depths = rng.uniform(0.7, 9.9, size=(3, 6, 8)).astype(np.float32)
    return images, depths


@pytest.fixture(scope="session")
def full_index_mat(tmp_path_factory) -> Path:
    return write_full_index_mat(tmp_path_factory.mktemp("nyu") / "nyu_depth_v2_labeled.mat")


@pytest.fixture
def rside_root(tmp_path) -> tuple[Path, dict[str, list]]:
    root = tmp_path / "rside"
    return root, make_rside_root(root)
