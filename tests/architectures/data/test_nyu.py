"""architectures/data/nyu.py: the labeled .mat reader on fixtures in the real HDF5 layout."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch
from data_fixtures import MARKED_FRAMES, marker_depth_m, write_mat_v5
from torch.utils.data import DataLoader

from architectures.data import DataError, NYUv2Labeled, official_split, read_layout


def test_frames_come_back_upright(tmp_path, write_labeled, tiny_frames):
    images, depths = tiny_frames
    ds = NYUv2Labeled(write_labeled(tmp_path / "x.mat", images, depths), split="all")
    assert len(ds) == 3 and ds.frame_indices == [1, 2, 3]
    for k in range(3):
        s = ds[k]
        assert s["frame"] == k + 1
        assert s["image"].dtype == torch.uint8 and s["image"].shape == (3, 6, 8)
        np.testing.assert_array_equal(s["image"].permute(1, 2, 0).numpy(), images[k])
        np.testing.assert_array_equal(s["depth"][0].numpy(), depths[k])
        assert s["valid"].all()


def test_layout_is_recognised_as_the_matlab_file(tmp_path, write_labeled, tiny_frames):
    layout = read_layout(write_labeled(tmp_path / "x.mat", *tiny_frames))
    assert (layout.kind, layout.frames, layout.height, layout.width) == ("nyu-labeled", 3, 6, 8)
    plain = read_layout(write_labeled(tmp_path / "y.h5", *tiny_frames, matlab_header=False))
    assert plain.kind == "hdf5"


def test_official_split_on_a_full_size_index_file(full_index_mat):
    test, train, every = (NYUv2Labeled(full_index_mat, s) for s in ("test", "train", "all"))
    assert (len(train), len(test), len(every)) == (795, 654, 1449)
    assert test.frame_indices == official_split("test") and train.frame_indices == official_split("train")
    assert test.frame_indices[:3] == [1, 2, 9] and train.frame_indices[0] == 3
    assert test.identity["train_variant"] == "nyu-labeled-795" and test.identity["frames"] == 654
    # items carry their official frame number and the data of exactly that frame
    for ds, position in ((test, 2), (train, 0), (every, 1439), (every, 1448)):
        s = ds[position]
        assert s["frame"] in MARKED_FRAMES
        assert torch.allclose(s["depth"], torch.tensor(marker_depth_m(s["frame"])))
        assert int(s["image"][0, 0, 0]) == s["frame"] % 256
    unwritten = test[3]  # frame 14: never written, reads as 0 -> every pixel invalid, depth 0
    assert unwritten["frame"] == 14 and not unwritten["valid"].any() and not unwritten["depth"].any()


def test_nan_zero_and_inf_depths_are_masked(tmp_path, write_labeled, tiny_frames):
    images, depths = tiny_frames
    depths = depths.copy()
    depths[0, 1, 2], depths[0, 3, 4], depths[0, 5, 7] = np.nan, 0.0, np.inf
    s = NYUv2Labeled(write_labeled(tmp_path / "x.mat", images, depths), "all")[0]
    bad = np.zeros((6, 8), bool)
    bad[1, 2] = bad[3, 4] = bad[5, 7] = True
    np.testing.assert_array_equal(s["valid"][0].numpy(), ~bad)
    assert torch.isfinite(s["depth"]).all() and (s["depth"][0][torch.from_numpy(bad)] == 0).all()


def test_raw_depths_can_be_read(tmp_path, write_labeled, tiny_frames):
    images, depths = tiny_frames
    raw = depths * 0.5
    path = write_labeled(tmp_path / "x.mat", images, depths, rawDepths=raw.transpose(0, 2, 1))
    s = NYUv2Labeled(path, "all", depth_key="rawDepths")[1]
    np.testing.assert_allclose(s["depth"][0].numpy(), raw[1])


def test_dataloader_workers_reopen_the_file(tmp_path, write_labeled, tiny_frames):
    images, depths = tiny_frames
    ds = NYUv2Labeled(write_labeled(tmp_path / "x.mat", images, depths), "all")
    ds[0]  # the parent now holds an open handle; forked workers must not use it
    loader = DataLoader(ds, batch_size=1, num_workers=2, shuffle=False)
    frames = [int(b["frame"]) for b in loader]
    depths_seen = [b["depth"][0, 0].numpy() for b in loader]
    assert frames == [1, 2, 3]
    for k in range(3):
        np.testing.assert_array_equal(depths_seen[k], depths[k])


def test_dataset_pickles_without_its_handle(tmp_path, write_labeled, tiny_frames):
    ds = NYUv2Labeled(write_labeled(tmp_path / "x.mat", *tiny_frames), "all")
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._file is None and torch.equal(clone[2]["depth"], ds[2]["depth"])


# --- bad input ---------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.mat: no such file"):
        NYUv2Labeled(tmp_path / "nope.mat")


def test_matlab_v5_file_is_named_as_such(tmp_path):
    path = tmp_path / "splits.mat"
    write_mat_v5(path, {"trainNdxs": np.arange(1, 796)[:, None], "testNdxs": np.arange(796, 1450)[:, None]})
    with pytest.raises(DataError, match=r"splits\.mat: is a MATLAB v5 MAT-file, not MATLAB v7\.3"):
        NYUv2Labeled(path, "all")


def test_the_v5_fixture_is_a_real_mat_file(tmp_path):
    import scipy.io as io  # an independent reader (the test extra installs it)

    loaded = io.loadmat(write_mat_v5(tmp_path / "s.mat", {"testNdxs": np.array([[1], [2], [9]])}))
    np.testing.assert_array_equal(loaded["testNdxs"], [[1], [2], [9]])


def test_not_hdf5(tmp_path):
    path = tmp_path / "x.mat"
    path.write_bytes(b"PK\x03\x04 this is a zip")
    with pytest.raises(DataError, match="not an HDF5 / MATLAB v7.3 file"):
        NYUv2Labeled(path, "all")


def test_missing_depths_lists_what_is_there(tmp_path):
    path = tmp_path / "x.mat"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", (2, 3, 8, 6), np.uint8)
        f.create_dataset("labels", (2, 8, 6), np.uint16)
    with pytest.raises(DataError, match=r"x\.mat: dataset 'depths' is missing.*file has: images, labels"):
        NYUv2Labeled(path, "all")


def test_missing_images_names_both_datasets_the_layout_needs(tmp_path):
    path = tmp_path / "x.mat"
    with h5py.File(path, "w") as f:
        f.create_dataset("depths", (2, 8, 6), np.float32)
    with pytest.raises(DataError) as err:
        NYUv2Labeled(path, "all")
    assert "dataset 'images' is missing; the labeled .mat layout needs 'images' and 'depths' (file has: depths)" in str(
        err.value
    )
    with pytest.raises(DataError, match="needs 'images' and 'rawDepths'"):
        NYUv2Labeled(path, "all", depth_key="rawDepths")


@pytest.mark.parametrize(
    "images, depths, match",
    [
        (((2, 3, 8, 6), np.float32), ((2, 8, 6), np.float32), "'images' is float32"),
        (((2, 8, 6, 3), np.uint8), ((2, 8, 6), np.float32), r"'images' is uint8 \(2, 8, 6, 3\)"),
        (((2, 3, 8, 6), np.uint8), ((2, 6, 8), np.float32), r"'depths' is float32 \(2, 6, 8\); expected float"),
        (((2, 3, 8, 6), np.uint8), ((2, 8, 6), np.uint16), "'depths' is uint16"),
    ],
)
def test_wrong_shapes_and_types(tmp_path, images, depths, match):
    path = tmp_path / "x.mat"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", images[0], images[1])
        f.create_dataset("depths", depths[0], depths[1])
    with pytest.raises(DataError, match=match):
        NYUv2Labeled(path, "all")


def test_train_split_needs_1449_frames_or_an_embedded_split(tmp_path, write_labeled, tiny_frames):
    path = write_labeled(tmp_path / "x.mat", *tiny_frames)
    with pytest.raises(DataError, match="has 3 frames and no embedded split.*1449"):
        NYUv2Labeled(path, "train")


def test_embedded_split_is_used_and_checked(tmp_path, write_labeled, tiny_frames):
    ok = write_labeled(tmp_path / "ok.mat", *tiny_frames, trainNdxs=np.array([1, 3]), testNdxs=np.array([2]))
    assert NYUv2Labeled(ok, "train").frame_indices == [1, 3] and NYUv2Labeled(ok, "test")[0]["frame"] == 2
    bad = write_labeled(tmp_path / "bad.mat", *tiny_frames, trainNdxs=np.array([1, 4]), testNdxs=np.array([2]))
    with pytest.raises(DataError, match=r"'trainNdxs' must hold distinct 1-based frame numbers"):
        NYUv2Labeled(bad, "train")


def test_truncated_file(tmp_path, write_labeled, tiny_frames):
    path = write_labeled(tmp_path / "x.mat", *tiny_frames)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"x\.mat: "):
        NYUv2Labeled(path, "all")[2]
