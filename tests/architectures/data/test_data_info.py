"""architectures/data/info.py: describing and validating data files."""

from __future__ import annotations

import numpy as np
import pytest

from architectures.data import DataError, write_synthetic
from architectures.data.info import describe, format_info


def test_synthetic_file(tmp_path):
    path = write_synthetic(tmp_path / "s.h5", frames=5, seed=0, height=24, width=32)
    (info,) = describe(path)
    assert info.ok and info.source == "synthetic" and info.frames == 5 and info.frame_hw == (24, 32)
    assert info.splits == {"all": 5, "train": 4, "test": 1} and info.scanned == 5
    assert 0.5 < info.depth_min_m < info.depth_max_m < 10.0
    text = format_info(info)
    assert "status   OK" in text and "train 4, test 1" in text


def test_invalid_pixels_are_counted(tmp_path, write_labeled, tiny_frames):
    images, depths = tiny_frames
    depths = depths.copy()
    depths[0, 0, 0], depths[1, 0, 0], depths[1, 0, 1] = np.nan, 0.0, -1.0
    (info,) = describe(write_labeled(tmp_path / "x.mat", images, depths))
    assert (info.nonfinite_px, info.nonpositive_px, info.pixels) == (1, 2, 3 * 48)
    assert info.ok and info.kind == "MATLAB 7.3 labeled .mat" and info.splits == {"all": 3}
    assert "3 pixels (2.08%), masked: 1 NaN/inf, 2 <= 0" in format_info(info)


def test_problems_are_reported(tmp_path, write_labeled, tiny_frames):
    images, depths = tiny_frames
    depths = depths.copy()
    depths[0] = 0.0
    depths[2, 1, 1] = 12.0
    (info,) = describe(write_labeled(tmp_path / "x.mat", images, depths))
    assert not info.ok
    assert info.problems == [
        "1 scanned frame(s) without any valid depth pixel: frame 1",
        "1 scanned frame(s) with depth above NYU's 10 m cap: frame 3",
    ]
    assert "status   2 problem(s)" in format_info(info)


def test_large_files_are_sampled(full_index_mat):
    (info,) = describe(full_index_mat, max_frames=10)
    assert info.scanned == 10 and info.splits == {"all": 1449, "train": 795, "test": 654}
    assert "official split" in info.split_origin and not info.ok  # unwritten frames hold no depth


def test_rside_root_gives_one_summary_per_csv(rside_root):
    root, values = rside_root
    train, test = describe(root)
    assert (train.source, train.splits, test.splits) == ("rside-csv", {"train": 3}, {"test": 3})
    assert train.nonpositive_px == sum(int((v == 0).sum()) for v in values["train"])
    assert test.nonpositive_px == sum(int((v == 0).sum()) for v in values["test"])
    assert train.depth_max_m <= 10.0 and test.frame_hw == (12, 16)
    assert test.problems == [
        "test frames are not the official 654 (names NNNNN_colors.png with NNNNN = official index - 1)"
    ]


def test_bad_files_raise(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        describe(tmp_path / "missing.mat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="without data/nyu2_train.csv or data/nyu2_test.csv"):
        describe(tmp_path / "empty")
