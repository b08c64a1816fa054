"""architectures/data/sources.py: build_dataset / parse_data_spec over every source."""

from __future__ import annotations

import pytest
import torch
from data_fixtures import make_rside_root

from architectures.data import DATA_SOURCES, DataError, build_dataset, parse_data_spec, write_synthetic
from architectures.data import synthetic as synth


def test_parse_data_spec():
    assert parse_data_spec("nyu-labeled:/x/labeled.mat") == ("nyu-labeled", "/x/labeled.mat")
    assert parse_data_spec("synthetic") == ("synthetic", None)
    assert parse_data_spec("rside-csv:data/") == ("rside-csv", "data/")
    with pytest.raises(ValueError, match="unknown data source 'kitti'.*nyu-labeled, rside-csv, synthetic"):
        parse_data_spec("kitti:/x")
    with pytest.raises(ValueError, match="needs a path"):
        parse_data_spec("nyu-labeled")
    assert DATA_SOURCES == ("nyu-labeled", "rside-csv", "synthetic")


def _check_item(item: dict, image_hw: tuple[int, int], depth_hw: tuple[int, int]) -> None:
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, *image_hw)
    assert item["depth"].dtype == torch.float32 and item["depth"].shape == (1, *depth_hw)
    assert item["valid"].dtype == torch.bool and item["valid"].shape == (1, *depth_hw)
    assert isinstance(item["frame"], int)


@pytest.fixture(scope="module")
def synthetic_file(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("syn") / "s.h5", frames=8, seed=0, height=480, width=640)


def test_synthetic_train_and_evaluation_items(synthetic_file):
    train = build_dataset("synthetic", synthetic_file, "train", train=True)
    _check_item(train[0], (228, 304), (114, 152))
    full = build_dataset("synthetic", synthetic_file, "train", train=True, depth_size=(228, 304))
    _check_item(full[0], (228, 304), (228, 304))
    rside = build_dataset("synthetic", str(synthetic_file), "test", train=False, protocol="rside")
    _check_item(rside[0], (228, 304), (228, 304))
    eigen = build_dataset("synthetic", synthetic_file, "test", protocol="eigen")
    _check_item(eigen[1], (240, 320), (480, 640))  # the image at the training scale, ground truth full size
    assert eigen.frame_indices == [4, 8] and [eigen[i]["frame"] for i in range(2)] == [4, 8]


def test_identity_records_source_variant_and_settings(synthetic_file):
    ds = build_dataset("synthetic", synthetic_file, "test", protocol="eigen")
    ident = ds.identity
    assert ident["source"] == "synthetic" and ident["split"] == "test" and ident["frames"] == 2
    assert ident["train_variant"] == "synthetic-6" and ident["protocol"] == "eigen"
    assert ident["train"] is False
    assert ident["generator"]["seed"] == 0 and ident["generator"]["frames"] == 8
    assert ident["transform"] == ["scale_shorter_side(size=240, image_only=True)", "to_float_image", "normalize"]
    assert ident["ground_truth"] == ident["depth_key"] == "rawDepths"


def test_the_default_synthetic_file_is_made_on_demand(tmp_path, monkeypatch):
    monkeypatch.setenv(synth.DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(synth, "DEFAULT_FRAMES", 4)
    source, path = parse_data_spec("synthetic")
    ds = build_dataset(source, path, "train", train=True)
    assert (tmp_path / "synthetic-s0-n4.h5").is_file() and len(ds) == 3
    assert ds.identity["path"] == str((tmp_path / "synthetic-s0-n4.h5").resolve())


def test_sources_must_match_the_file(synthetic_file, tmp_path, write_labeled, tiny_frames):
    with pytest.raises(DataError, match="is a synthetic-rooms file; use synthetic:"):
        build_dataset("nyu-labeled", synthetic_file, "test")
    mat = write_labeled(tmp_path / "x.mat", *tiny_frames)
    with pytest.raises(DataError, match="is not a synthetic-rooms file"):
        build_dataset("synthetic", mat, "all")


def test_eigen_needs_full_size_frames(tmp_path, write_labeled, tiny_frames):
    mat = write_labeled(tmp_path / "x.mat", *tiny_frames, rawDepths=tiny_frames[1].transpose(0, 2, 1))
    with pytest.raises(DataError, match=r"frames are 6x8, but protocol 'eigen' crops \(45, 471, 41, 601\)"):
        build_dataset("nyu-labeled", mat, "all", protocol="eigen")


def test_nyu_labeled_official_split(full_index_mat):
    ds = build_dataset("nyu-labeled", full_index_mat, "test", protocol="eigen")
    assert len(ds) == 654 and ds.identity["train_variant"] == "nyu-labeled-795"
    item = ds[2]
    assert item["frame"] == 9 and item["image"].shape == (3, 240, 320) and item["depth"].shape == (1, 480, 640)
    assert torch.allclose(item["depth"], torch.tensor(0.509))


def test_rside_csv_from_its_root(tmp_path):
    root = tmp_path / "rside"
    make_rside_root(root, h=480, w=640, train_rows=2, test_names=(0, 8))
    train = build_dataset("rside-csv", root, "train", train=True)
    test = build_dataset("rside-csv", root, "test", protocol="rside")
    _check_item(train[1], (228, 304), (114, 152))
    _check_item(test[1], (228, 304), (228, 304))
    assert test.frame_indices == [1, 9] and test[1]["frame"] == 9
    assert train.identity["train_variant"] == test.identity["train_variant"] == "rside-2"
    with pytest.raises(ValueError, match="rside-csv has no split 'all'"):
        build_dataset("rside-csv", root, "all")


def test_unknown_source_and_split():
    with pytest.raises(ValueError, match="unknown data source"):
        build_dataset("kitti", None, "test")
    with pytest.raises(ValueError, match="has no split 'val'"):
        build_dataset("synthetic", None, "val")
