from __future__ import annotations

import json
import math
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
from runner_fixtures import RSIDE_LIKE_PROTOCOL, TinyDepthSet
from torch import nn

from bench.evaluate import (
    CoverageError,
    check_coverage,
    evaluate,
    per_image_columns,
    prediction_frames,
    protocol_mask,
    write_evaluation,
)
from bench.rundir import RunDir


class ConstantModel(nn.Module):
    """Predicts ``value`` everywhere at half the input size (output_stride 2); records the input sizes."""

    output_stride = 2

    def __init__(self, value: float):
        super().__init__()
        self.value, self.seen = value, []
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, levels=False):
        self.seen.append(tuple(x.shape[-2:]))
        out = torch.full((x.shape[0], 1, x.shape[2] // 2, x.shape[3] // 2), self.value) + 0 * self.dummy
        return [out] if levels else out


class RampModel(ConstantModel):
    def forward(self, x, levels=False):
        h, w = x.shape[2] // 2, x.shape[3] // 2
        ramp = torch.linspace(1.0, 3.0, w).expand(x.shape[0], 1, h, w).clone()
        return [ramp] if levels else ramp


def protocol(**changes):
    base = {k: v for k, v in vars(RSIDE_LIKE_PROTOCOL).items() if k != "as_dict"}
    base.update(changes)
    p = SimpleNamespace(**base)
    p.as_dict = lambda: dict(base)
    return p


def numpy_metrics(pred: float, depth: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    d = depth[valid].astype(np.float64)
    ratio = np.maximum(pred / d, d / pred)
    return {
        "rmse": math.sqrt(np.mean((pred - d) ** 2)),
        "abs_rel": float(np.mean(np.abs(pred - d) / d)),
        "delta1": float(np.mean(ratio < 1.25)),
        "mse": float(np.mean((pred - d) ** 2)),
    }


def test_metrics_match_an_independent_numpy_computation():
    data = TinyDepthSet([3, 1, 7, 4])
    result = evaluate(ConstantModel(2.5), data, protocol(), batch_size=3)
    assert result.frames == [1, 3, 4, 7]
    expected = {}
    for i in range(len(data)):
        item = data[i]
        expected[item["frame"]] = numpy_metrics(2.5, item["depth"][0].numpy(), item["valid"][0].numpy())
    rows = {r["frame"]: r for r in result.per_image_rows()}
    for frame, m in expected.items():
        assert rows[frame]["rmse"] == pytest.approx(m["rmse"], rel=1e-9)
        assert rows[frame]["abs_rel"] == pytest.approx(m["abs_rel"], rel=1e-9)
        assert rows[frame]["delta1"] == pytest.approx(m["delta1"], rel=1e-9)
    red = result.reductions()
    assert red["rside"]["rmse"] == pytest.approx(math.sqrt(np.mean([m["mse"] for m in expected.values()])))
    assert red["per_image"]["rmse"] == pytest.approx(np.mean([m["rmse"] for m in expected.values()]))
    assert result.headline() == red["rside"] and result.headline_reduction == "rside"


def test_constant_reference_is_the_scored_pixels_mean_and_std_and_no_constant_beats_it():
    data = TinyDepthSet([3, 1, 7, 4])
    depths = np.concatenate([data[i]["depth"][0].numpy()[data[i]["valid"][0].numpy()] for i in range(len(data))])
    ref = evaluate(ConstantModel(2.5), data, protocol(), batch_size=3).constant_reference()
    assert ref["constant_depth_m"] == pytest.approx(depths.astype(np.float64).mean(), rel=1e-9)
    assert ref["constant_rmse"] == pytest.approx(depths.astype(np.float64).std(), rel=1e-9)
    # the pooled RMSE of any constant prediction is at least the reference, equal at the mean
    for value in (0.5, ref["constant_depth_m"], 4.0):
        pooled = evaluate(ConstantModel(float(value)), data, protocol()).reductions()["pooled"]["rmse"]
        assert pooled >= ref["constant_rmse"] * (1 - 1e-6)
    at_mean = evaluate(ConstantModel(float(ref["constant_depth_m"])), data, protocol()).reductions()["pooled"]
    assert at_mean["rmse"] == pytest.approx(ref["constant_rmse"], rel=1e-5)


def test_input_size_resizes_the_network_input_and_prediction_returns_to_gt_size():
    model = ConstantModel(2.0)
    result = evaluate(model, TinyDepthSet([1, 2]), protocol(), input_size=(32, 40), keep_frames=[2])
    assert model.seen == [(32, 40)]
    assert result.predictions["pred"].shape == (1, 64, 80)


def test_upsampling_follows_the_protocols_align_corners():
    data = TinyDepthSet([1])  # 64x80 ground truth; RampModel predicts 1..3 linearly over 40 columns
    w_in, w_out = 40, 80
    j = np.arange(w_out)
    src = {True: j * (w_in - 1) / (w_out - 1), False: np.clip((j + 0.5) * w_in / w_out - 0.5, 0, w_in - 1)}
    for align in (True, False):
        pred = evaluate(RampModel(0), data, protocol(upsample_align_corners=align), keep_frames=[1])
        expected = 1.0 + 2.0 * src[align] / (w_in - 1)
        np.testing.assert_allclose(pred.predictions["pred"][0, 10], expected, rtol=1e-5)


def test_protocol_mask_crop_and_strict_depth_bounds():
    depth = torch.tensor([[[0.5, 1.0, 2.0, 10.0]] * 3])
    valid = torch.ones_like(depth, dtype=torch.bool)
    p = protocol(eval_crop=(1, 3, 0, 4), min_depth_m=0.5, max_depth_m=10.0)
    mask = protocol_mask(depth, valid, p)
    assert mask[0, 0].tolist() == [False] * 4  # row 0 outside the crop
    assert mask[0, 1].tolist() == [False, True, True, False]  # 0.5 and 10.0 excluded (strict bounds)
    assert protocol_mask(depth, valid, protocol())[0].all()


def test_clamp_prediction():
    data = TinyDepthSet([1])
    p = protocol(clamp_prediction=True, min_depth_m=1e-3, max_depth_m=1.5)
    result = evaluate(ConstantModel(7.0), data, p, keep_frames=[1])
    assert float(result.predictions["pred"].max()) == pytest.approx(1.5)


def test_coverage_rejects_duplicates_and_missing_frames():
    data = TinyDepthSet([1, 2, 3])
    check_coverage([3, 1, 2], data)
    with pytest.raises(CoverageError, match=r"1 frame\(s\) seen more than once \[2\]"):
        check_coverage([1, 2, 2, 3], data)
    with pytest.raises(CoverageError, match=r"1 never seen \[3\]"):
        check_coverage([1, 2], data)


def test_nyu_test_split_must_have_654_frames():
    data = TinyDepthSet(list(range(1, 11)))
    data.identity.update(source="nyu-labeled", split="test")
    with pytest.raises(CoverageError, match="must see 654 frames"):
        check_coverage(list(range(1, 11)), data)
    data.identity["subset"] = {"frames": 10}
    check_coverage(list(range(1, 11)), data)  # an explicit subset is fine


def test_rside_csv_test_split_must_be_the_654_official_frames():
    data = TinyDepthSet(list(range(1, 11)))
    data.identity.update(source="rside-csv", split="test", official_test_frames=False)
    with pytest.raises(CoverageError, match="must see 654 frames"):
        check_coverage(list(range(1, 11)), data)
    data = TinyDepthSet(list(range(1, 655)))  # 654 frames, but not the official ones
    data.identity.update(source="rside-csv", split="test", official_test_frames=False)
    with pytest.raises(CoverageError, match="not the official test split"):
        check_coverage(list(range(1, 655)), data)
    data.identity["official_test_frames"] = True
    check_coverage(list(range(1, 655)), data)


def test_a_padding_loader_is_caught():
    class Padded(TinyDepthSet):
        def __len__(self):
            return super().__len__() + 1

        def __getitem__(self, index):
            return super().__getitem__(index % len(self.frame_indices))

    with pytest.raises(CoverageError, match="seen more than once"):
        evaluate(ConstantModel(2.0), Padded([1, 2, 3]), protocol())


def test_prediction_frames_are_evenly_spaced_and_stable():
    frames = list(range(1, 655))
    chosen = prediction_frames(frames)
    assert len(chosen) == 6 and chosen[0] == 1 and chosen[-1] == 654
    assert prediction_frames(list(reversed(frames))) == chosen
    assert prediction_frames([5, 3]) == [3, 5]


def test_write_evaluation_files(tmp_path):
    rd = RunDir(tmp_path / "run")
    data = TinyDepthSet([1, 2, 3, 4])
    result = evaluate(ConstantModel(2.0), data, protocol(), keep_frames=[1, 4])
    meta = {"run_id": "t-a-s0", "arch": "const", "backbone": "none"}
    write_evaluation(rd, result, meta)
    metrics = json.loads(rd.metrics_path.read_text())
    assert metrics["run_id"] == "t-a-s0" and metrics["headline_reduction"] == "rside"
    assert set(metrics["reductions"]) == {"per_image", "pooled", "rside"}
    assert metrics["protocol"]["name"] == "tiny-rside" and metrics["n_frames"] == 4
    assert "edge_f1@0.25" in metrics["boundary"]
    assert metrics["reference"] == result.constant_reference() and metrics["reference"]["constant_rmse"] > 0
    header = rd.per_image_path.read_text().splitlines()[0].split(",")
    assert header == per_image_columns()
    assert header[:9] == ["frame", "rmse", "abs_rel", "sq_rel", "log10", "rmse_log", "delta1", "delta2", "delta3"]
    assert len(rd.per_image_path.read_text().splitlines()) == 5
    with h5py.File(rd.predictions_path) as f:
        assert f["frame"][:].tolist() == [1, 4]
        assert f["image"].shape == (2, 64, 80, 3) and f["image"].dtype == np.uint8
        assert f["depth"].shape == f["pred"].shape == f["valid"].shape == (2, 64, 80)
        assert f.attrs["run_id"] == "t-a-s0"
        np.testing.assert_allclose(f["depth"][0], data[0]["depth"][0].numpy())


def test_predictions_store_the_image_as_evaluated_in_uint8_rgb(tmp_path):
    from bench.evaluate import IMAGENET_MEAN, IMAGENET_STD

    rgb = torch.randint(0, 256, (3, 64, 80), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)

    class Normalised(TinyDepthSet):
        def __getitem__(self, index):
            item = super().__getitem__(index)
            mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
            return {**item, "image": (rgb.float() / 255 - mean) / std}

    result = evaluate(ConstantModel(2.0), Normalised([7]), protocol(), keep_frames=[7])
    np.testing.assert_array_equal(result.predictions["image"][0], rgb.permute(1, 2, 0).numpy())


def test_flip_tta_averages_with_the_mirrored_prediction():
    data = TinyDepthSet([1])
    plain = evaluate(RampModel(0), data, protocol(), keep_frames=[1]).predictions["pred"][0]
    tta = evaluate(RampModel(0), data, protocol(flip_tta=True), keep_frames=[1]).predictions["pred"][0]
    np.testing.assert_allclose(tta, (plain + plain[:, ::-1]) / 2, rtol=1e-5)
    np.testing.assert_allclose(tta, 2.0, rtol=1e-5)  # a 1..3 ramp and its mirror average to 2


def test_real_protocols_on_synthetic_rooms(tmp_path):
    """The registered protocols' fields drive the mask: eigen scores only its crop and 1e-3 < d < 10 m."""
    data = pytest.importorskip("architectures.data")
    rooms = data.ensure_synthetic(tmp_path / "rooms.h5", frames=8, seed=0)
    eigen = data.get_protocol("eigen")
    test = data.build_dataset("synthetic", rooms, "test", protocol="eigen")
    result = evaluate(ConstantModel(3.0), test, eigen, batch_size=2)
    assert result.headline_reduction == "per_image" and result.frames == list(test.frame_indices)
    r0, r1, c0, c1 = eigen.eval_crop
    for i, s in enumerate(result.stats):
        item = test[i]
        inside = (
            item["valid"][0, r0:r1, c0:c1]
            & (item["depth"][0, r0:r1, c0:c1] > 1e-3)
            & (item["depth"][0, r0:r1, c0:c1] < 10.0)
        )
        assert s.n == int(inside.sum()) > 0
    rside = data.build_dataset("synthetic", rooms, "test", protocol="rside")
    result = evaluate(ConstantModel(3.0), rside, data.get_protocol("rside"), keep_frames=[rside.frame_indices[0]])
    assert result.headline_reduction == "rside" and result.predictions["pred"].shape == (1, 228, 304)


# --- the eigen protocol against BTS's compute_errors --------------------------------------------------------


def bts_compute_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """BTS's compute_errors (cleinc/bts pytorch/bts_eval.py), written from its published formulas."""
    thresh = np.maximum(gt / pred, pred / gt)
    err = np.log(pred) - np.log(gt)
    return {
        "silog": float(np.sqrt(np.mean(err**2) - np.mean(err) ** 2) * 100),
        "log10": float(np.mean(np.abs(np.log10(gt) - np.log10(pred)))),
        "abs_rel": float(np.mean(np.abs(gt - pred) / gt)),
        "sq_rel": float(np.mean((gt - pred) ** 2 / gt)),
        "rmse": float(np.sqrt(np.mean((gt - pred) ** 2))),
        "rmse_log": float(np.sqrt(np.mean(err**2))),
        "delta1": float(np.mean(thresh < 1.25)),
        "delta2": float(np.mean(thresh < 1.25**2)),
        "delta3": float(np.mean(thresh < 1.25**3)),
    }


def bts_eval_nyu(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """BTS's NYU evaluation of one frame: clip the prediction to [1e-3, 10] (inf -> max, nan -> min), score
    1e-3 < gt < 10 inside eval_mask[45:471, 41:601]."""
    pred = pred.astype(np.float64).copy()
    pred[pred < 1e-3], pred[pred > 10] = 1e-3, 10
    pred[np.isinf(pred)], pred[np.isnan(pred)] = 10, 1e-3
    gt = gt.astype(np.float64)
    valid = (gt > 1e-3) & (gt < 10)
    eval_mask = np.zeros(valid.shape, bool)
    eval_mask[45:471, 41:601] = True
    valid &= eval_mask
    return bts_compute_errors(gt[valid], pred[valid])


class RawDepthSet(torch.utils.data.Dataset):
    """Frames as the eigen protocol's preprocessing gives them: image (3,240,320), raw depth (1,480,640) in
    0.3..11 m with 0-holes and a zero border, as rawDepths."""

    def __init__(self, frames):
        self.frame_indices = list(frames)
        self.identity = {"source": "tiny-raw", "split": "test"}

    def __len__(self):
        return len(self.frame_indices)

    def __getitem__(self, index):
        frame = self.frame_indices[index]
        g = torch.Generator().manual_seed(frame)
        depth = 0.3 + 10.7 * torch.rand(1, 1, 6, 8, generator=g)
        depth = torch.nn.functional.interpolate(depth, size=(480, 640), mode="bilinear", align_corners=False)[0]
        depth = torch.where(torch.rand(1, 480, 640, generator=g) < 0.1, 0.0, depth)  # 10% holes
        depth[..., :30, :] = 0.0
        image = torch.nn.functional.interpolate(depth[None], size=(240, 320), mode="area")[0].expand(3, -1, -1)
        image = (image - 5.0) / 3.0 + 0.2 * torch.randn(3, 240, 320, generator=g)
        return {"image": image.contiguous(), "depth": depth, "valid": depth > 0, "frame": frame}


class ImageDrivenModel(nn.Module):
    """A prediction that varies over the image and leaves [1e-3, 10] m in places (to exercise clipping)."""

    def forward(self, x, levels=False):
        out = 5.0 + 4.0 * torch.nn.functional.avg_pool2d(x[:, :1], 2) + 0.5 * x[:, 1:2, ::2, ::2]
        return [out] if levels else out


def test_eigen_protocol_matches_bts_compute_errors():
    from architectures.data import get_protocol
    from architectures.data.geometry import train_geometry

    data = RawDepthSet([3, 11, 17, 29])
    result = evaluate(
        ImageDrivenModel(),
        data,
        get_protocol("eigen"),
        geometry=train_geometry(),
        keep_frames=data.frame_indices,
        batch_size=3,
    )
    preds = result.predictions
    assert preds["pred"].shape == (4, 480, 640)  # upsampled to the ground truth's size
    assert preds["pred"].min() == pytest.approx(1e-3) and preds["pred"].max() == pytest.approx(10.0)
    bts = [
        bts_eval_nyu(preds["pred"][i], data[data.frame_indices.index(f)]["depth"][0].numpy())
        for i, f in enumerate(preds["frame"].tolist())
    ]
    ours = result.reductions()["per_image"]  # the eigen protocol's headline: per-image metrics averaged
    assert result.headline() == ours
    diffs = {k: abs(ours[k] - float(np.mean([b[k] for b in bts]))) for k in ours}
    print("eigen vs BTS compute_errors, |difference| per metric:", diffs, "values:", ours)
    for key, diff in diffs.items():
        assert diff <= 1e-9 * max(1.0, abs(ours[key])), (key, diff)
