"""Each protocol scores its own ground truth (rside: in-painted ``depths``; eigen: ``rawDepths``, 0 = hole), and the
network sees the training geometry under both (architectures/data/protocols.py, geometry.py, bench/evaluate.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_fixtures import smooth_rgb, write_labeled_file
from torch import nn

from architectures.data import build_dataset, get_protocol
from architectures.data.geometry import GeometryError, InputGeometry, train_geometry
from architectures.data.protocols import EIGEN_CROP
from bench.evaluate import evaluate

H, W, FRAMES = 480, 640, 3
HOLE = (slice(200, 260), slice(300, 380))  # inside the Eigen crop, where both protocols would score


class Recorder(nn.Module):
    """Predicts a constant depth at half the input size; keeps every input tensor it was given."""

    def __init__(self, value: float = 3.0):
        super().__init__()
        self.value, self.inputs = value, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return torch.full((x.shape[0], 1, x.shape[2] // 2, x.shape[3] // 2), self.value)


@pytest.fixture(scope="module")
def labeled(tmp_path_factory) -> tuple:
    """3 frames of 480x640 in the labeled .mat layout: complete ``depths`` and ``rawDepths`` with a hole block,
    a zero border (as the real raw maps) and one pixel beyond the 10 m cap."""
    rng = np.random.default_rng(5)
    images = np.stack([smooth_rgb(H, W, k) for k in range(FRAMES)])
    y, x = np.mgrid[0:H, 0:W]
    depths = np.stack([1.0 + 3.0 * (x / W) + 2.0 * (y / H) + rng.uniform(0, 0.2, (H, W)) for _ in range(FRAMES)])
    depths = depths.astype(np.float32)
    raw = depths.copy()
    raw[:, HOLE[0], HOLE[1]] = 0.0
    raw[:, :20, :] = 0.0
    raw[:, 300, 300] = 12.0
    path = write_labeled_file(
        tmp_path_factory.mktemp("gt") / "labeled.mat", images, depths, rawDepths=raw.transpose(0, 2, 1)
    )
    return path, depths, raw


def test_eigen_masks_the_raw_holes_and_rside_never_sees_them(labeled):
    path, depths, raw = labeled
    eigen = build_dataset("nyu-labeled", path, "all", protocol="eigen")
    item = eigen[0]
    assert item["depth"].shape == (1, H, W) and eigen.identity["depth_key"] == "rawDepths"
    np.testing.assert_array_equal(item["depth"][0].numpy(), raw[0])
    assert not item["valid"][0, HOLE[0], HOLE[1]].any()
    result = evaluate(Recorder(), eigen, get_protocol("eigen"), geometry=train_geometry())
    r0, r1, c0, c1 = EIGEN_CROP
    scored = (raw[0] > 1e-3) & (raw[0] < 10.0)
    inside = np.zeros_like(scored)
    inside[r0:r1, c0:c1] = True
    assert result.stats[0].n == int((scored & inside).sum())
    assert result.stats[0].n == (r1 - r0) * (c1 - c0) - 60 * 80 - 1  # the hole block and the 12 m pixel

    rside = build_dataset("nyu-labeled", path, "all", protocol="rside")
    ritem = rside[0]
    assert rside.identity["depth_key"] == "depths" and bool(ritem["valid"].all())
    assert float(ritem["depth"].min()) >= 1.0  # in-painted: no zeros where the raw map has its holes
    rresult = evaluate(Recorder(), rside, get_protocol("rside"), geometry=train_geometry())
    assert rresult.stats[0].n == 228 * 304


@pytest.mark.parametrize("input_size", [None, (114, 152)])
def test_evaluation_feeds_the_training_geometry(labeled, input_size):
    path, _, _ = labeled
    train = build_dataset("nyu-labeled", path, "all", train=True)
    net_hw = input_size or tuple(train[0]["image"].shape[-2:])  # what _train_step feeds the network
    assert tuple(train[0]["image"].shape[-2:]) == (228, 304)
    geometry = train_geometry(input_size)

    rside_model, eigen_model = Recorder(), Recorder()
    evaluate(
        rside_model,
        build_dataset("nyu-labeled", path, "all", protocol="rside"),
        get_protocol("rside"),
        geometry=geometry,
        batch_size=FRAMES,
    )
    evaluate(
        eigen_model,
        build_dataset("nyu-labeled", path, "all", protocol="eigen"),
        get_protocol("eigen"),
        geometry=geometry,
        batch_size=FRAMES,
    )
    (rside_x,), (eigen_x,) = rside_model.inputs, eigen_model.inputs
    assert tuple(rside_x.shape[-2:]) == net_hw  # exactly the training input
    # eigen: the whole frame at the training scale, so the training crop's window is the very same pixels
    sy, sx = net_hw[0] / 228, net_hw[1] / 304
    assert tuple(eigen_x.shape[-2:]) == (round(240 * sy), round(320 * sx))
    if input_size is None:
        torch.testing.assert_close(eigen_x[..., 6:234, 8:312], rside_x, rtol=0, atol=0)


def test_a_geometry_mismatch_is_an_error(labeled):
    path, _, _ = labeled
    eigen_items = build_dataset("nyu-labeled", path, "all", protocol="eigen")
    with pytest.raises(GeometryError, match="trained at 480 px"):
        evaluate(Recorder(), eigen_items, get_protocol("eigen"), geometry=InputGeometry(resize_rows=480))
    with pytest.raises(
        GeometryError, match="evaluation images are 240x320, but the network was trained on 228x304 crops"
    ):
        evaluate(Recorder(), eigen_items, get_protocol("rside"), geometry=train_geometry())
    with pytest.raises(GeometryError, match="input_size"):
        evaluate(Recorder(), eigen_items, get_protocol("eigen"), geometry=train_geometry(), input_size=(64, 80))


def test_flip_variants_are_named_and_off_by_default():
    assert not get_protocol("eigen").flip_tta and not get_protocol("rside").flip_tta
    flip = get_protocol("eigen-flip")
    assert flip.flip_tta and flip.as_dict()["name"] == "eigen-flip"
    same = {k: v for k, v in flip.as_dict().items() if k not in ("name", "origin", "flip_tta")}
    assert same == {k: v for k, v in get_protocol("eigen").as_dict().items() if k not in ("name", "origin", "flip_tta")}


def test_rside_csv_cannot_serve_raw_depths(tmp_path):
    from data_fixtures import make_rside_root

    from architectures.data import DataError

    make_rside_root(tmp_path / "r", h=480, w=640, train_rows=1, test_names=(0,))
    with pytest.raises(DataError, match="scores against rawDepths.*in-painted depths"):
        build_dataset("rside-csv", tmp_path / "r", "test", protocol="eigen")


def test_synthetic_rooms_carry_raw_depths_with_holes(tmp_path):
    import h5py

    from architectures.data import write_synthetic
    from architectures.data.synthetic import raw_depth

    path = write_synthetic(tmp_path / "s.h5", frames=2, seed=0, height=48, width=64)
    with h5py.File(path, "r") as f:
        depth, raw = f["depths"][0].T, f["rawDepths"][0].T
    np.testing.assert_array_equal(raw, raw_depth(depth))
    assert (raw[:4] == 0).all() and (raw[10:40, 10:50] > 0).mean() > 0.9  # hole border, mostly valid inside
    np.testing.assert_array_equal(raw[raw > 0], depth[raw > 0])  # a raw pixel is the true depth or a hole
    from architectures.data import NYUv2Labeled

    item = NYUv2Labeled(path, "all", depth_key="rawDepths")[0]  # what the eigen protocol reads
    np.testing.assert_array_equal(item["depth"][0].numpy(), raw)


def test_rside_fixture_round_trips_through_the_loader(tmp_path):
    from architectures.data.rside_csv import TRAIN_DEPTH_SCALE_M, write_rside_fixture
    from architectures.data.synthetic import render_frame

    root = write_rside_fixture(tmp_path / "r", train_rows=2, test_names=(0, 8), height=48, width=64)
    train = build_dataset("rside-csv", root, "train", train=True, depth_size=(114, 152))
    assert len(train) == 2 and train.identity["train_variant"] == "rside-2"
    raw_train = train.__class__(train.csv_path, split="train")[1]  # untransformed: the decoded PNG
    _, depth = render_frame(0, 1, 48, 64)
    np.testing.assert_allclose(raw_train["depth"][0].numpy(), depth, atol=TRAIN_DEPTH_SCALE_M / 2 + 1e-6)
    test = build_dataset("rside-csv", root, "test", protocol="rside")
    assert test.frame_indices == [1, 9] and test.identity["official_test_frames"] is False  # only 2 of 654
