"""RSIDE's training loss, shared by both networks, and the multi-scale sum for DRNet's auxiliary losses.

L = L_depth + L_grad + L_normal (Hu et al.; official ``train.py`` and ``sobel.py``):

- L_depth  = mean ln(|d - d*| + 0.5)
- L_grad   = mean ln(|gx - gx*| + 0.5) + mean ln(|gy - gy*| + 0.5), g = 3x3 Sobel responses (zero padding,
             no 1/8 normalisation)
- L_normal = mean |1 - cos(n, n*)|, n = (-gx, -gy, 1) (not normalised), cosine with eps=0

The value can be negative (ln 0.5 = -0.69 at zero error); only its gradient matters. Upstream uses no
validity mask; here an optional ``valid`` mask restricts every mean to valid pixels (and, for the gradient
and normal terms, to pixels whose whole 3x3 neighbourhood is valid).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import resize_bilinear

__all__ = ["DepthLoss", "LOSS_OFFSET", "multiscale_loss", "resize_target", "sobel"]

LOSS_OFFSET = 0.5  # the 0.5 inside ln(|e| + 0.5), as upstream

_SOBEL = torch.tensor(
    [[[[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]], [[[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]]]
)  # (2,1,3,3): x then y, as upstream's Sobel module (cross-correlation)


def sobel(depth: torch.Tensor) -> torch.Tensor:
    """Sobel x/y responses of a (B,1,H,W) map -> (B,2,H,W), zero padding of 1 as upstream."""
    return F.conv2d(depth, _SOBEL.to(device=depth.device, dtype=depth.dtype), padding=1)


class DepthLoss(nn.Module):
    """RSIDE loss on one (B,1,H,W) prediction against a same-size target in metres."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        return sum(self.components(pred, target, valid).values())

    def components(
        self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The four terms {depth, dx, dy, normal}, each a scalar tensor."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        pred, target = pred.float(), target.float()  # the loss runs in fp32 also under autocast
        g_pred, g_true = sobel(pred), sobel(target)
        inner = None if valid is None else _erode(valid)
        ones = torch.ones_like(pred)
        n_pred = torch.cat([-g_pred, ones], dim=1)  # (-gx, -gy, 1)
        n_true = torch.cat([-g_true, ones], dim=1)
        cos = F.cosine_similarity(n_pred, n_true, dim=1, eps=0.0).unsqueeze(1)
        return {
            "depth": _masked_mean(torch.log((pred - target).abs() + LOSS_OFFSET), valid),
            "dx": _masked_mean(torch.log((g_pred[:, :1] - g_true[:, :1]).abs() + LOSS_OFFSET), inner),
            "dy": _masked_mean(torch.log((g_pred[:, 1:] - g_true[:, 1:]).abs() + LOSS_OFFSET), inner),
            "normal": _masked_mean((1.0 - cos).abs(), inner),
        }


def resize_target(
    target: torch.Tensor, size: tuple[int, int], valid: torch.Tensor | None = None, align_corners: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Bilinear resize of a (B,1,H,W) target (and its mask) to ``size``, as DRNet's eq. 1 downsamples it.

    A resized pixel stays valid only if every source pixel it blends is valid; invalid source pixels are
    zero-filled first so they cannot leak into valid ones.
    """
    if tuple(target.shape[-2:]) == tuple(size):
        return target, valid
    if valid is None:
        return resize_bilinear(target, size, align_corners), None
    weight = resize_bilinear(valid.float(), size, align_corners)
    resized = resize_bilinear(target * valid, size, align_corners)
    return resized, weight > 1.0 - 1e-6


def multiscale_loss(
    preds: list[torch.Tensor],
    target: torch.Tensor,
    loss_fn: nn.Module | None = None,
    valid: torch.Tensor | None = None,
    align_corners: bool = False,
) -> torch.Tensor:
    """Sum of ``loss_fn`` over predictions at several sizes, the target resized (bilinear) to each one.

    preds: list of (B,1,h_i,w_i); target: (B,1,H,W) in metres. This is DRNet's eq. 1 (the paper found
    downsampling the target better than upsampling the prediction).
    """
    loss_fn = loss_fn if loss_fn is not None else DepthLoss()
    total = torch.zeros((), device=target.device)
    for pred in preds:
        t, v = resize_target(target, tuple(pred.shape[-2:]), valid, align_corners)
        total = total + loss_fn(pred, t, v)
    return total


def _erode(valid: torch.Tensor) -> torch.Tensor:
    """Pixels whose whole 3x3 neighbourhood is valid (Sobel reads all nine)."""
    return -F.max_pool2d(-valid.float(), kernel_size=3, stride=1, padding=1) > 0.5


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)
