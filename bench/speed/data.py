"""Data throughput: synthetic frames/s on one core, DataLoader images/s with RSIDE's training transforms.

``bench data bench`` prints both, so one can check that the loader will not starve a GPU. Timings are wall
clock (``time.perf_counter``); the loader is timed after warm-up batches, so worker start-up is excluded.
The training set is read as the trainer reads it (``bench.train.training_items`` and ``training_loader``): each
item seeded (``SeededItems``), shuffled, batches collated by worker processes. With RSIDE's transform the
workers read and decode frames, scale them and draw their augmentation; the augmentation itself is applied per
batch where the batch goes to the device (``architectures.data.augment``), which ``loader_speed`` times
separately on a few of the batches (``device``: the main process's CPU on one thread by default, where the
figure is a cost the training process pays per image; on a GPU it would be far smaller). Beside images/s the
loader line gives images per CPU-second of the worker processes (Linux ``/proc``; the main process with 0
workers): on a machine shared with other jobs, wall-clock images/s falls with the load, CPU-seconds much less,
so that figure is the fairer one to compare between runs there (docs/loader-speed.md).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from architectures.data.augment import augment_batch, is_frame_batch
from architectures.data.sources import build_dataset, parse_data_spec
from architectures.data.synthetic import render_frame
from architectures.data.transforms import RSIDE_CROP_HW, RSIDE_DEPTH_HW
from bench.provenance import cpu_model
from bench.train import training_items, training_loader

__all__ = ["LoaderSpeed", "SynthSpeed", "format_speeds", "loader_speed", "synth_speed"]


@dataclass(frozen=True)
class SynthSpeed:
    """Synthetic rendering speed (frames/s) at height x width, on one thread."""

    frames: int
    seconds: float
    fps: float
    height: int
    width: int


@dataclass(frozen=True)
class LoaderSpeed:
    """DataLoader throughput (images/s) over ``batches`` timed batches after warm-up."""

    data: str
    workers: int
    batch_size: int
    batches: int
    images: int
    seconds: float
    images_per_s: float
    depth_size: tuple[int, int]
    cpu_seconds: float | None = None  # CPU (user + system) of the worker processes over the timed batches, s
    images_per_cpu_s: float | None = None  # images / cpu_seconds: images per worker CPU-second
    device: str | None = None  # where the batches were augmented (None: the workers did it, per sample)
    device_images: int = 0  # images augmented there while timed
    device_seconds: float | None = None  # augment_batch over them: CPU time on one thread, else wall clock, s

    @property
    def device_ms_per_image(self) -> float | None:
        """Milliseconds per image that augmenting the batches costs where they go to the device."""
        return None if self.device_seconds is None else 1e3 * self.device_seconds / self.device_images


def synth_speed(frames: int = 20, height: int = 480, width: int = 640, seed: int = 0) -> SynthSpeed:
    """Render ``frames`` rooms on one thread (rendering is NumPy only and single-threaded; no torch)."""
    render_frame(seed, 10_000, height, width)  # warm-up: first-call allocations
    start = time.perf_counter()
    for i in range(frames):
        render_frame(seed, i, height, width)
    seconds = time.perf_counter() - start
    return SynthSpeed(frames, seconds, frames / seconds, height, width)


def loader_speed(
    data: str = "synthetic",
    workers: int = 2,
    batch_size: int = 8,
    batches: int = 30,
    warmup: int = 2,
    depth_size: tuple[int, int] = RSIDE_DEPTH_HW,
    seed: int = 0,
    device: str = "cpu",
    device_batches: int = 8,
) -> LoaderSpeed:
    """Iterate the train split with RSIDE's random transforms through a DataLoader, as the trainer does
    (``training_items``, ``training_loader``); images/s and images per worker CPU-second after warm-up. Where
    the augmentation is left to the batch (RSIDE's transform), the first ``device_batches`` timed batches are
    then augmented on ``device`` (``augment_batch``, as the training step does; a CPU with one thread) and
    that is timed too."""
    source, path = parse_data_spec(data)
    dataset = training_items(build_dataset(source, path, "train", train=True, depth_size=depth_size), seed)
    torch.manual_seed(seed)
    loader = training_loader(dataset, batch_size, workers, shuffle=True, drop_last=True, persistent_workers=workers > 0)
    threads = torch.get_num_threads()
    if workers == 0:
        torch.set_num_threads(1)  # one core, like one worker
    kept = []
    try:
        batch_iter = _forever(loader)
        for _ in range(warmup):
            next(batch_iter)
        cpu_start, start = _loader_cpu_s(workers), time.perf_counter()
        for _ in range(batches):
            batch = next(batch_iter)  # drop_last=True: every batch holds batch_size images
            if len(kept) < device_batches and is_frame_batch(batch):
                kept.append(batch)
        seconds, cpu_end = time.perf_counter() - start, _loader_cpu_s(workers)
        device_seconds = _augment_seconds(kept, torch.device(device)) if kept else None
    finally:
        torch.set_num_threads(threads)
    images = batches * batch_size
    cpu = cpu_end - cpu_start if cpu_start is not None and cpu_end is not None else None
    return LoaderSpeed(
        data,
        workers,
        batch_size,
        batches,
        images,
        seconds,
        images / seconds,
        tuple(depth_size),
        cpu,
        images / cpu if cpu else None,
        device if kept else None,
        len(kept) * batch_size,
        device_seconds,
    )


def _augment_seconds(batches: list, device: torch.device) -> float:
    """Seconds ``augment_batch`` takes over ``batches`` on ``device``, after one warm-up: on a CPU the training
    process's CPU time on one thread (steadier than wall clock on a shared machine), else wall clock."""
    threads = torch.get_num_threads()
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        augment_batch(batches[0], device)
        _synchronize(device)
        start = clock()
        for batch in batches:
            augment_batch(batch, device)
        _synchronize(device)
        return clock() - start
    finally:
        torch.set_num_threads(threads)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def format_speeds(synth: SynthSpeed, loaders: list[LoaderSpeed]) -> str:
    lines = [
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}",
        f"synthetic rendering {synth.width}x{synth.height}, 1 thread: "
        f"{synth.fps:.1f} frames/s ({synth.frames} frames in {synth.seconds:.2f} s)",
    ]
    image = f"{RSIDE_CROP_HW[0]}x{RSIDE_CROP_HW[1]}"
    for s in loaders:
        depth = f"{s.depth_size[0]}x{s.depth_size[1]}"
        per_cpu = "" if s.images_per_cpu_s is None else f"; {s.images_per_cpu_s:.1f} images per worker CPU-second"
        lines.append(
            f"DataLoader {s.data} train, RSIDE transforms (image {image}, depth {depth}), batch "
            f"{s.batch_size}, {s.workers} worker(s): {s.images_per_s:.1f} images/s "
            f"({s.images} images in {s.seconds:.2f} s{per_cpu})"
        )
        if s.device_seconds is not None:
            where = f"{s.device}, CPU time on one thread" if s.device == "cpu" else s.device
            lines.append(
                f"  the loader reads, decodes and scales the frames and draws their augmentation; applying it "
                f"per batch where the batch goes to the device ({where}, in the training process): "
                f"{s.device_ms_per_image:.2f} ms per image ({s.device_images} images, "
                f"{s.device_images / s.device_seconds:.0f} images/s)"
            )
    return "\n".join(lines)


def _loader_cpu_s(workers: int) -> float | None:
    """CPU seconds (user + system) so far of the processes that load: this process's children (the DataLoader
    workers, from /proc) or, with 0 workers, this process. None where /proc cannot be read."""
    if workers == 0:
        return time.process_time()
    me, total = str(os.getpid()), 0
    try:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:  # the process ended meanwhile
                    continue
                if fields[1] == me:  # ppid; utime and stime are fields 14 and 15 of stat
                    total += int(fields[11]) + int(fields[12])
    except OSError:
        return None
    return total / os.sysconf("SC_CLK_TCK")


def _forever(loader: DataLoader):
    while True:
        yield from loader
