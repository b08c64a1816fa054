"""Evaluation under a named protocol: per-image statistics, every reduction, boundary metrics, files.

The network sees exactly the input geometry it was trained on (``geometry``, an
``architectures.data.geometry.InputGeometry``: same Scale(240), the training crop or the whole frame at that
scale, the same resize to ``input_size``); anything else raises ``GeometryError``. For each test image the
prediction is upsampled (bilinear) to the ground truth's size with the protocol's ``upsample_align_corners``;
the protocol's ``eval_crop`` and depth range then restrict the valid mask (depth kept where
``min_depth_m < d* < max_depth_m``, strict as in BTS / AdaBins ``eval``; a None bound is not applied), and
``clamp_prediction`` clips the prediction to the same range. ``flip_tta`` (the ``*-flip`` protocols) averages
the clipped prediction with that of the mirrored image, flipped back (AdaBins). ``bench.metrics.image_stats``
gives each image's sums; all three reductions are computed from them and the protocol names the headline.

The evaluation asserts that it saw exactly the dataset's distinct ``frame_indices``, each once: a padded
distributed sampler (or a broken loader) would otherwise count some of NYU's 654 test frames twice.
Under DDP only rank 0 evaluates (the runner arranges it), so the whole split is seen by one process.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from architectures.data.geometry import GeometryError, InputGeometry, check_protocol_geometry
from architectures.data.transforms import IMAGENET_MEAN, IMAGENET_STD  # the data layer's normalisation
from bench.io import write_bytes_atomic, write_csv_atomic, write_json_atomic
from bench.metrics import (
    DEPTH_METRICS,
    EDGE_THRESHOLDS,
    REDUCTIONS,
    STAT_COLUMNS,
    ImageStats,
    NoValidPixelsError,
    boundary_metrics,
    image_stats,
    reduce_boundary,
    reduce_metrics,
)
from bench.rundir import RunDir
from bench.runtime import amp_autocast, loader_workers
from bench.train import _worker_init  # one worker set-up for both loaders (seeding; stop signals ignored)

__all__ = [
    "CoverageError",
    "EvalResult",
    "GeometryError",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NYU_TEST_FRAMES",
    "PREDICTION_FRAMES",
    "check_coverage",
    "evaluate",
    "headline_summary",
    "network_input",
    "per_image_columns",
    "prediction_frames",
    "protocol_mask",
    "write_evaluation",
]

NYU_TEST_FRAMES = 654  # official test split size (splits.mat testNdxs)
PREDICTION_FRAMES = 6  # frames kept in predictions.h5 for the report's Table 4 grid


class CoverageError(AssertionError):
    """An evaluation did not see each frame of its split exactly once."""


@dataclass
class EvalResult:
    """Per-image statistics of one evaluation and what they reduce to.

    ``frames`` are official 1-based frame numbers in ascending order; ``stats`` and ``boundary`` align
    with them. ``predictions`` holds arrays for the few frames kept for predictions.h5 (or None).
    """

    protocol: dict[str, Any]
    headline_reduction: str
    frames: list[int]
    stats: list[ImageStats]
    boundary: list[dict[str, float]]
    predictions: dict[str, np.ndarray] | None = None
    network_input: dict[str, Any] | None = None  # training geometry and the (h, w) the network was fed
    depth_moments: tuple[float, float, int] = (0.0, 0.0, 0)  # sum d*, sum d*^2 (m, m^2), count over scored pixels

    def constant_reference(self) -> dict[str, float | None]:
        """The best constant prediction's pooled RMSE: one depth (the scored pixels' own mean, m) everywhere.

        A network whose pooled RMSE is not below it has learned nothing of the scene (the report's
        convergence check uses it); None without scored pixels."""
        total, total_sq, n = self.depth_moments
        if n == 0:
            return {"constant_depth_m": None, "constant_rmse": None}
        mean = total / n
        return {"constant_depth_m": mean, "constant_rmse": max(total_sq / n - mean * mean, 0.0) ** 0.5}

    def reductions(self) -> dict[str, dict[str, float]]:
        return {r: reduce_metrics(self.stats, r) for r in REDUCTIONS}

    def headline(self) -> dict[str, float]:
        """The protocol's own reduction (e.g. RSIDE's for the rside protocol)."""
        return reduce_metrics(self.stats, self.headline_reduction)

    def boundary_summary(self) -> dict[str, float]:
        return reduce_boundary(self.boundary)

    def per_image_rows(self) -> list[dict[str, Any]]:
        """Rows of per_image.csv: frame, per-image metrics (deltas with ``<``), sums, boundary metrics."""
        rows = []
        for frame, s, b in zip(self.frames, self.stats, self.boundary, strict=True):
            metrics = reduce_metrics([s], "per_image")
            rows.append({"frame": frame, **metrics, **s.as_row(), **b})
        return rows


def per_image_columns() -> list[str]:
    edge = [f"edge_{k}@{t:g}" for t in EDGE_THRESHOLDS for k in ("acc", "precision", "recall", "f1")]
    return ["frame", *DEPTH_METRICS, *STAT_COLUMNS, *edge]


def protocol_mask(depth: torch.Tensor, valid: torch.Tensor, protocol: Any) -> torch.Tensor:
    """The pixels a protocol scores: ``valid`` within ``eval_crop`` (row0, row1, col0, col1; 0-based,
    half-open) and with ground truth strictly inside (min_depth_m, max_depth_m). Shapes (..., H, W)."""
    mask = valid.bool() & torch.isfinite(depth)
    if protocol.eval_crop is not None:
        r0, r1, c0, c1 = protocol.eval_crop
        crop = torch.zeros_like(mask)
        crop[..., r0:r1, c0:c1] = True
        mask &= crop
    if protocol.min_depth_m is not None:
        mask &= depth > protocol.min_depth_m
    if protocol.max_depth_m is not None:
        mask &= depth < protocol.max_depth_m
    return mask


def prediction_frames(frame_indices: Sequence[int], n: int = PREDICTION_FRAMES) -> list[int]:
    """``n`` frames evenly spaced over the sorted split: the same frames for every run on the same data."""
    frames = sorted(set(int(f) for f in frame_indices))
    if len(frames) <= n:
        return frames
    return [frames[round(i * (len(frames) - 1) / (n - 1))] for i in range(n)] if n > 1 else frames[:1]


def check_coverage(seen: Sequence[int], dataset: Dataset) -> None:
    """Raise ``CoverageError`` unless ``seen`` is each of the dataset's distinct frame_indices exactly once."""
    expected = {int(f) for f in getattr(dataset, "frame_indices", seen)}
    counts: dict[int, int] = {}
    for f in seen:
        counts[int(f)] = counts.get(int(f), 0) + 1
    duplicated = sorted(f for f, c in counts.items() if c > 1)
    missing, extra = sorted(expected - counts.keys()), sorted(counts.keys() - expected)
    if duplicated or missing or extra:
        raise CoverageError(
            f"evaluation saw {len(seen)} items for {len(expected)} distinct frames: "
            f"{len(duplicated)} frame(s) seen more than once {duplicated[:10]}, {len(missing)} never seen "
            f"{missing[:10]}, {len(extra)} not in the split {extra[:10]}"
        )
    identity = getattr(dataset, "identity", {}) or {}
    if (
        identity.get("source") in ("nyu-labeled", "rside-csv")
        and identity.get("split") == "test"
        and not identity.get("subset")
    ):
        if len(counts) != NYU_TEST_FRAMES:
            raise CoverageError(
                f"an evaluation over the NYU test split must see {NYU_TEST_FRAMES} frames, saw {len(counts)}"
            )
        if identity.get("official_test_frames") is False:  # RSIDE's nyu2_test.csv names its frames
            raise CoverageError(
                f"{identity.get('path')}: its {NYU_TEST_FRAMES} test frames are not the official "
                f"test split (splits.mat testNdxs); their names give other frame numbers"
            )


