"""What a data file holds, and whether it is usable: the library side of ``bench data info``.

The layout is checked in full (a bad one raises DataError naming the file and what was wrong); depth
statistics come from every frame, or from ``max_frames`` evenly spaced frames of a large file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .common import MAX_DEPTH_M, NYU_FRAMES, DataError
from .nyu import NYUv2Labeled
from .rside_csv import DEPTH_ENCODINGS, RSIDECSV, decode_depth_png, find_csv

__all__ = ["DataInfo", "describe", "format_info"]

DEFAULT_SCAN_FRAMES = 200  # frames whose depth is scanned when a file holds more
_DEPTH_TOLERANCE_M = 1e-3  # a depth above MAX_DEPTH_M + this is reported


@dataclass
class DataInfo:
    """Summary of one data file (an HDF5 file in the labeled layout, or one RSIDE CSV)."""

    path: str
    source: str  # nyu-labeled | synthetic | rside-csv
    kind: str  # what the file looks like (MATLAB 7.3 labeled .mat, synthetic rooms, plain HDF5, CSV)
    layout: str  # datasets and shapes, or CSV rows and encodings
    frames: int
    frame_hw: tuple[int, int] | None
    splits: dict[str, int]
    split_origin: str
    scanned: int = 0  # frames whose depth was read
    depth_min_m: float = math.nan
    depth_max_m: float = math.nan
    pixels: int = 0
    nonfinite_px: int = 0  # NaN / inf ground truth (masked)
    nonpositive_px: int = 0  # 0 or negative ground truth (masked)
    problems: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # frames without a single valid depth pixel
    above_cap: list[str] = field(default_factory=list)  # frames with depth above MAX_DEPTH_M
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def describe(
    path: str | Path, max_frames: int = DEFAULT_SCAN_FRAMES, progress: Callable[[int, int], None] | None = None
) -> list[DataInfo]:
    """One DataInfo per file: an HDF5 .mat/.h5 file, an RSIDE CSV, or an RSIDE root (both CSVs)."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() == ".csv":
        return _describe_rside(path, max_frames, progress)
    return [_describe_h5(path, max_frames, progress)]


def format_info(info: DataInfo) -> str:
    """Aligned "key  value" lines for the terminal."""
    size = Path(info.path).stat().st_size / 1e6 if Path(info.path).exists() else math.nan
    hw = f" of {info.frame_hw[0]}x{info.frame_hw[1]}" if info.frame_hw else ""
    splits = ", ".join(f"{k} {v}" for k, v in info.splits.items())
    bad = info.nonfinite_px + info.nonpositive_px
    share = 100.0 * bad / info.pixels if info.pixels else math.nan
    lines = [
        ("file", f"{info.path} ({size:.1f} MB)"),
        ("source", f"{info.source} ({info.kind})"),
        ("layout", info.layout),
        ("frames", f"{info.frames}{hw}; {splits} ({info.split_origin})"),
        (
            "depth",
            f"{info.depth_min_m:.3f} .. {info.depth_max_m:.3f} m over valid pixels of {info.scanned} "
            f"of {info.frames} frames",
        ),
        ("invalid", f"{bad} pixels ({share:.2f}%), masked: {info.nonfinite_px} NaN/inf, {info.nonpositive_px} <= 0"),
    ]
    lines += [("problem", p) for p in info.problems]
    lines.append(("status", "OK" if info.ok else f"{len(info.problems)} problem(s)"))
    return "\n".join(f"{k:<9}{v}" for k, v in lines)


