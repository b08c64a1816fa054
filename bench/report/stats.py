"""Bootstrap confidence intervals over test frames, and the paired bootstrap test of two models.

Every reduction of ``bench.metrics`` is a function of the per-frame sufficient statistics in per_image.csv
(``ImageStats``), so a bootstrap resample is a vector of counts ``w`` (how often each frame is drawn) and the
resampled metric is the same reduction with each frame weighted by its count. ``reduce_weighted`` does this
for B resamples at once (a (B, N) count matrix times the (N, k) statistics); with all counts 1 it equals
``bench.metrics.reduce_metrics``, which gives the point estimates.

Method: percentile bootstrap, frames resampled with replacement, ``N_BOOTSTRAP`` resamples from a fixed
seed. Several seeds of one run: each resample draws the same frames for every seed and the statistic is the
mean over seeds, so the interval covers test-set sampling of the seed-averaged metric (seed-to-seed spread is
reported separately as mean +/- std). A paired comparison draws the same frames for both models, on the
frames both evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.metrics import DEPTH_METRICS, REDUCTIONS, STAT_COLUMNS, ImageStats, reduce_metrics

__all__ = [
    "CI_LEVEL",
    "BOOTSTRAP_SEED",
    "N_BOOTSTRAP",
    "Estimate",
    "FrameStats",
    "PairedDifference",
    "bootstrap_estimate",
    "common_frames",
    "frame_stats",
    "paired_bootstrap",
    "paired_differences",
    "point_metrics",
    "reduce_weighted",
    "resample_counts",
]

N_BOOTSTRAP = 2000  # resamples; percentile endpoints then move by < ~0.1 standard error between seeds
CI_LEVEL = 0.95
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class FrameStats:
    """Sufficient statistics of one run: frames (N,) and stats (N, 12) in STAT_COLUMNS order."""

    frames: np.ndarray
    stats: np.ndarray

    def take(self, frames: np.ndarray) -> FrameStats:
        """The rows of the given frames, in that order (KeyError naming a frame this run lacks)."""
        pos = {int(f): i for i, f in enumerate(self.frames)}
        missing = [int(f) for f in frames if int(f) not in pos]
        if missing:
            raise KeyError(f"frames not evaluated by this run: {missing[:5]}")
        idx = np.array([pos[int(f)] for f in frames], dtype=np.int64)
        return FrameStats(self.frames[idx], self.stats[idx])


@dataclass(frozen=True)
class Estimate:
    """A metric with its bootstrap interval; over several seeds also the seed mean and std."""

    value: float  # mean over seeds of each seed's metric (a single seed: its metric)
    ci_low: float
    ci_high: float
    n_frames: int
    n_seeds: int
    seed_std: float  # std over seeds (ddof=1); NaN for one seed
    per_seed: tuple[float, ...]  # each seed's metric, in the order the seeds were given


@dataclass(frozen=True)
class PairedDifference:
    """theta(a) - theta(b) on common frames (or relative: / theta(b)), with its interval and p-value."""

    metric: str
    diff: float
    ci_low: float
    ci_high: float
    p_value: float  # smallest two-sided level at which the percentile interval excludes 0 (resolution 1/B)
    n_frames: int
    relative: bool

    @property
    def significant(self) -> bool:
        """The (1 - alpha) interval excludes zero."""
        return bool(self.ci_low > 0 or self.ci_high < 0)


def frame_stats(per_image: pd.DataFrame) -> FrameStats:
    """The per_image.csv columns the reductions need, as float64 arrays sorted by frame."""
    df = per_image.sort_values("frame")
    return FrameStats(df["frame"].to_numpy(np.int64), df[list(STAT_COLUMNS)].to_numpy(np.float64))


def point_metrics(fs: FrameStats, reduction: str) -> dict[str, float]:
    """The metrics of one run over its frames, by ``bench.metrics.reduce_metrics`` (the runner's own code)."""
    rows = [
        ImageStats(
            n=int(r[0]),
            sum_sq=r[1],
            sum_abs_rel=r[2],
            sum_sq_rel=r[3],
            sum_log10=r[4],
            sum_sq_log=r[5],
            lt=(int(r[6]), int(r[7]), int(r[8])),
            le=(int(r[9]), int(r[10]), int(r[11])),
        )
        for r in fs.stats
    ]
    return reduce_metrics(rows, reduction)


def resample_counts(n_frames: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_frames) int counts: how often each frame is drawn in resample b (rows sum to N)."""
    draws = rng.integers(0, n_frames, size=(n_boot, n_frames))
    flat = draws + (np.arange(n_boot) * n_frames)[:, None]
    return np.bincount(flat.ravel(), minlength=n_boot * n_frames).reshape(n_boot, n_frames)


def reduce_weighted(stats: np.ndarray, weights: np.ndarray, reduction: str) -> dict[str, np.ndarray]:
    """Each metric of ``reduction`` for every row of ``weights`` (B, N) over ``stats`` (N, 12), as (B,)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; available: {', '.join(REDUCTIONS)}")
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    n = stats[:, 0]
    sums, lt, le = stats[:, 1:6], stats[:, 6:9], stats[:, 9:12]
    with np.errstate(invalid="ignore", divide="ignore"):
        if reduction == "pooled":
            tot = w @ stats
            means, deltas = tot[:, 1:6] / tot[:, :1], tot[:, 6:9] / tot[:, :1]
            return _named(np.sqrt(means[:, 0]), means[:, 1], means[:, 2], means[:, 3], np.sqrt(means[:, 4]), deltas)
        count = w.sum(axis=1, keepdims=True)
        per_frame = sums / n[:, None]
        if reduction == "per_image":
            per = np.column_stack(
                [np.sqrt(per_frame[:, 0]), per_frame[:, 1:4], np.sqrt(per_frame[:, 4]), lt / n[:, None]]
            )
            m = (w @ per) / count
            return _named(m[:, 0], m[:, 1], m[:, 2], m[:, 3], m[:, 4], m[:, 5:8])
        # rside: means of per-image means; rmse and rmse_log from the mean per-image squared error; deltas <=
        m = (w @ np.column_stack([per_frame, le / n[:, None]])) / count
        return _named(np.sqrt(m[:, 0]), m[:, 1], m[:, 2], m[:, 3], np.sqrt(m[:, 4]), m[:, 5:8])


def bootstrap_estimate(
    seeds: Sequence[FrameStats],
    reduction: str,
    metrics: Sequence[str] = DEPTH_METRICS,
    n_boot: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> dict[str, Estimate]:
    """Point value, percentile CI and seed spread of each metric; all seeds must cover the same frames."""
    seeds = _same_frames(seeds)
    values = [point_metrics(fs, reduction) for fs in seeds]
    counts = resample_counts(len(seeds[0].frames), n_boot, np.random.default_rng(seed))
    boot = [reduce_weighted(fs.stats, counts, reduction) for fs in seeds]
    out = {}
    for m in metrics:
        per_seed = np.array([v[m] for v in values])
        dist = np.mean([b[m] for b in boot], axis=0)
        low, high = _percentiles(dist, level)
        out[m] = Estimate(
            value=float(per_seed.mean()),
            ci_low=low,
            ci_high=high,
            n_frames=len(seeds[0].frames),
            n_seeds=len(seeds),
            seed_std=float(per_seed.std(ddof=1)) if len(seeds) > 1 else math.nan,
            per_seed=tuple(float(v) for v in per_seed),
        )
    return out


def paired_bootstrap(
    a: Sequence[FrameStats],
    b: Sequence[FrameStats],
    reduction: str,
    metric: str = "rmse",
    relative: bool = False,
    n_boot: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> PairedDifference:
    """theta(a) - theta(b) (``relative``: divided by theta(b)) resampling the same frames for both models.

    ``a`` and ``b`` are the seeds of each model (theta = mean over seeds). Only frames evaluated by every run
    count; callers that need to know whether frame sets differed use ``common_frames``.
    """
    tests = [(metric, relative)]
    return paired_differences(a, b, reduction, tests, n_boot=n_boot, seed=seed, level=level)[(metric, relative)]


def paired_differences(
    a: Sequence[FrameStats],
    b: Sequence[FrameStats],
    reduction: str,
    tests: Sequence[tuple[str, bool]],
    n_boot: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> dict[tuple[str, bool], PairedDifference]:
    """``paired_bootstrap`` for each (metric, relative) of ``tests``, all from one resampling of the frames.

    The common frames, the resample counts and both models' metrics are computed once; each test's result
    equals ``paired_bootstrap(a, b, reduction, metric, relative, n_boot, seed, level)``.
    """
    frames = common_frames([*a, *b])
    if len(frames) == 0:
        raise ValueError("the two models have no evaluated frame in common; a paired test is impossible")
    a, b = [fs.take(frames) for fs in a], [fs.take(frames) for fs in b]
    counts = resample_counts(len(frames), n_boot, np.random.default_rng(seed))
    metrics = {m for m, _ in tests}

    def theta(runs: Sequence[FrameStats], weights: np.ndarray) -> dict[str, np.ndarray]:
        per_run = [reduce_weighted(fs.stats, weights, reduction) for fs in runs]
        return {m: np.mean([r[m] for r in per_run], axis=0) for m in metrics}

    ones = np.ones((1, len(frames)))
    ta, tb, da, db = theta(a, ones), theta(b, ones), theta(a, counts), theta(b, counts)
    out = {}
    for metric, relative in tests:
        diff, dist = ta[metric][0] - tb[metric][0], da[metric] - db[metric]
        if relative:
            diff, dist = diff / tb[metric][0], dist / db[metric]
        low, high = _percentiles(dist, level)
        out[(metric, relative)] = PairedDifference(
            metric=metric,
            diff=float(diff),
            ci_low=low,
            ci_high=high,
            p_value=_p_value(dist),
            n_frames=len(frames),
            relative=relative,
        )
    return out


def common_frames(runs: Sequence[FrameStats]) -> np.ndarray:
    """Sorted frames evaluated by every run."""
    common = set(runs[0].frames.tolist())
    for fs in runs[1:]:
        common &= set(fs.frames.tolist())
    return np.array(sorted(common), dtype=np.int64)


def _same_frames(seeds: Sequence[FrameStats]) -> list[FrameStats]:
    if not seeds:
        raise ValueError("no runs to estimate from")
    frames = common_frames(seeds)
    if any(len(fs.frames) != len(frames) for fs in seeds):
        sizes = [len(fs.frames) for fs in seeds]
        raise ValueError(f"seeds of one run evaluated different frames ({sizes} frames, {len(frames)} common)")
    return [fs.take(frames) for fs in seeds]


def _percentiles(dist: np.ndarray, level: float) -> tuple[float, float]:
    if np.isnan(dist).any():
        return math.nan, math.nan
    alpha = (1 - level) / 2
    low, high = np.quantile(dist, [alpha, 1 - alpha])
    return float(low), float(high)


def _p_value(dist: np.ndarray) -> float:
    if np.isnan(dist).any():
        return math.nan
    return min(1.0, 2 * min(float(np.mean(dist <= 0)), float(np.mean(dist >= 0))))


def _named(rmse, abs_rel, sq_rel, log10, rmse_log, deltas) -> dict[str, np.ndarray]:
    cols = (rmse, abs_rel, sq_rel, log10, rmse_log, deltas[:, 0], deltas[:, 1], deltas[:, 2])
    return dict(zip(DEPTH_METRICS, cols, strict=True))
