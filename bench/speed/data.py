"""Data throughput: synthetic frames/s on one core, DataLoader images/s with RSIDE's training transforms.

``bench data bench`` prints both, so one can check that the loader will not starve a GPU. Timings are wall
clock (``time.perf_counter``); the loader is timed after warm-up batches, so worker start-up is excluded.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from architectures.data.sources import build_dataset, parse_data_spec
from architectures.data.synthetic import render_frame
from architectures.data.transforms import RSIDE_CROP_HW, RSIDE_DEPTH_HW
from bench.provenance import cpu_model

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
    """Iterate the train split with RSIDE's random transforms through a DataLoader; images/s after warm-up."""
    source, path = parse_data_spec(data)
    dataset = build_dataset(source, path, "train", train=True, depth_size=depth_size)
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
        start = time.perf_counter()
        for _ in range(batches):
            next(batch_iter)  # drop_last=True: every batch holds batch_size images
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    images = batches * batch_size
    return LoaderSpeed(data, workers, batch_size, batches, images, seconds, images / seconds, tuple(depth_size))


def format_speeds(synth: SynthSpeed, loaders: list[LoaderSpeed]) -> str:
    lines = [
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}",
        f"synthetic rendering {synth.width}x{synth.height}, 1 thread: "
        f"{synth.fps:.1f} frames/s ({synth.frames} frames in {synth.seconds:.2f} s)",
    ]
    image = f"{RSIDE_CROP_HW[0]}x{RSIDE_CROP_HW[1]}"
    for s in loaders:
        depth = f"{s.depth_size[0]}x{s.depth_size[1]}"
        lines.append(
            f"DataLoader {s.data} train, RSIDE transforms (image {image}, depth {depth}), batch "
            f"{s.batch_size}, {s.workers} worker(s): {s.images_per_s:.1f} images/s "
            f"({s.images} images in {s.seconds:.2f} s)"
        )
    return "\n".join(lines)


def _forever(loader: DataLoader):
    while True:
        yield from loader
