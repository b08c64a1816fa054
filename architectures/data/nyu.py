"""NYU Depth v2 labeled set: ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5), read lazily with h5py.

h5py sees MATLAB's column-major arrays with their axes reversed:

- ``images`` (N,3,640,480) uint8  -> frame i as (3,H,W) = ``images[i].transpose(0, 2, 1)``
- ``depths`` (N,640,480) float32 metres (in-painted, capped at 10 m) -> (H,W) = ``depths[i].T``
- ``rawDepths`` the same shape, raw Kinect depth with 0 = missing (``depth_key="rawDepths"``; what the
  ``eigen`` protocol scores, as BTS/AdaBins)

The official 795/654 split (splits.mat) is embedded in the package; a file that carries its own split
(datasets ``trainNdxs`` / ``testNdxs``, 1-based, as the synthetic rooms do) uses that instead. The file is
opened on first access in each process, so the dataset works with DataLoader workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from torch.utils.data import Dataset

from .common import NYU_FRAMES, SPLITS, DataError, Sample, make_sample, official_split

__all__ = ["H5Layout", "NYUv2Labeled", "layout_identity", "read_layout"]

SPLIT_KEYS = {"train": "trainNdxs", "test": "testNdxs"}  # names used by the official splits.mat
SYNTHETIC_ATTR = "drnet_bench_source"  # root attribute the synthetic writer sets to "synthetic"
_MAT5_MAGIC = b"MATLAB 5.0 MAT-file"
_MAT73_MAGIC = b"MATLAB 7.3 MAT-file"


@dataclass(frozen=True)
class H5Layout:
    """What a labeled-layout HDF5 file holds (checked on open; frames are not read)."""

    path: Path
    kind: str  # "nyu-labeled" (MATLAB 7.3 header), "synthetic", or "hdf5" (the layout without either mark)
    frames: int
    height: int
    width: int
    depth_key: str
    splits: dict[str, list[int]] | None  # split embedded in the file (1-based), None -> the official one
    attrs: dict[str, Any] = field(default_factory=dict)
    depth_dtype: str = "float32"

    def split_indices(self, split: str) -> list[int]:
        """1-based frame numbers of ``split`` in this file, ascending."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        if split == "all":
            return list(range(1, self.frames + 1))
        if self.splits is not None:
            if not self.splits[split]:
                raise DataError(f"{self.path}: its embedded {split} split ({SPLIT_KEYS[split]}) is empty")
            return list(self.splits[split])
        if self.frames != NYU_FRAMES:
            raise DataError(
                f"{self.path}: has {self.frames} frames and no embedded split (trainNdxs/testNdxs); the "
                f"official split indexes {NYU_FRAMES} frames. Use split='all' or embed a split."
            )
        return official_split(split)


