"""bench/speed/data.py: the DataLoader throughput figure reads the training set as the trainer does."""

from __future__ import annotations

import os

import pytest

from architectures.data.rside_csv import write_rside_fixture
from bench.speed.data import format_speeds, loader_speed, synth_speed


@pytest.fixture(scope="module")
def rside_root(tmp_path_factory):
    # 240x320 frames: Scale(240) keeps them, so the fixture is quick to write and to read
    return write_rside_fixture(tmp_path_factory.mktemp("rside"), train_rows=8, test_names=(0,), height=240, width=320)


@pytest.mark.parametrize("workers", [0, 1])
def test_loader_speed_counts_images_and_loader_cpu(rside_root, workers):
    s = loader_speed(f"rside-csv:{rside_root}", workers=workers, batch_size=2, batches=3, warmup=1)
    assert (s.images, s.batch_size, s.workers) == (6, 2, workers) and s.images_per_s > 0
    if os.path.isdir("/proc"):
        assert s.cpu_seconds is not None and s.cpu_seconds >= 0
        assert s.images_per_cpu_s is None or s.images_per_cpu_s == pytest.approx(s.images / s.cpu_seconds)
    text = format_speeds(synth_speed(frames=1, height=48, width=64), [s])
    assert f"batch 2, {workers} worker(s):" in text and "images/s" in text


def test_loader_speed_reads_through_seeded_items(rside_root, monkeypatch):
    """Each item seeds its own augmentation (bench.train.SeededItems), as in training."""
    import bench.speed.data as data

    wrapped = []

    class Recording(data.SeededItems):
        def __init__(self, dataset, seed):
            wrapped.append(seed)
            super().__init__(dataset, seed)

    monkeypatch.setattr(data, "SeededItems", Recording)
    loader_speed(f"rside-csv:{rside_root}", workers=0, batch_size=2, batches=1, warmup=0, seed=7)
    assert wrapped == [7]
