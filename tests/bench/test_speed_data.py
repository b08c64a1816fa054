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
    # RSIDE's transform: the workers give frames, and applying their augmentation per batch is timed apart
    assert s.device == "cpu" and s.device_images == 6 and s.device_ms_per_image > 0
    text = format_speeds(synth_speed(frames=1, height=48, width=64), [s])
    assert f"batch 2, {workers} worker(s):" in text and "images/s" in text
    assert "applying it per batch where the batch goes to the device (cpu, CPU time on one thread" in text


def test_loader_speed_reads_the_training_path(rside_root, monkeypatch):
    """The training set as the trainer reads it (bench.train.training_items: SeededItems, each item seeding its
    own augmentation, over the frames; training_loader: the frames' collate)."""
    import bench.speed.data as data
    import bench.train as train

    wrapped, loaders = [], []

    def recording_items(dataset, seed):
        items = train.training_items(dataset, seed)
        wrapped.append((type(items).__name__, seed, type(items.dataset.transform).__name__))
        return items

    def recording_loader(*args, **kwargs):
        loader = train.training_loader(*args, **kwargs)
        loaders.append(loader.collate_fn.__name__)
        return loader

    monkeypatch.setattr(data, "training_items", recording_items)
    monkeypatch.setattr(data, "training_loader", recording_loader)
    loader_speed(f"rside-csv:{rside_root}", workers=0, batch_size=2, batches=1, warmup=0, seed=7)
    assert wrapped == [("SeededItems", 7, "FrameDraws")] and loaders == ["collate_frames"]
