"""Bootstrap confidence intervals over test frames, and the paired bootstrap test of two models.

Every reduction of ``bench.metrics`` is a function of the per-frame sufficient statistics in per_image.csv
(``ImageStats``), so a bootstrap resample is a vector of counts ``w`` (how often each frame is drawn) and the
resampled metric is the same reduction with each frame weighted by its count. ``reduce_weighted`` does this
for B resamples at once (a (B, N) count matrix times the (N, k) statistics); with all counts 1 it equals
``bench.metrics.reduce_metrics``, which gives the point estimates.

Method: frames resampled with replacement, ``N_BOOTSTRAP`` resamples from a fixed seed; each resample draws
the same frames for every seed (and, in a paired comparison, for both models, on the frames both evaluated),
and the statistic is the mean over seeds.

- One seed (of either model): percentile bootstrap interval. It covers test-frame sampling only; training-seed
  noise is unknown (``Interval.covers == FRAMES_ONLY``).
- At least two seeds of every model: t-interval ``estimate +- t(df) * se`` with
  ``se^2 = s_a^2/n_a (+ s_b^2/n_b) + v_frames``: the seed-to-seed variance of each model's metric (sample
  variance over its seeds, on the same frames, so test sampling does not enter it) plus the bootstrap variance
  of the seed-mean statistic (test-frame sampling). ``df`` is Welch-Satterthwaite's, the frame term counting as
  known (infinite df): with 3 seeds per model and seed noise dominating, df ~ 2-4 and t ~ 3-4.3, which is what
  honest coverage with 3 seeds costs (``seed_frame_interval``; coverage simulated in
  tests/bench/report/test_stats.py). Relative differences use the delta method for the seed term.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from bench.metrics import DEPTH_METRICS, REDUCTIONS, STAT_COLUMNS, ImageStats, reduce_metrics

__all__ = [
    "CI_LEVEL",
    "BOOTSTRAP_SEED",
    "FRAMES_ONLY",
    "N_BOOTSTRAP",
    "SEEDS_AND_FRAMES",
    "Estimate",
    "Interval",
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
    "seed_frame_interval",
    "t_cdf",
    "t_quantile",
]

N_BOOTSTRAP = 2000  # resamples; percentile endpoints then move by < ~0.1 standard error between seeds
CI_LEVEL = 0.95
BOOTSTRAP_SEED = 0
# What an interval covers (Estimate.covers, PairedDifference.covers).
FRAMES_ONLY = "test frames only (one seed: seed noise unknown)"
SEEDS_AND_FRAMES = "training seeds and test frames"
_T_GRID = 4001  # Simpson points for the t CDF; error < 1e-9 for df >= 1 on the ranges used here


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
    covers: str = FRAMES_ONLY  # what the interval covers: FRAMES_ONLY or SEEDS_AND_FRAMES


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided interval, p-value (H0: 0) and degrees of freedom."""

    value: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float


