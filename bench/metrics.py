"""Depth metrics (DRNet paper eqs. 3-5 and the usual companions), per image and over a test set.

Per image, ``image_stats`` keeps sums over the valid pixels, so that every reduction can be computed
from the same numbers:

- ``per_image``: mean over images of each image's metric (RMSE per image, then averaged; BTS lineage).
- ``pooled``:    all valid pixels of the set at once (DenseDepth lineage).
- ``rside``:     RSIDE ``test.py``/``util.py``: per-image errors averaged over images, but
                 RMSE = sqrt(mean over images of per-image MSE); deltas counted with ``<=``.

Deltas use ``max(d/d*, d*/d) < 1.25^k`` (paper eq. 5) except in the ``rside`` reduction. Depths are in
metres. Predictions are not clamped here: a non-positive prediction makes log metrics NaN, exactly as in
RSIDE's code, and counts as outside every delta threshold (one deliberate deviation from RSIDE's util.py, where
the ratio of a negative prediction is negative and so counted as within 1.25); protocols that clamp say so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where tensors are handled, so the report can use the reductions without it
    import torch

__all__ = [
    "DEPTH_METRICS",
    "EDGE_THRESHOLDS",
    "LOWER_IS_BETTER",
    "REDUCTIONS",
    "STAT_COLUMNS",
    "ImageStats",
    "boundary_metrics",
    "depth_metrics",
    "image_stats",
    "reduce_boundary",
    "reduce_metrics",
    "NoValidPixelsError",
]

DEPTH_METRICS = ("rmse", "abs_rel", "sq_rel", "log10", "rmse_log", "delta1", "delta2", "delta3")
LOWER_IS_BETTER = {
    "rmse": True,
    "abs_rel": True,
    "sq_rel": True,
    "log10": True,
    "rmse_log": True,
    "delta1": False,
    "delta2": False,
    "delta3": False,
}
REDUCTIONS = ("per_image", "pooled", "rside")
DELTA_BASE = 1.25
EDGE_THRESHOLDS = (0.25, 0.5, 1.0)  # RSIDE's Sobel-magnitude thresholds for boundary metrics


class NoValidPixelsError(ValueError):
    """An image has no valid ground-truth pixel, so its metrics are undefined."""


@dataclass(frozen=True)
class ImageStats:
    """Sums over one image's valid pixels; every metric of every reduction derives from these."""

    n: int
    sum_sq: float  # sum (d - d*)^2, m^2
    sum_abs_rel: float  # sum |d - d*| / d*
    sum_sq_rel: float  # sum (d - d*)^2 / d*, m
    sum_log10: float  # sum |log10 d - log10 d*|
    sum_sq_log: float  # sum (ln d - ln d*)^2
    lt: tuple[int, int, int]  # count of max-ratio <  1.25^k, k = 1..3
    le: tuple[int, int, int]  # count of max-ratio <= 1.25^k

    def as_row(self) -> dict[str, float]:
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("lt", "le")}
        for k in range(3):
            row[f"lt{k + 1}"], row[f"le{k + 1}"] = self.lt[k], self.le[k]
        return row


# per_image.csv's statistic columns (the keys of ImageStats.as_row()): every reduction and every bootstrap
# resample derives from them.
STAT_COLUMNS = (
    "n",
    "sum_sq",
    "sum_abs_rel",
    "sum_sq_rel",
    "sum_log10",
    "sum_sq_log",
    "lt1",
    "lt2",
    "lt3",
    "le1",
    "le2",
    "le3",
)