def network_input(
    image: torch.Tensor, protocol: Any, geometry: InputGeometry | None, input_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """The tensor the network gets for a batch of preprocessed images (B,3,H,W).

    With ``geometry``: the training geometry, checked (``GeometryError`` on a mismatch) and resized
    bilinearly (align_corners=False, as in training) to ``geometry.network_input_hw``. Without (data that
    declares no geometry, e.g. test doubles): the images as they are, resized to ``input_size`` if given.
    """
    if geometry is None:
        target = tuple(input_size) if input_size is not None else tuple(image.shape[-2:])
    else:
        geometry.check_image(tuple(image.shape[-2:]), protocol)
        target = geometry.network_input_hw(tuple(image.shape[-2:]))
    if tuple(image.shape[-2:]) == target:
        return image
    return F.interpolate(image, size=target, mode="bilinear", align_corners=False)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    protocol: Any,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    input_size: tuple[int, int] | None = None,
    amp: str = "none",
    keep_frames: Sequence[int] = (),
    num_workers: int = 0,
    geometry: InputGeometry | None = None,
) -> EvalResult:
    """Evaluate ``model`` (in eval mode, restored afterwards) on every item of ``dataset`` under ``protocol``.

    Items follow the data contract: image (3,H,W) normalised, depth (1,h,w) metres, valid (1,h,w), frame.
    ``geometry`` is the run's training input geometry (see ``network_input``; it replaces ``input_size``,
    which must then agree with ``geometry.net_hw``); ``keep_frames`` are stored for predictions.h5.
    """
    _check_geometry(protocol, geometry, input_size)
    device = torch.device(device)
    was_training = model.training
    model.eval()
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=loader_workers(num_workers),
        worker_init_fn=_worker_init,  # workers leave SIGTERM/SIGINT to this process, as training's do
        generator=torch.Generator().manual_seed(0),
    )  # leaves the global RNG alone
    tally = _Tally(protocol, keep_frames)
    autocast = amp_autocast(amp, device)
    try:
        for batch in loader:
            image = batch["image"].to(device, non_blocking=True)
            depth, valid = batch["depth"].to(device), batch["valid"].to(device)
            x = network_input(image, protocol, geometry, input_size)
            tally.fed.add(tuple(x.shape[-2:]))
            pred = _prediction(model, x, protocol, tuple(depth.shape[-2:]), autocast)
            tally.add(batch["frame"].tolist(), image, depth, protocol_mask(depth, valid, protocol), pred)
    finally:
        model.train(was_training)
    check_coverage(tally.frames, dataset)
    return tally.result(geometry)