@dataclass(frozen=True)
class PairedDifference:
    """theta(a) - theta(b) on common frames (or relative: / theta(b)), with its interval and p-value."""

    metric: str
    diff: float
    ci_low: float
    ci_high: float
    p_value: float  # two-sided: percentile-bootstrap (one seed, resolution 1/B) or t-test (several seeds)
    n_frames: int
    relative: bool
    n_seeds_a: int = 1
    n_seeds_b: int = 1
    covers: str = FRAMES_ONLY  # FRAMES_ONLY or SEEDS_AND_FRAMES
    df: float = math.inf  # degrees of freedom of the t-interval (inf: percentile bootstrap)

    @property
    def n_seeds(self) -> int:
        """Seeds of the model with fewer seeds (what the verdict rules count)."""
        return min(self.n_seeds_a, self.n_seeds_b)

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
        if len(seeds) > 1:
            iv = seed_frame_interval(per_seed, None, dist, level=level)
            low, high, covers = iv.ci_low, iv.ci_high, SEEDS_AND_FRAMES
        else:
            (low, high), covers = _percentiles(dist, level), FRAMES_ONLY
        out[m] = Estimate(
            value=float(per_seed.mean()),
            ci_low=low,
            ci_high=high,
            n_frames=len(seeds[0].frames),
            n_seeds=len(seeds),
            seed_std=float(per_seed.std(ddof=1)) if len(seeds) > 1 else math.nan,
            per_seed=tuple(float(v) for v in per_seed),
            covers=covers,
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

    def per_seed(runs: Sequence[FrameStats]) -> dict[str, np.ndarray]:
        values = [reduce_weighted(fs.stats, np.ones((1, len(frames))), reduction) for fs in runs]
        return {m: np.array([v[m][0] for v in values]) for m in metrics}

    va, vb, da, db = per_seed(a), per_seed(b), theta(a, counts), theta(b, counts)
    several = len(a) > 1 and len(b) > 1
    out = {}
    for metric, relative in tests:
        ta, tb = float(va[metric].mean()), float(vb[metric].mean())
        diff, dist = ta - tb, da[metric] - db[metric]
        if relative:
            diff, dist = diff / tb, dist / db[metric]
        if several:
            iv = seed_frame_interval(va[metric], vb[metric], dist, relative=relative, level=level)
            low, high, p, df, covers = iv.ci_low, iv.ci_high, iv.p_value, iv.df, SEEDS_AND_FRAMES
        else:
            (low, high), p, df, covers = _percentiles(dist, level), _p_value(dist), math.inf, FRAMES_ONLY
        out[(metric, relative)] = PairedDifference(
            metric=metric,
            diff=float(diff),
            ci_low=low,
            ci_high=high,
            p_value=p,
            n_frames=len(frames),
            relative=relative,
            n_seeds_a=len(a),
            n_seeds_b=len(b),
            covers=covers,
            df=df,
        )
    return out


def seed_frame_interval(
    values_a: np.ndarray,
    values_b: np.ndarray | None,
    boot: np.ndarray,
    relative: bool = False,
    level: float = CI_LEVEL,
) -> Interval:
    """t-interval of mean(a) - mean(b) (``relative``: / mean(b); ``values_b`` None: of mean(a) alone).

    ``values_a`` (n_a,) and ``values_b`` (n_b,) are each seed's metric on the same frames (n >= 2 each);
    ``boot`` (B,) is the bootstrap distribution of the same statistic of the seed means (frames resampled).
    se^2 = seed term (delta method when relative) + var(boot); df by Welch-Satterthwaite (frame term: inf).
    """
    a = np.asarray(values_a, dtype=np.float64)
    b = None if values_b is None else np.asarray(values_b, dtype=np.float64)
    if len(a) < 2 or (b is not None and len(b) < 2):
        raise ValueError("a seed interval needs at least 2 seeds per model")
    ma = a.mean()
    parts = [(a.var(ddof=1) / len(a), len(a) - 1)]  # (variance of the mean, its df)
    if b is None:
        value = ma
    else:
        mb = b.mean()
        vb = b.var(ddof=1) / len(b)
        if relative:
            value = ma / mb - 1
            parts = [(parts[0][0] / mb**2, parts[0][1]), (vb * ma**2 / mb**4, len(b) - 1)]
        else:
            value = ma - mb
            parts.append((vb, len(b) - 1))
    boot = np.asarray(boot, dtype=np.float64)
    if np.isnan(boot).any() or not np.isfinite(value):
        return Interval(float(value), math.nan, math.nan, math.nan, math.nan)
    v_frames = float(boot.var(ddof=1)) if len(boot) > 1 else 0.0
    var = sum(v for v, _ in parts) + v_frames
    denom = sum(v**2 / d for v, d in parts)
    df = var**2 / denom if denom > 0 else math.inf
    if var == 0:
        return Interval(float(value), float(value), float(value), 1.0 if value == 0 else 0.0, df)
    se = math.sqrt(var)
    t = t_quantile(0.5 + level / 2, df)
    p = 2 * (1 - t_cdf(abs(value) / se, df))
    return Interval(float(value), float(value - t * se), float(value + t * se), float(min(1.0, p)), float(df))


def t_cdf(x: float, df: float) -> float:
    """Student t cumulative distribution at ``x`` with ``df`` (> 0, may be fractional or inf) degrees of freedom."""
    if math.isinf(df) or df > 1e6:
        return NormalDist().cdf(x)
    if x < 0:
        return 1 - t_cdf(-x, df)
    # the substitution x = tan(u) bounds the range for heavy tails: integrate the density over u in [0, atan x]
    u = np.linspace(0.0, math.atan(x), _T_GRID)
    t = np.tan(u)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    f = np.exp(log_c - (df + 1) / 2 * np.log1p(t**2 / df)) / np.cos(u) ** 2
    h = (u[-1] - u[0]) / (_T_GRID - 1)
    simpson = h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
    return 0.5 + float(simpson)


def t_quantile(p: float, df: float) -> float:
    """Inverse of ``t_cdf`` (bisection to 1e-10), e.g. t_quantile(0.975, 2) = 4.3027."""
    if not 0 < p < 1:
        raise ValueError(f"t_quantile: p must be in (0, 1), got {p}")
    if math.isinf(df) or df > 1e6:
        return NormalDist().inv_cdf(p)
    if p < 0.5:
        return -t_quantile(1 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-10:
            break
    return (lo + hi) / 2


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