def image_stats(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> ImageStats:
    """Sums for one image. pred, target: same shape (H,W or 1,H,W), metres; valid: bool mask or None.

    Without a mask every finite target pixel counts (RSIDE masks only NaN ground truth).
    """
    import torch

    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    pred, target = pred.detach().double().flatten(), target.detach().double().flatten()
    mask = torch.isfinite(target)
    if valid is not None:
        if valid.numel() != target.numel():
            raise ValueError(f"valid mask has {valid.numel()} pixels, target has {target.numel()}")
        mask &= valid.flatten().bool()
    n = int(mask.sum())
    if n == 0:
        raise NoValidPixelsError("image has no valid ground-truth pixels; its metrics are undefined")
    d, t = pred[mask], target[mask]
    err = d - t
    # a non-positive prediction is never within any threshold (RSIDE's util.py would count it: both of its
    # ratios are negative, hence <= 1.25; that rewards a collapsed network, so it is not reproduced here)
    ratio = torch.where(d > 0, torch.maximum(d / t, t / d), torch.full_like(d, math.inf))
    thresholds = [DELTA_BASE**k for k in (1, 2, 3)]
    return ImageStats(
        n=n,
        sum_sq=float((err**2).sum()),
        sum_abs_rel=float((err.abs() / t).sum()),
        sum_sq_rel=float((err**2 / t).sum()),
        sum_log10=float((torch.log10(d) - torch.log10(t)).abs().sum()),
        sum_sq_log=float(((torch.log(d) - torch.log(t)) ** 2).sum()),
        lt=tuple(int((ratio < th).sum()) for th in thresholds),
        le=tuple(int((ratio <= th).sum()) for th in thresholds),
    )


def _metrics_from_means(
    mse: float, abs_rel: float, sq_rel: float, log10: float, msle: float, deltas: Sequence[float]
) -> dict[str, float]:
    return {
        "rmse": math.sqrt(mse),
        "abs_rel": abs_rel,
        "sq_rel": sq_rel,
        "log10": log10,
        "rmse_log": math.sqrt(msle) if msle >= 0 else math.nan,
        "delta1": deltas[0],
        "delta2": deltas[1],
        "delta3": deltas[2],
    }


def _image_metrics(s: ImageStats, inclusive: bool) -> dict[str, float]:
    counts = s.le if inclusive else s.lt
    return _metrics_from_means(
        s.sum_sq / s.n,
        s.sum_abs_rel / s.n,
        s.sum_sq_rel / s.n,
        s.sum_log10 / s.n,
        s.sum_sq_log / s.n,
        [c / s.n for c in counts],
    )


def depth_metrics(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None, inclusive_delta: bool = False
) -> dict[str, float]:
    """Metrics of one image: rmse, abs_rel, sq_rel, log10, rmse_log (m or unitless), delta1..3 (fractions).

    inclusive_delta=True counts ``ratio <= 1.25^k`` as RSIDE's util.py does; the paper's eq. 5 uses ``<``.
    """
    return _image_metrics(image_stats(pred, target, valid), inclusive_delta)


def reduce_metrics(stats: Iterable[ImageStats], reduction: str) -> dict[str, float]:
    """Aggregate per-image sums over a test set with one of ``REDUCTIONS``."""
    stats = list(stats)
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; available: {', '.join(REDUCTIONS)}")
    if not stats:
        raise ValueError("cannot reduce metrics over an empty test set")
    if reduction == "pooled":
        n = sum(s.n for s in stats)
        sums = [
            sum(getattr(s, k) for s in stats) / n
            for k in ("sum_sq", "sum_abs_rel", "sum_sq_rel", "sum_log10", "sum_sq_log")
        ]
        return _metrics_from_means(*sums, [sum(s.lt[k] for s in stats) / n for k in range(3)])
    if reduction == "per_image":
        rows = [_image_metrics(s, inclusive=False) for s in stats]
        return {k: sum(r[k] for r in rows) / len(rows) for k in DEPTH_METRICS}
    # rside: means of per-image means; RMSE and RMSE_log from the mean of per-image squared errors
    m = len(stats)
    means = [
        sum(getattr(s, k) / s.n for s in stats) / m
        for k in ("sum_sq", "sum_abs_rel", "sum_sq_rel", "sum_log10", "sum_sq_log")
    ]
    return _metrics_from_means(*means, [sum(s.le[k] / s.n for s in stats) / m for k in range(3)])


def edge_magnitude(depth: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude sqrt(gx^2 + gy^2) of a (H,W) / (1,H,W) / (B,1,H,W) map (zero padding)."""
    import torch

    from architectures.losses import sobel

    x = depth.reshape(-1, 1, *depth.shape[-2:]).double()
    g = sobel(x)
    return torch.sqrt(g[:, 0] ** 2 + g[:, 1] ** 2).reshape(depth.shape)


def boundary_metrics(
    pred: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    thresholds: Sequence[float] = EDGE_THRESHOLDS,
) -> dict[str, float]:
    """RSIDE's boundary metrics for one image: Sobel edge maps of prediction and target thresholded at t.

    Keys ``edge_{acc,precision,recall,f1}@t``. accuracy = agreement over pixels, precision = |E & E*|/|E|,
    recall = |E & E*|/|E*|, F1 = 2PR/(P+R). A ratio with an empty denominator is NaN (undefined) and is
    left out of set averages by ``reduce_boundary``.
    """
    import torch

    e_pred, e_true = edge_magnitude(pred), edge_magnitude(target)
    mask = torch.ones_like(e_true, dtype=torch.bool) if valid is None else valid.reshape(e_true.shape).bool()
    out: dict[str, float] = {}
    for t in thresholds:
        p, g = (e_pred > t) & mask, (e_true > t) & mask
        both = int((p & g).sum())
        precision = both / int(p.sum()) if p.any() else math.nan
        recall = both / int(g.sum()) if g.any() else math.nan
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else math.nan
        out[f"edge_acc@{t:g}"] = float(((p == g) & mask).sum()) / float(mask.sum())
        out[f"edge_precision@{t:g}"] = precision
        out[f"edge_recall@{t:g}"] = recall
        out[f"edge_f1@{t:g}"] = f1
    return out


def reduce_boundary(rows: Iterable[dict[str, float]]) -> dict[str, float]:
    """Average boundary metrics over images, ignoring NaN (undefined) entries, as a mean per key."""
    rows = list(rows)
    if not rows:
        raise ValueError("cannot reduce boundary metrics over an empty test set")
    out = {}
    for key in rows[0]:
        vals = [r[key] for r in rows if not math.isnan(r[key])]
        out[key] = sum(vals) / len(vals) if vals else math.nan
    return out