def _check_geometry(protocol: Any, geometry: InputGeometry | None, input_size: tuple[int, int] | None) -> None:
    """``GeometryError`` when the protocol or ``input_size`` disagrees with the training geometry."""
    if geometry is None:
        return
    check_protocol_geometry(protocol, geometry)
    if input_size is not None and tuple(input_size) != tuple(geometry.net_hw):
        raise GeometryError(
            f"input_size {tuple(input_size)} differs from the training geometry's network "
            f"input {tuple(geometry.net_hw)}"
        )


class _Tally:
    """What an evaluation gathers batch by batch: each frame's statistics and boundary metrics, the moments
    of the scored ground truth, the input sizes fed, and the arrays of the frames kept for predictions.h5."""

    def __init__(self, protocol: Any, keep_frames: Sequence[int]):
        self.protocol = protocol
        self.keep = {int(f) for f in keep_frames}
        self.frames: list[int] = []
        self.stats: list[ImageStats] = []
        self.boundary: list[dict[str, float]] = []
        self.moments = [0.0, 0.0, 0]  # sum d*, sum d*^2, count over the protocol's scored pixels (float64 sums)
        self.fed: set[tuple[int, int]] = set()
        self.kept: dict[int, dict[str, np.ndarray]] = {}

    def add(
        self, frames: list[int], image: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor, pred: torch.Tensor
    ) -> None:
        scored = depth[mask].double()
        self.moments[0] += float(scored.sum())
        self.moments[1] += float(scored.square().sum())
        self.moments[2] += int(scored.numel())
        for i, frame in enumerate(frames):
            try:
                self.stats.append(image_stats(pred[i], depth[i], mask[i]))
            except NoValidPixelsError as exc:
                raise NoValidPixelsError(f"frame {frame}: {exc} under protocol {self.protocol.name!r}") from None
            self.boundary.append(boundary_metrics(pred[i, 0].cpu(), depth[i, 0].cpu(), mask[i, 0].cpu()))
            self.frames.append(int(frame))
            if frame in self.keep:
                self.kept[int(frame)] = _prediction_arrays(image[i], depth[i], mask[i], pred[i])

    def result(self, geometry: InputGeometry | None) -> EvalResult:
        """Everything gathered, in ascending frame order."""
        order = sorted(range(len(self.frames)), key=self.frames.__getitem__)
        predictions = None
        if self.kept:
            ks = sorted(self.kept)
            predictions = {
                key: np.stack([self.kept[f][key] for f in ks]) for key in ("image", "depth", "valid", "pred")
            }
            predictions["frame"] = np.asarray(ks, dtype=np.int64)
        return EvalResult(
            protocol=_protocol_dict(self.protocol),
            headline_reduction=self.protocol.reduction,
            frames=[self.frames[i] for i in order],
            stats=[self.stats[i] for i in order],
            boundary=[self.boundary[i] for i in order],
            predictions=predictions,
            network_input={
                "geometry": geometry.as_dict() if geometry is not None else None,
                "hw": [list(hw) for hw in sorted(self.fed)],
            },
            depth_moments=(self.moments[0], self.moments[1], self.moments[2]),
        )


