"""architectures/data/protocols.py: the registered evaluation presets and their knobs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from architectures.data import EIGEN_CROP, PROTOCOLS, Protocol, get_protocol, register_protocol


def test_rside_protocol_is_the_official_test_code():
    p = get_protocol("rside")
    assert (p.resize_rows, p.crop_hw, p.upsample_align_corners) == (240, (228, 304), True)
    assert (p.eval_crop, p.min_depth_m, p.max_depth_m, p.clamp_prediction) == (None, None, None, False)
    assert p.reduction == "rside" and "test.py" in p.origin


def test_eigen_protocol_is_the_bts_adabins_one():
    p = get_protocol("eigen")
    assert (p.resize_rows, p.crop_hw, p.gt_resolution) == (240, None, "frame")  # training scale, whole frame
    assert p.ground_truth == "rawDepths" and get_protocol("rside").ground_truth == "depths"
    assert p.eval_crop == EIGEN_CROP == (45, 471, 41, 601)
    assert (p.min_depth_m, p.max_depth_m, p.clamp_prediction, p.reduction) == (1e-3, 10.0, True, "per_image")


def test_every_knob_is_written_as_plain_json():
    for p in PROTOCOLS.values():
        d = p.as_dict()
        assert set(d) == {f.name for f in dataclasses.fields(Protocol)}
        assert json.loads(json.dumps(d)) == d
    assert get_protocol("eigen").as_dict()["eval_crop"] == [45, 471, 41, 601]


def test_protocols_are_frozen_and_names_unique():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_protocol("rside").max_depth_m = 10.0
    with pytest.raises(ValueError, match="already registered"):
        register_protocol(get_protocol("rside"))


def test_unknown_protocol_lists_the_available_ones():
    available = "available: eigen, eigen-flip, rside, rside-flip"
    with pytest.raises(KeyError, match=f"unknown evaluation protocol 'dorn'; {available}"):
        get_protocol("dorn")
    assert get_protocol(get_protocol("eigen")) is get_protocol("eigen")