def read_layout(path: str | Path, depth_key: str = "depths") -> H5Layout:
    """Open ``path``, check it has the labeled .mat layout and describe it; DataError names any problem."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected an HDF5 file such as nyu_depth_v2_labeled.mat")
    with open(path, "rb") as f:
        head = f.read(128)
    if not h5py.is_hdf5(path):
        if head.startswith(_MAT5_MAGIC):
            raise DataError(
                f"{path}: is a MATLAB v5 MAT-file, not MATLAB v7.3 (HDF5). The labeled NYU set "
                f"nyu_depth_v2_labeled.mat is v7.3 (the official splits.mat is v5 and holds only the split)"
            )
        raise DataError(f"{path}: not an HDF5 / MATLAB v7.3 file (starts with {head[:20]!r})")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: cannot be opened as HDF5 ({e}); is it truncated?") from None
    with f:
        needs = ("images", depth_key)
        images, depths = _dataset(f, path, "images", needs), _dataset(f, path, depth_key, needs)
        n, height, width = _check_shapes(path, images, depths, depth_key)
        splits = _embedded_split(f, path, n)
        attrs = {k: _plain(v) for k, v in f.attrs.items()}
        depth_dtype = str(depths.dtype)
    kind = (
        "synthetic"
        if attrs.get(SYNTHETIC_ATTR) == "synthetic"
        else ("nyu-labeled" if head.startswith(_MAT73_MAGIC) else "hdf5")
    )
    return H5Layout(path, kind, n, height, width, depth_key, splits, attrs, depth_dtype)


def layout_identity(layout: H5Layout, split: str, frames: int) -> dict[str, Any]:
    """What a run records about the data: source, file, split, training-set variant, generator settings."""
    source = "synthetic" if layout.kind == "synthetic" else "nyu-labeled"
    if layout.splits is not None or layout.frames == NYU_FRAMES:
        variant = f"{source}-{len(layout.split_indices('train'))}"
    else:
        variant = f"{source}-all-{layout.frames}"  # no train split: the whole file
    identity: dict[str, Any] = {
        "source": source,
        "path": str(layout.path.resolve()),
        "split": split,
        "train_variant": variant,
        "frames": frames,
        "file_kind": layout.kind,
        "frame_hw": [layout.height, layout.width],
        "depth_key": layout.depth_key,
        "split_origin": "file" if layout.splits is not None else "official splits.mat (packaged)",
    }
    if layout.kind == "synthetic":
        identity["generator"] = {k: v for k, v in layout.attrs.items() if k != SYNTHETIC_ATTR}
    return identity


class NYUv2Labeled(Dataset):
    """Frames of the labeled NYU .mat (or any file in its layout) for one split.

    Items are samples (see ``architectures.data.common``) passed through ``transform``; ``frame`` is the
    official 1-based frame number. ``frame_indices`` lists them for the whole split, in order.
    depth_key: "depths" (in-painted: training targets and the rside protocol) or "rawDepths" (0 = missing:
    the eigen protocol, as BTS/AdaBins).
    """

    def __init__(
        self,
        path: str | Path,
        split: str = "train",
        transform: Callable[[Sample], Any] | None = None,
        depth_key: str = "depths",
    ):
        self.path = Path(path)
        self.split = split
        self.transform = transform
        self.layout = read_layout(self.path, depth_key)
        self.frame_indices: list[int] = self.layout.split_indices(split)
        self.identity: dict[str, Any] = layout_identity(self.layout, split, len(self.frame_indices))
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.frame_indices)

    def __getitem__(self, index: int) -> Any:
        frame = self.frame_indices[index]
        sample = self.read_frame(frame)
        return self.transform(sample) if self.transform is not None else sample

    def read_frame(self, frame: int) -> Sample:
        """Untransformed sample of 1-based ``frame``: image uint8 (3,H,W), depth (1,H,W) m, valid, frame."""
        f = self._h5()
        try:
            image = f["images"][frame - 1]  # (3, W, H)
            depth = f[self.layout.depth_key][frame - 1]  # (W, H)
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{self.path}: cannot read frame {frame} ({e})") from None
        return make_sample(image.transpose(0, 2, 1), depth.T, frame)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._pid = None, None

    def _h5(self) -> h5py.File:
        """This process's handle; reopened after a fork (h5py handles must not cross processes)."""
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, None
        return state

    def __del__(self) -> None:
        try:
            if self._file is not None and self._pid == os.getpid():
                self._file.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, split={self.split!r}, frames={len(self)})"


def _dataset(f: h5py.File, path: Path, key: str, needs: tuple[str, str]) -> h5py.Dataset:
    """Dataset ``key`` of ``f``; a DataError naming the layout's two datasets (``needs``) if it is absent."""
    obj = f.get(key)
    if not isinstance(obj, h5py.Dataset):
        have = ", ".join(sorted(k for k in f.keys() if not k.startswith("#")))
        what = "missing" if obj is None else "not a dataset"
        raise DataError(
            f"{path}: dataset {key!r} is {what}; the labeled .mat layout needs {needs[0]!r} and "
            f"{needs[1]!r} (file has: {have or 'nothing'})"
        )
    return obj


def _check_shapes(path: Path, images: h5py.Dataset, depths: h5py.Dataset, depth_key: str) -> tuple[int, int, int]:
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{path}: 'images' is {images.dtype} {images.shape}; expected uint8 (N, 3, W, H), "
            f"e.g. (1449, 3, 640, 480) as h5py shows the MATLAB 480x640x3xN array"
        )
    n, _, width, height = images.shape
    if depths.ndim != 3 or depths.shape != (n, width, height) or depths.dtype.kind != "f":
        raise DataError(
            f"{path}: {depth_key!r} is {depths.dtype} {depths.shape}; expected float (N, W, H) = "
            f"{(n, width, height)} in metres, matching 'images' {images.shape}"
        )
    if n == 0:
        raise DataError(f"{path}: holds no frames")
    return n, height, width


def _embedded_split(f: h5py.File, path: Path, n: int) -> dict[str, list[int]] | None:
    present = [k for k in SPLIT_KEYS.values() if k in f]
    if not present:
        return None
    if len(present) != 2:
        raise DataError(f"{path}: has {present[0]!r} but not both of {', '.join(SPLIT_KEYS.values())}")
    splits = {name: [int(v) for v in np.asarray(f[key]).ravel()] for name, key in SPLIT_KEYS.items()}
    for name, idx in splits.items():
        if idx and (min(idx) < 1 or max(idx) > n or len(set(idx)) != len(idx)):
            raise DataError(f"{path}: {SPLIT_KEYS[name]!r} must hold distinct 1-based frame numbers in 1..{n}")
        splits[name] = sorted(idx)
    if set(splits["train"]) & set(splits["test"]):
        raise DataError(f"{path}: trainNdxs and testNdxs share frames")
    return splits


def _plain(value: Any) -> Any:
    """HDF5 attribute -> JSON-friendly Python value."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