def _describe_h5(path: Path, max_frames: int, progress: Callable[[int, int], None] | None) -> DataInfo:
    ds = NYUv2Labeled(path, split="all")
    layout = ds.layout
    try:
        with_split = {s: len(layout.split_indices(s)) for s in ("train", "test")}
        origin = "split embedded in the file" if layout.splits is not None else "official split, packaged"
    except DataError:
        with_split, origin = {}, f"no split: not {NYU_FRAMES} frames and none embedded"
    kind = {
        "nyu-labeled": "MATLAB 7.3 labeled .mat",
        "synthetic": "synthetic rooms",
        "hdf5": "HDF5 in the labeled .mat layout",
    }[layout.kind]
    if layout.kind == "synthetic":
        kind += f", generator v{layout.attrs.get('generator_version')}, seed {layout.attrs.get('seed')}"
    info = DataInfo(
        path=str(path),
        source="synthetic" if layout.kind == "synthetic" else "nyu-labeled",
        kind=kind,
        layout=(
            f"images ({layout.frames}, 3, {layout.width}, {layout.height}) uint8, {layout.depth_key} "
            f"({layout.frames}, {layout.width}, {layout.height}) {layout.depth_dtype}"
        ),
        frames=layout.frames,
        frame_hw=(layout.height, layout.width),
        splits={"all": layout.frames, **with_split},
        split_origin=origin,
        attrs=layout.attrs,
    )
    frames = _scan_positions(layout.frames, max_frames)
    with h5py.File(path, "r") as f:  # raw values, before masking, to count what is invalid
        depths = f[layout.depth_key]
        for n, index in enumerate(frames, start=1):
            _accumulate(info, np.asarray(depths[index]).T, f"frame {index + 1}")
            if progress is not None:
                progress(n, len(frames))
    _summarise(info)
    floor_m = layout.attrs.get("min_depth_m", 0.0) if layout.kind == "synthetic" else 0.0
    if info.scanned and info.depth_min_m < floor_m:
        info.problems.append(f"depth {info.depth_min_m:.3f} m below the generator's minimum {floor_m} m")
    return info


def _describe_rside(path: Path, max_frames: int, progress: Callable[[int, int], None] | None) -> list[DataInfo]:
    if path.is_dir():
        csvs = []
        for split in ("train", "test"):
            try:
                csvs.append((find_csv(path, split), split))
            except DataError:
                pass
        if not csvs:
            raise DataError(f"{path}: is a directory without data/nyu2_train.csv or data/nyu2_test.csv")
    else:
        csvs = [(path, None)]
    infos = []
    for csv_path, split in csvs:
        ds = RSIDECSV(csv_path, split=split)
        info = DataInfo(
            path=str(csv_path),
            source="rside-csv",
            kind=f"RSIDE {ds.split} CSV, root {ds.root}",
            layout=f"{len(ds)} rows of image path, depth path; depth {DEPTH_ENCODINGS[ds.split][0]}",
            frames=len(ds),
            frame_hw=None,
            splits={ds.split: len(ds)},
            split_origin=f"train variant {ds.identity['train_variant']}",
        )
        positions = _scan_positions(len(ds), max_frames)
        for n, index in enumerate(positions, start=1):
            depth = decode_depth_png(ds.rows[index][1], ds.split)
            info.frame_hw = info.frame_hw or tuple(depth.shape)
            _accumulate(info, depth, f"row {index + 1} ({ds.rows[index][1].name})")
            if progress is not None:
                progress(n, len(positions))
        _summarise(info)
        if ds.split == "test" and not ds.identity.get("official_test_frames"):
            info.problems.append(
                "test frames are not the official 654 (names NNNNN_colors.png with NNNNN = official index - 1)"
            )
        infos.append(info)
    return infos


def _scan_positions(n: int, max_frames: int) -> list[int]:
    if n <= max_frames:
        return list(range(n))
    return sorted({round(i * (n - 1) / (max_frames - 1)) for i in range(max_frames)})


def _accumulate(info: DataInfo, depth: np.ndarray, where: str) -> None:
    finite = np.isfinite(depth)
    valid = finite & (depth > 0)
    info.scanned += 1
    info.pixels += depth.size
    info.nonfinite_px += int((~finite).sum())
    info.nonpositive_px += int((finite & (depth <= 0)).sum())
    if not valid.any():
        info.empty.append(where)
        return
    lo, hi = float(depth[valid].min()), float(depth[valid].max())
    info.depth_min_m = lo if math.isnan(info.depth_min_m) else min(info.depth_min_m, lo)
    info.depth_max_m = hi if math.isnan(info.depth_max_m) else max(info.depth_max_m, hi)
    if hi > MAX_DEPTH_M + _DEPTH_TOLERANCE_M:
        info.above_cap.append(where)


def _summarise(info: DataInfo) -> None:
    for frames, what in (
        (info.empty, "without any valid depth pixel"),
        (info.above_cap, f"with depth above NYU's {MAX_DEPTH_M:g} m cap"),
    ):
        if frames:
            more = ", ..." if len(frames) > 5 else ""
            info.problems.append(f"{len(frames)} scanned frame(s) {what}: {', '.join(frames[:5])}{more}")
