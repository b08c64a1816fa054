"""Data throughput: synthetic frames/s on one core, DataLoader images/s with RSIDE's training transforms.

``bench data bench`` prints both, so one can check that the loader will not starve a GPU. Timings are wall
clock (``time.perf_counter``); the loader is timed after warm-up batches, so worker start-up is excluded.
The training set is read as the trainer reads it: wrapped in ``SeededItems`` (each item seeds its own
augmentation), shuffled, batches collated by worker processes. Beside images/s the loader line gives images
per CPU-second of the worker processes (Linux ``/proc``; the main process with 0 workers): on a machine shared
with other jobs, wall-clock images/s falls with the load, CPU-seconds much less, so that figure is the fairer
one to compare between runs there (docs/loader-speed.md).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from architectures.data.sources import build_dataset, parse_data_spec
from architectures.data.synthetic import render_frame
from architectures.data.transforms import RSIDE_CROP_HW, RSIDE_DEPTH_HW
from bench.provenance import cpu_model
from bench.train import SeededItems

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
) -> LoaderSpeed:
    """Iterate the train split with RSIDE's random transforms through a DataLoader, as the trainer does
    (``SeededItems``); images/s and images per worker CPU-second after warm-up."""
    source, path = parse_data_spec(data)
    dataset = SeededItems(build_dataset(source, path, "train", train=True, depth_size=depth_size), seed)
    torch.manual_seed(seed)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
    )
    threads = torch.get_num_threads()
    if workers == 0:
        torch.set_num_threads(1)  # one core, like one worker
    try:
        batch_iter = _forever(loader)
        for _ in range(warmup):
            next(batch_iter)
        cpu_start, start = _loader_cpu_s(workers), time.perf_counter()
        for _ in range(batches):
            next(batch_iter)  # drop_last=True: every batch holds batch_size images
        seconds, cpu_end = time.perf_counter() - start, _loader_cpu_s(workers)
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
    )


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
