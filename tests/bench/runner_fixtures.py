"""Helpers for the runner tests: tiny datasets that follow the data contract, and a tiny config.

``TinyDepthSet`` items are what ``architectures.data.build_dataset`` yields (image (3,H,W) normalised,
depth (1,h,w) metres, valid (1,h,w) bool, frame int), drawn from a per-frame generator so they are fixed;
training items add a random flip and brightness from torch's global RNG, as the real transforms do, so
seeding and resume are exercised for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from bench.config import RunConfig

RSIDE_LIKE_PROTOCOL = SimpleNamespace(
    name="tiny-rside",
    origin="test fixture",
    resize_rows=None,
    crop_hw=None,
    upsample_align_corners=True,
    eval_crop=None,
    min_depth_m=None,
    max_depth_m=None,
    clamp_prediction=False,
    reduction="rside",
)
RSIDE_LIKE_PROTOCOL.as_dict = lambda: {k: v for k, v in vars(RSIDE_LIKE_PROTOCOL).items() if k != "as_dict"}


class TinyDepthSet(Dataset):
    """``n`` frames of smooth random rooms; frame numbers ``frames`` (1-based, like NYU's)."""

    def __init__(
        self,
        frames: list[int],
        hw: tuple[int, int] = (64, 80),
        depth_size: tuple[int, int] | None = None,
        train: bool = False,
        source: str = "tiny",
        split: str = "test",
    ):
        self.frame_indices = list(frames)
        self.hw, self.depth_size, self.train = hw, depth_size or hw, train
        self.identity: dict[str, Any] = {
            "source": source,
            "path": None,
            "split": split,
            "train_variant": f"tiny-{len(frames)}",
            "frames": len(frames),
        }

    def __len__(self) -> int:
        return len(self.frame_indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        frame = self.frame_indices[index]
        g = torch.Generator().manual_seed(1000 + frame)
        h, w = self.hw
        depth = 1.0 + 4.0 * torch.rand(1, 1, 4, 5, generator=g)
        depth = torch.nn.functional.interpolate(depth, size=(h, w), mode="bilinear", align_corners=False)[0]
        image = (depth / 5.0).expand(3, h, w) + 0.1 * torch.rand(3, h, w, generator=g)
        if self.train:  # augmentation from the global RNG, as the real transforms
            if torch.rand(()) < 0.5:
                image, depth = image.flip(-1), depth.flip(-1)
            image = image * (0.8 + 0.4 * torch.rand(()))
        if tuple(self.depth_size) != (h, w):
            depth = torch.nn.functional.interpolate(depth[None], size=tuple(self.depth_size), mode="nearest")[0]
        valid = depth > 0
        valid[..., :1, :] = False  # an invalid row, as real data has
        return {"image": (image - 0.45) / 0.225, "depth": depth.float(), "valid": valid, "frame": frame}


class TinyNet(nn.Module):
    """Two convs at full resolution (output_stride 1), positive-ish depth: a training step takes milliseconds."""

    output_stride = 1

    def __init__(self, width: int = 8):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1)
        )

    def forward(self, x: torch.Tensor, levels: bool = False):
        out = 2.0 + self.body(x)
        return [out] if levels else out


def register_tiny_model() -> str:
    """Register ``tiny-test`` (backbone ``none``, option ``width``) in the model registry, once per process."""
    from architectures.registry import available_models, register_model

    if "tiny-test" not in available_models():

        @register_model("tiny-test", backbones=("none",))
        def tiny_test(backbone: str, weights: str | None = None, width: int = 8) -> nn.Module:
            return TinyNet(width)

    return "tiny-test"


def tiny_config(**changes: Any) -> RunConfig:
    """The registered tiny-test network on 64x80 inputs, a few steps: well under a second of compute."""
    base = dict(
        suite="test",
        name="tiny",
        arch=register_tiny_model(),
        backbone="none",
        data="synthetic",
        device="cpu",
        input_size=(64, 80),
        epochs=2,
        batch_size=2,
        eval_batch_size=4,
        lr=1e-3,
        lr_schedule="step",
        lr_step_epochs=1,
        lr_gamma=0.5,
        checkpoint_every_steps=2,
        log_every_steps=1,
        seed=0,
    )
    base.update(changes)
    return RunConfig(**base)


REPO = Path(__file__).resolve().parents[2]


def process_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process a test starts: ``base`` (os.environ by default) with torch on one CPU thread
    (as the runs it is compared with), this checkout importable, and output unbuffered."""
    return {**(base or os.environ), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def bench_process(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m bench ARGS`` as a process of its own in this checkout, in ``env`` (``process_env()`` by
    default), its output captured; ten minutes at most."""
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        env=env or process_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def tiny_rside_suite(tmp_path, epochs: int = 3, **extra: Any):
    """Suite ``k`` with run ``r`` (run id k-r-s0): RSIDE-ResNet-18 on 48x64 inputs, 8 synthetic training frames,
    ``epochs`` epochs of 4 steps, checkpoints every 2 steps. The real network through real processes."""
    import json

    from architectures.data import ensure_synthetic

    rooms = ensure_synthetic(tmp_path / "rooms.h5", frames=16, seed=0)
    defaults = {
        "data": "synthetic",
        "data_path": str(rooms),
        "arch": "rside",
        "backbone": "resnet18",
        "device": "cpu",
        "input_size": [48, 64],
        "train_frames": 8,
        "eval_frames": 4,
        "epochs": epochs,
        "batch_size": 2,
        "eval_batch_size": 4,
        "lr_schedule": "step",
        "lr_step_epochs": 1,
        "lr": 1e-3,
        "checkpoint_every_steps": 2,
        "log_every_steps": 1,
        "seed": 0,
        **extra,
    }
    path = tmp_path / "k.toml"
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in defaults.items())
    path.write_text(f'[defaults]\n{body}\n[[runs]]\nname = "r"\n')
    return path
