from __future__ import annotations

import math

import pytest
import torch

from bench.metrics import (
    NoValidPixelsError,
    boundary_metrics,
    depth_metrics,
    image_stats,
    reduce_boundary,
    reduce_metrics,
)


def test_perfect_prediction():
    t = torch.rand(5, 6) * 9 + 1
    m = depth_metrics(t.clone(), t)
    assert m["rmse"] == 0 and m["abs_rel"] == 0 and m["sq_rel"] == 0 and m["log10"] == 0 and m["rmse_log"] == 0
    assert m["delta1"] == m["delta2"] == m["delta3"] == 1.0


def test_constant_offset_hand_computed():
    t = torch.tensor([[1.0, 2.0], [4.0, 5.0]])
    m = depth_metrics(t + 0.5, t)
    assert m["rmse"] == pytest.approx(0.5)
    assert m["abs_rel"] == pytest.approx((0.5 / 1 + 0.5 / 2 + 0.5 / 4 + 0.5 / 5) / 4)
    assert m["sq_rel"] == pytest.approx((0.25 / 1 + 0.25 / 2 + 0.25 / 4 + 0.25 / 5) / 4)
    logs = [math.log10(1.5), math.log10(2.5 / 2), math.log10(4.5 / 4), math.log10(5.5 / 5)]
    assert m["log10"] == pytest.approx(sum(logs) / 4)
    lns = [math.log(1.5), math.log(1.25), math.log(1.125), math.log(1.1)]
    assert m["rmse_log"] == pytest.approx(math.sqrt(sum(v * v for v in lns) / 4))
    # ratios 1.5, 1.25, 1.125, 1.1: strictly below 1.25 -> 2 of 4; with <= -> 3 of 4
    assert m["delta1"] == pytest.approx(0.5)
    assert depth_metrics(t + 0.5, t, inclusive_delta=True)["delta1"] == pytest.approx(0.75)
    assert m["delta2"] == 1.0  # 1.5 < 1.5625


def test_delta_thresholds_are_symmetric_in_ratio():
    t = torch.tensor([2.0, 2.0, 2.0])
    pred = torch.tensor([2.0 * 1.3, 2.0 / 1.3, 2.0 * 1.6])
    m = depth_metrics(pred, t)
    assert m["delta1"] == 0.0
    assert m["delta2"] == pytest.approx(2 / 3)  # 1.3 < 1.5625, 1.6 > 1.5625
    assert m["delta3"] == 1.0


def test_masked_pixels_are_ignored_and_nan_ground_truth_is_never_used():
    t = torch.tensor([1.0, 2.0, float("nan"), 4.0])
    pred = torch.tensor([1.0, 2.0, 3.0, 400.0])
    valid = torch.tensor([True, True, True, False])
    m = depth_metrics(pred, t, valid)
    assert m["rmse"] == 0.0 and image_stats(pred, t, valid).n == 2


def test_no_valid_pixels_is_a_clear_error():
    with pytest.raises(NoValidPixelsError, match="no valid ground-truth pixels"):
        depth_metrics(torch.ones(3), torch.ones(3), torch.zeros(3, dtype=torch.bool))


def test_reductions_on_a_hand_computed_two_image_set():
    # image A: 1 pixel, error 1 m at depth 2; image B: 3 pixels, error 0 at depth 1
    a = image_stats(torch.tensor([3.0]), torch.tensor([2.0]))
    b = image_stats(torch.ones(3), torch.ones(3))
    per_image = reduce_metrics([a, b], "per_image")
    pooled = reduce_metrics([a, b], "pooled")
    rside = reduce_metrics([a, b], "rside")
    assert per_image["rmse"] == pytest.approx((1.0 + 0.0) / 2)  # mean of per-image RMSEs
    assert pooled["rmse"] == pytest.approx(math.sqrt(1.0 / 4))  # one squared error over 4 pixels
    assert rside["rmse"] == pytest.approx(math.sqrt((1.0 + 0.0) / 2))  # sqrt(mean of per-image MSE)
    assert per_image["abs_rel"] == pytest.approx(0.25) and pooled["abs_rel"] == pytest.approx(0.5 / 4)
    assert per_image["delta1"] == pytest.approx(0.5) and pooled["delta1"] == pytest.approx(0.75)


def test_rside_reduction_counts_deltas_with_less_or_equal():
    s = image_stats(torch.tensor([1.25, 1.0]), torch.tensor([1.0, 1.0]))
    assert reduce_metrics([s], "rside")["delta1"] == 1.0
    assert reduce_metrics([s], "per_image")["delta1"] == 0.5


def test_unknown_reduction_and_empty_set():
    s = image_stats(torch.ones(2), torch.ones(2))
    with pytest.raises(ValueError, match="available: per_image, pooled, rside"):
        reduce_metrics([s], "mean")
    with pytest.raises(ValueError, match="empty"):
        reduce_metrics([], "pooled")


def test_boundary_metrics_on_a_step_edge():
    target = torch.ones(8, 8)
    target[:, 4:] = 3.0  # a vertical step: Sobel magnitude 4*2 = 8 at columns 3 and 4
    flat = torch.full((8, 8), 2.0)
    perfect = boundary_metrics(target.clone(), target, thresholds=(0.25,))
    assert perfect["edge_precision@0.25"] == 1.0 and perfect["edge_recall@0.25"] == 1.0
    assert perfect["edge_f1@0.25"] == 1.0 and perfect["edge_acc@0.25"] == 1.0
    # a flat prediction still has the zero-padding border edges, but none of the interior step
    m = boundary_metrics(flat, target, thresholds=(0.25,))
    assert 0 < m["edge_recall@0.25"] < 1 and m["edge_acc@0.25"] < 1


def test_undefined_precision_is_nan_and_skipped_in_the_mean():
    target = torch.ones(6, 6)
    rows = [
        boundary_metrics(
            torch.ones(6, 6), target, valid=torch.zeros(6, 6, dtype=torch.bool) | True, thresholds=(100.0,)
        ),
        {"edge_acc@100": 1.0, "edge_precision@100": 0.5, "edge_recall@100": 0.5, "edge_f1@100": 0.5},
    ]
    assert math.isnan(rows[0]["edge_precision@100"])
    assert reduce_boundary(rows)["edge_precision@100"] == 0.5


def test_non_positive_predictions_are_never_within_a_delta_threshold():
    t = torch.tensor([1.0, 2.0, 3.0, 4.0])
    pred = torch.tensor([1.0, -2.0, 0.0, 4.0])
    for inclusive in (False, True):
        m = depth_metrics(pred, t, inclusive_delta=inclusive)
        assert m["delta1"] == m["delta3"] == 0.5
    assert math.isnan(depth_metrics(pred, t)["log10"])
