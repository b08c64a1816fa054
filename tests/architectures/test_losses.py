from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from architectures.losses import DepthLoss, multiscale_loss, resize_target, sobel


def naive_sobel(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel x/y by explicit loops with zero padding (cross-correlation), independent of conv2d."""
    kx = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], float)
    ky = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], float)
    p = np.pad(d, 1)
    gx, gy = np.zeros_like(d), np.zeros_like(d)
    for i in range(d.shape[0]):
        for j in range(d.shape[1]):
            window = p[i : i + 3, j : j + 3]
            gx[i, j], gy[i, j] = (window * kx).sum(), (window * ky).sum()
    return gx, gy


def naive_rside_loss(o: np.ndarray, g: np.ndarray) -> float:
    """The official train.py loss written out in NumPy for one (H,W) image."""
    ox, oy = naive_sobel(o)
    gx, gy = naive_sobel(g)
    n_o = np.stack([-ox, -oy, np.ones_like(o)])
    n_g = np.stack([-gx, -gy, np.ones_like(g)])
    cos = (n_o * n_g).sum(0) / (np.linalg.norm(n_o, axis=0) * np.linalg.norm(n_g, axis=0))
    return (
        np.log(np.abs(o - g) + 0.5).mean()
        + np.abs(1 - cos).mean()
        + np.log(np.abs(ox - gx) + 0.5).mean()
        + np.log(np.abs(oy - gy) + 0.5).mean()
    )


def test_sobel_matches_naive_loops():
    d = torch.rand(1, 1, 6, 7, dtype=torch.float64)
    gx, gy = naive_sobel(d[0, 0].numpy())
    g = sobel(d)
    assert np.allclose(g[0, 0].numpy(), gx) and np.allclose(g[0, 1].numpy(), gy)


def test_loss_matches_an_independent_numpy_computation():
    torch.manual_seed(0)
    o, g = torch.rand(1, 1, 9, 11) * 5 + 0.5, torch.rand(1, 1, 9, 11) * 5 + 0.5
    assert DepthLoss()(o, g).item() == pytest.approx(
        naive_rside_loss(o[0, 0].double().numpy(), g[0, 0].double().numpy()), rel=1e-5
    )


def test_perfect_prediction_gives_the_minimum_3_ln_half():
    g = torch.rand(2, 1, 8, 8) + 1
    parts = DepthLoss().components(g.clone(), g)
    assert parts["depth"].item() == pytest.approx(math.log(0.5))
    assert parts["dx"].item() == pytest.approx(math.log(0.5)) and parts["dy"].item() == pytest.approx(math.log(0.5))
    assert parts["normal"].item() == pytest.approx(0.0, abs=1e-6)
    assert DepthLoss()(g.clone(), g).item() == pytest.approx(3 * math.log(0.5), abs=1e-5)


def test_loss_grows_with_error_and_has_gradients():
    g = torch.rand(1, 1, 8, 8) + 1
    pred = (g + 0.3).requires_grad_()
    worse = DepthLoss()(g + 1.0, g)
    loss = DepthLoss()(pred, g)
    assert worse > loss > 3 * math.log(0.5)
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_valid_mask_excludes_pixels():
    g = torch.ones(1, 1, 8, 8)
    pred = g.clone()
    pred[..., :, :4] += 10.0  # wildly wrong on the left half
    valid = torch.zeros_like(g, dtype=torch.bool)
    valid[..., :, 5:] = True  # only the right part counts (eroded: columns 6..7)
    parts = DepthLoss().components(pred, g, valid)
    assert parts["depth"].item() == pytest.approx(math.log(0.5))
    assert parts["dx"].item() == pytest.approx(math.log(0.5))
    assert parts["normal"].item() == pytest.approx(0.0, abs=1e-6)
    assert DepthLoss()(pred, g) > DepthLoss()(pred, g, valid)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="differ in shape"):
        DepthLoss()(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 8, 8))


def test_multiscale_loss_sums_over_levels_with_bilinear_targets():
    torch.manual_seed(1)
    target = torch.rand(2, 1, 16, 20) + 1
    preds = [torch.rand(2, 1, 16, 20) + 1, torch.rand(2, 1, 8, 10) + 1, torch.rand(2, 1, 4, 5) + 1]
    expected = sum(
        DepthLoss()(p, torch.nn.functional.interpolate(target, size=p.shape[-2:], mode="bilinear", align_corners=False))
        for p in preds
    )
    assert multiscale_loss(preds, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_resize_target_keeps_invalid_pixels_out():
    target = torch.full((1, 1, 4, 4), 2.0)
    target[..., 0, 0] = 100.0  # garbage under an invalid pixel
    valid = torch.ones_like(target, dtype=torch.bool)
    valid[..., 0, 0] = False
    small, small_valid = resize_target(target, (2, 2), valid)
    assert not small_valid[..., 0, 0] and small_valid[..., 1, 1]
    assert small[..., 1, 1].item() == pytest.approx(2.0)
    assert small[small_valid].max() < 3.0
