"""What every data source shares: the sample dict, the error type, the validity mask, the official split,
and atomic file writes (``atomic_path``, from ``architectures.files``).

A *sample* is a dict:

- ``image``  uint8 (3,H,W) RGB as read (a transform turns it into float32, ImageNet-normalised),
- ``depth``  float32 (1,H,W) metres; pixels that are not a usable measurement hold 0, never NaN,
- ``valid``  bool (1,H,W): True where the ground truth is finite and > 0,
- ``frame``  int: the frame's number in its source (official 1-based index for NYU).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import torch

from ..files import atomic_path

__all__ = [
    "MAX_DEPTH_M",
    "NYU_FRAMES",
    "NYU_TEST_FRAMES",
    "NYU_TRAIN_FRAMES",
    "SPLITS",
    "DataError",
    "Sample",
    "atomic_path",
    "check_split_coverage",
    "make_sample",
    "official_split",
    "valid_depth",
]

Sample = dict[str, Any]

MAX_DEPTH_M = 10.0  # NYU depths are capped at 10 m (toolbox depth_rel2depth_abs)
NYU_FRAMES = 1449  # frames in nyu_depth_v2_labeled.mat
NYU_TRAIN_FRAMES = 795  # official splits.mat trainNdxs
NYU_TEST_FRAMES = 654  # official splits.mat testNdxs
SPLITS = ("train", "test", "all")

# md5 of the split files as recorded in shared/reference/nyu_data.md (taken from cleinc/bts utils/splits.mat)
_SPLIT_FILES = {
    "train": ("nyu_train_indices_1based.txt", "d1a7b5023003d1ea33f0d3568bc84feb"),
    "test": ("nyu_test_indices_1based.txt", "f9c62808c2ceb7d359bebb51d5969b38"),
}


class DataError(ValueError):
    """Bad data input. The message names the file and says what was wrong and what was expected."""


@cache
def _official_split(split: str) -> tuple[int, ...]:
    name, md5 = _SPLIT_FILES[split]
    data = resources.files("architectures.data").joinpath("splits", name).read_bytes()
    if hashlib.md5(data).hexdigest() != md5:
        raise DataError(f"architectures/data/splits/{name}: checksum differs from the official split ({md5})")
    return tuple(int(line) for line in data.decode().split())


def official_split(split: str) -> list[int]:
    """The official NYU Depth v2 split (splits.mat): 1-based frame numbers, ascending.

    "train" -> 795 frames, "test" -> 654, "all" -> 1..1449.
    """
    if split == "all":
        return list(range(1, NYU_FRAMES + 1))
    if split not in _SPLIT_FILES:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return list(_official_split(split))


def valid_depth(depth: torch.Tensor) -> torch.Tensor:
    """True where a ground-truth depth is a usable measurement: finite and > 0 (NYU marks holes with 0)."""
    return torch.isfinite(depth) & (depth > 0)


def make_sample(image: np.ndarray | torch.Tensor, depth: np.ndarray | torch.Tensor, frame: int) -> Sample:
    """Build a sample from an RGB image (3,H,W) uint8 and a depth map (H,W) in metres.

    Invalid depth pixels (NaN, inf, <= 0) are marked in ``valid`` and zeroed, so they can never leak into a
    loss or metric through arithmetic.
    """
    image = torch.as_tensor(np.ascontiguousarray(image))
    depth = torch.as_tensor(np.ascontiguousarray(depth), dtype=torch.float32)
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be uint8 (3,H,W), got {image.dtype} {tuple(image.shape)}")
    if depth.ndim != 2 or tuple(depth.shape) != tuple(image.shape[1:]):
        raise ValueError(f"depth must be (H,W) = {tuple(image.shape[1:])}, got {tuple(depth.shape)}")
    depth = depth.unsqueeze(0)
    valid = valid_depth(depth)
    depth = torch.where(valid, depth, torch.zeros((), dtype=depth.dtype))
    return {"image": image, "depth": depth, "valid": valid, "frame": int(frame)}


def check_split_coverage(expected: Sequence[int], seen: Iterable[int], what: str = "evaluation") -> None:
    """Raise AssertionError unless ``seen`` holds every frame of ``expected`` exactly once.

    A distributed sampler pads the last batch by repeating frames, which would silently count some of
    NYU's 654 test frames twice; this is the check that catches it.
    """
    seen = [int(f) for f in seen]
    counts = Counter(seen)
    twice = sorted(f for f, c in counts.items() if c > 1)
    missing = sorted(set(expected) - set(counts))
    extra = sorted(set(counts) - set(expected))
    if twice or missing or extra or len(seen) != len(expected):
        raise AssertionError(
            f"{what} saw {len(seen)} frames ({len(counts)} distinct), expected exactly {len(expected)} "
            f"distinct: "
            f"{len(twice)} seen more than once {twice[:10]}, {len(missing)} missing {missing[:10]}, "
            f"{len(extra)} not in the split {extra[:10]}"
        )
