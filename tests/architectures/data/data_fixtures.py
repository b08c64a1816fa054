"""Writers of fixtures in the exact layouts of the real files (the tests create every file themselves).

- ``write_labeled_file``: HDF5 like ``nyu_depth_v2_labeled.mat`` as h5py sees MATLAB v7.3: a 512-byte user
  block with the MATLAB header text, ``images`` (N,3,W,H) uint8 and ``depths`` (N,W,H) float32 metres, i.e.
  the MATLAB arrays H x W x 3 x N and H x W x N with their axes reversed.
- ``write_full_index_mat``: 1449 frames at the real 640x480 (``depths`` and ``rawDepths``), chunked + gzip,
  mostly never written (reads as 0), with marker depths in a few frames; small on disk and fast.
- ``make_rside_root``: RSIDE's data/ layout with nyu2_train.csv (JPEG + 8-bit PNG, v/255*10 m) and
  nyu2_test.csv (PNG + 16-bit PNG in mm).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from PIL import Image

MAT73_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
NYU_H, NYU_W, NYU_N = 480, 640, 1449
MARKED_FRAMES = (1, 2, 3, 9, 1440, 1449)  # 1-based frames that get a marker depth in the full-index fixture


def write_matlab_header(path: Path) -> None:
    """MATLAB v7.3's 128-byte header (text, subsystem offset, version 0x0200, endian "IM"), user block."""
    with open(path, "r+b") as f:
        f.write(MAT73_HEADER.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")


def write_full_index_mat(path: Path) -> Path:
    """1449 frames of 640x480 in the real layout; only MARKED_FRAMES hold data (a constant marker depth)."""
    with h5py.File(path, "w", userblock_size=512) as f:
        opts = {"compression": "gzip", "compression_opts": 1}
        images = f.create_dataset("images", (NYU_N, 3, NYU_W, NYU_H), np.uint8, chunks=(1, 3, NYU_W, NYU_H), **opts)
        depths = f.create_dataset("depths", (NYU_N, NYU_W, NYU_H), np.float32, chunks=(1, NYU_W, NYU_H), **opts)
        raw = f.create_dataset("rawDepths", (NYU_N, NYU_W, NYU_H), np.float32, chunks=(1, NYU_W, NYU_H), **opts)
        for frame in MARKED_FRAMES:
            images[frame - 1] = np.full((3, NYU_W, NYU_H), frame % 256, np.uint8)
            depths[frame - 1] = np.full((NYU_W, NYU_H), marker_depth_m(frame), np.float32)
            raw[frame - 1] = depths[frame - 1]
    write_matlab_header(path)
    return path


def marker_depth_m(frame: int) -> float:
    """The constant depth written into marked frame ``frame`` of the full-index fixture."""
    return 0.5 + frame / 1000.0


def write_labeled_file(
    path: Path,
    images_hwc: np.ndarray,
    depths_hw: np.ndarray,
    depth_key: str = "depths",
    matlab_header: bool = True,
    **extra: np.ndarray,
) -> Path:
    """Write frames given in the natural (N,H,W,3) / (N,H,W) order the way MATLAB v7.3 stores them."""
    with h5py.File(path, "w", userblock_size=512 if matlab_header else 0) as f:
        images = f.create_dataset("images", data=images_hwc.transpose(0, 3, 2, 1))  # (N,3,W,H)
        images.attrs["MATLAB_class"] = np.bytes_("uint8")
        depths = f.create_dataset(depth_key, data=depths_hw.astype(np.float32).transpose(0, 2, 1))  # (N,W,H)
        depths.attrs["MATLAB_class"] = np.bytes_("single")
        for key, value in extra.items():
            f.create_dataset(key, data=value)
    if matlab_header:
        write_matlab_header(path)
    return path


def smooth_rgb(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth random-ish RGB image (compresses well, survives JPEG nearly unchanged)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    phase = rng.uniform(0, 6.28, size=3)
    rgb = [127 + 100 * np.sin(x / (7 + 3 * c) + y / (11 + c) + phase[c]) for c in range(3)]
    return np.stack(rgb, axis=-1).astype(np.uint8)


def make_rside_root(
    root: Path, h: int = 12, w: int = 16, train_rows: int = 3, test_names: tuple[int, ...] = (0, 1, 8)
) -> dict[str, list]:
    """RSIDE's layout under ``root``; returns the encoded depth values per split (row order) for checking."""
    rng = np.random.default_rng(1)
    data = root / "data"
    values: dict[str, list] = {"train": [], "test": []}
    train_lines = []
    for k in range(train_rows):
        scene = data / "nyu2_train" / f"living_room_{k:04d}_out"
        scene.mkdir(parents=True, exist_ok=True)
        Image.fromarray(smooth_rgb(h, w, k)).save(scene / f"{k}.jpg", quality=95)
        v = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
        v[0, 0] = 0  # a hole
        Image.fromarray(v).save(scene / f"{k}.png")
        values["train"].append(v)
        rel = f"data/nyu2_train/living_room_{k:04d}_out/{k}"
        train_lines.append(f"{rel}.jpg,{rel}.png")
    test = data / "nyu2_test"
    test.mkdir(parents=True, exist_ok=True)
    test_lines = []
    for n in test_names:
        Image.fromarray(smooth_rgb(h, w, 100 + n)).save(test / f"{n:05d}_colors.png")
        v = rng.integers(700, 10000, size=(h, w), dtype=np.uint16)
        v[-1, -1] = 0
        Image.fromarray(v).save(test / f"{n:05d}_depth.png")
        values["test"].append(v)
        test_lines.append(f"data/nyu2_test/{n:05d}_colors.png,data/nyu2_test/{n:05d}_depth.png")
    (data / "nyu2_train.csv").write_text("\n".join(train_lines) + "\n")
    (data / "nyu2_test.csv").write_text("\n".join(test_lines) + "\n")
    return values


def write_mat_v5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """A MATLAB v5 MAT-file (uncompressed double matrices), the format of the official splits.mat.

    Written by hand so the tests need no scipy (not a dependency of the project); layout per MathWorks'
    "MAT-File Format" (128-byte header, then one miMATRIX element per variable).
    """
    header = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Wed Jun  6 14:22:01 2012".ljust(116)
    out = [header + b"\x00" * 8 + np.uint16(0x0100).tobytes() + b"IM"]
    for name, value in arrays.items():
        value = np.atleast_2d(np.asarray(value, dtype=np.float64))
        parts = [
            _mat_element(6, np.array([6, 0], np.uint32).tobytes()),  # array flags: mxDOUBLE_CLASS
            _mat_element(5, np.array(value.shape, np.int32).tobytes()),  # dimensions
            _mat_element(1, name.encode("ascii")),  # array name
            _mat_element(9, value.tobytes(order="F")),  # real part, column-major
        ]
        out.append(_mat_element(14, b"".join(parts)))  # miMATRIX
    path.write_bytes(b"".join(out))
    return path


def _mat_element(data_type: int, data: bytes) -> bytes:
    pad = (-len(data)) % 8
    return np.array([data_type, len(data)], np.uint32).tobytes() + data + b"\x00" * pad