def _prediction(model: nn.Module, x: torch.Tensor, protocol: Any, gt_hw: tuple[int, int], autocast) -> torch.Tensor:
    """``_predict``, averaged with the prediction of the mirrored image (flipped back) under ``flip_tta``
    (AdaBins: each clipped, then averaged)."""
    pred = _predict(model, x, protocol, gt_hw, autocast)
    if getattr(protocol, "flip_tta", False):
        mirrored = _predict(model, x.flip(-1), protocol, gt_hw, autocast).flip(-1)
        pred = (pred + mirrored) / 2
    return pred


def _predict(model: nn.Module, x: torch.Tensor, protocol: Any, gt_hw: tuple[int, int], autocast) -> torch.Tensor:
    """The model's prediction for ``x``, upsampled to the ground truth's (h, w) and clipped per protocol."""
    with autocast:
        pred = model(x)
    pred = F.interpolate(pred.float(), size=gt_hw, mode="bilinear", align_corners=bool(protocol.upsample_align_corners))
    if protocol.clamp_prediction and (protocol.min_depth_m, protocol.max_depth_m) != (None, None):
        pred = pred.clamp(min=protocol.min_depth_m, max=protocol.max_depth_m)
    return pred


def write_evaluation(run_dir: RunDir, result: EvalResult, meta: dict[str, Any]) -> dict[str, Any]:
    """Write per_image.csv, predictions.h5 and, last (it marks the run complete), metrics.json."""
    write_csv_atomic(run_dir.per_image_path, result.per_image_rows(), per_image_columns())
    if result.predictions is not None:
        _write_predictions(run_dir, result.predictions, meta)
    metrics = {
        **meta,
        "protocol": result.protocol,
        "network_input": result.network_input,
        "headline_reduction": result.headline_reduction,
        "n_frames": len(result.frames),
        "reductions": result.reductions(),
        "boundary": result.boundary_summary(),
        "reference": result.constant_reference(),
    }
    write_json_atomic(run_dir.metrics_path, metrics)
    return metrics


def _write_predictions(run_dir: RunDir, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """predictions.h5, built in memory (six frames: a few MiB) and written as bytes: HDF5 writing onto a full
    disk itself can crash the process (a segfault at close), where a plain write raises DiskFullError."""
    import h5py

    image = io.BytesIO()
    with h5py.File(image, "w") as f:
        for key in ("frame", "image", "depth", "valid", "pred"):
            f.create_dataset(key, data=arrays[key], compression="gzip" if arrays[key].ndim > 1 else None)
        for key in ("run_id", "arch", "backbone"):
            f.attrs[key] = str(meta.get(key, ""))
    write_bytes_atomic(run_dir.predictions_path, image.getvalue())


def _prediction_arrays(
    image: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, pred: torch.Tensor
) -> dict[str, np.ndarray]:
    """One frame for predictions.h5: RGB uint8 (de-normalised, at the ground truth's size), depth, mask."""
    mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=image.device).view(3, 1, 1)
    rgb = (image.float() * std + mean).clamp(0, 1)
    if rgb.shape[-2:] != depth.shape[-2:]:
        rgb = F.interpolate(rgb[None], size=tuple(depth.shape[-2:]), mode="bilinear", align_corners=False)[0]
    return {
        "image": (rgb * 255).round().byte().permute(1, 2, 0).cpu().numpy(),
        "depth": depth[0].float().cpu().numpy(),
        "valid": valid[0].bool().cpu().numpy(),
        "pred": pred[0].float().cpu().numpy(),
    }


def _protocol_dict(protocol: Any) -> dict[str, Any]:
    d = protocol.as_dict() if hasattr(protocol, "as_dict") else dict(vars(protocol))
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def headline_summary(metrics: dict[str, Any]) -> dict[str, float]:
    """The headline reduction's numbers from a metrics.json dict (NaN when absent)."""
    red = metrics.get("reductions", {}).get(metrics.get("headline_reduction", "rside"), {})
    return {k: red.get(k, math.nan) for k in DEPTH_METRICS}
