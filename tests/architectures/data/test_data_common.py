"""architectures/data/common.py: the packaged official split, samples, the split-coverage check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from architectures.data import NYU_TEST_FRAMES, check_split_coverage, make_sample, official_split


def test_official_split_sizes_disjoint_and_covering():
    train, test = official_split("train"), official_split("test")
    assert (len(train), len(test)) == (795, 654)
    assert train == sorted(set(train)) and test == sorted(set(test))
    assert not set(train) & set(test)
    assert sorted(train + test) == list(range(1, 1450)) == official_split("all")


def test_official_split_starts_as_documented():
    # first indices as listed in shared/reference/nyu_data.md (from cleinc/bts utils/splits.mat)
    assert official_split("test")[:10] == [1, 2, 9, 14, 15, 16, 17, 18, 21, 28]
    assert official_split("train")[:10] == [3, 4, 5, 6, 7, 8, 10, 11, 12, 13]
    assert (min(official_split("train")), max(official_split("train"))) == (3, 1440)


def test_official_split_rejects_unknown():
    with pytest.raises(ValueError, match="unknown split 'val'"):
        official_split("val")


def test_make_sample_masks_nan_inf_and_nonpositive():
    image = np.zeros((3, 2, 3), np.uint8)
    depth = np.array([[1.0, np.nan, 0.0], [-1.0, np.inf, 2.5]], np.float32)
    s = make_sample(image, depth, 7)
    assert s["frame"] == 7 and s["depth"].shape == (1, 2, 3) and s["valid"].dtype == torch.bool
    assert s["valid"][0].tolist() == [[True, False, False], [False, False, True]]
    assert s["depth"][0].tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 2.5]]  # nothing invalid survives as a value


def test_make_sample_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="depth must be"):
        make_sample(np.zeros((3, 2, 3), np.uint8), np.zeros((3, 2), np.float32), 1)


def test_split_coverage_passes_exactly_once():
    check_split_coverage([1, 2, 9], [9, 1, 2])


@pytest.mark.parametrize(
    "seen, what", [([1, 2, 2, 9], "more than once"), ([1, 2], "missing"), ([1, 2, 9, 4], "not in")]
)
def test_split_coverage_catches_duplicates_missing_and_extra(seen, what):
    with pytest.raises(AssertionError, match=what):
        check_split_coverage([1, 2, 9], seen)


def test_distributed_padding_of_the_654_test_frames_is_caught():
    test = official_split("test")
    # 654 is not a multiple of 4: DistributedSampler pads by repeating frames (as torch's references warn)
    samplers = [DistributedSampler(test, num_replicas=4, rank=rank, shuffle=False) for rank in range(4)]
    seen = [test[i] for sampler in samplers for i in sampler]
    assert len(seen) == 656 and len(set(seen)) == NYU_TEST_FRAMES
    with pytest.raises(AssertionError, match="2 seen more than once"):
        check_split_coverage(test, seen)
