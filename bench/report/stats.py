"""Bootstrap confidence intervals over test frames, and the paired bootstrap test of two models.

Every reduction of ``bench.metrics`` is a function of the per-frame sufficient statistics in per_image.csv
(``ImageStats``), so a bootstrap resample is a vector of counts ``w`` (how often each frame is drawn) and the
resampled metric is the same reduction with each frame weighted by its count. ``reduce_weighted`` does this
for B resamples at once (a (B, N) count matrix times the (N, k) statistics); with all counts 1 it equals
``bench.metrics.reduce_metrics``, which gives the point estimates.

Method: frames resampled with replacement, ``N_BOOTSTRAP`` resamples from a fixed seed; each resample draws
the same frames for every seed (and, in a paired comparison, for both models, on the frames both evaluated),
and the statistic is the mean over seeds. What an interval covers, and how (N test frames):

- One seed (of either model): the frames-only interval (``Interval.covers == FRAMES_ONLY``): it covers the
  metric this trained model would have on the population of test frames; training-seed noise is unknown.
  It is the percentile bootstrap interval read at the expanded level (Hesterberg's expanded percentile
  interval, ``expanded_level``) at which it is as wide as a t-interval with N - 1 df: the plain percentile
  interval is too narrow with few frames (the bootstrap spread is sqrt((N - 1)/N) of the standard error, and
  its tails are the normal's, not t's), e.g. at 16 frames it reads the 1.4 and 98.6 percentiles for a 95 %
  interval. Its p-value is the percentile bootstrap's, mapped through the same expansion.
- At least two seeds of every model: t-interval ``estimate +- t(df) * se`` with
  ``se^2 = s_a^2/n_a (+ s_b^2/n_b) + v_frames``: the seed-to-seed variance of each model's metric (sample
  variance over its seeds, on the same frames, so test sampling does not enter it) plus the frame term, the
  bootstrap variance of the seed-mean statistic times N/(N - 1) (the bootstrap variance of a mean is the
  plug-in variance over N, biased low by (N - 1)/N). ``df`` is Welch-Satterthwaite's over the seed terms
  (n - 1 df each) and the frame term (an estimated variance: N - 1 df). It covers the expected metric over
  training seeds and test frames. With 3 seeds per model and seed noise dominating, df ~ 2-4 and t ~ 3-4.3,
  which is what honest coverage with 3 seeds costs; with few frames the frame term's own uncertainty widens
  it further (``seed_frame_interval``). Relative differences use the delta method for the seed term.

Coverage is checked by simulation (tests/bench/report/test_stats.py) at 16 and 654 frames, 1, 3 and 5 seeds,
absolute and relative differences, with normal and with skewed (log-normal, frame-dominated) per-frame
errors. Nominal 95 % intervals cover 93.5-96.5 % there (20,000 simulated experiments per case, Monte-Carlo
standard error <= 0.2 points); treating the frame term as known (and the plain percentile interval for one
seed) covered 90.6-92.7 % at 16 frames in the skewed case, 92 % with one seed in the normal case. Heavier
skew than simulated, with only 16 frames, can still under-cover by a point or two: the t-interval takes the
frame term to be roughly normal, and the one-seed interval is lowest (93.5 %) in the skewed case.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from bench.metrics import DEPTH_METRICS, REDUCTIONS, STAT_COLUMNS, ImageStats, reduce_metrics

__all__ = [
    "CI_LEVEL",
    "BOOTSTRAP_SEED",
    "FRAMES_ONLY",
    "MAX_SEEDS_ESTIMATE",
    "N_BOOTSTRAP",
    "SEEDS_AND_FRAMES",
    "SeedsEstimate",
    "Estimate",
    "Interval",
    "FrameStats",
    "PairedDifference",
    "bootstrap_estimate",
    "common_frames",
    "expanded_level",
    "frame_stats",
    "frames_only_interval",
    "paired_bootstrap",
    "paired_differences",
    "point_metrics",
    "projected_interval",
    "reduce_weighted",
    "resample_counts",
    "seed_frame_interval",
    "seeds_to_decide",
    "t_cdf",
    "t_quantile",
]

N_BOOTSTRAP = 2000  # resamples; percentile endpoints then move by < ~0.1 standard error between seeds
MAX_SEEDS_ESTIMATE = 50  # "what would decide it": seeds per model searched; more is not a plan anyone runs
CI_LEVEL = 0.95
BOOTSTRAP_SEED = 0
# What an interval covers (Estimate.covers, PairedDifference.covers).
FRAMES_ONLY = "test frames only (one seed: seed noise unknown)"
SEEDS_AND_FRAMES = "training seeds and test frames"
# Gauss-Legendre nodes for the t CDF (over u in [0, atan |x|], x = tan u): absolute error < 1e-8 for df >= 1
# and |x| <= 1000, checked against 30-digit quadrature
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(64)
_NORMAL_DF = 1e6  # above this, Student's t is the normal distribution to ~1e-7


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
    df: float = math.inf  # the interval's degrees of freedom: Welch-Satterthwaite (several seeds), frames - 1 (one)
    # What the interval's variance is made of (several seeds; NaN with one): each model's seed-to-seed variance
    # of one seed's value on the statistic's scale (relative: by the delta method), and the frame term.
    seed_var_a: float = math.nan
    seed_var_b: float = math.nan
    frame_var: float = math.nan  # the frame term's part common to every seed (the test frames' own)
    frame_seed_var: float = math.nan  # its part that differs between seeds, for one seed of each model

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
        n_frames = len(seeds[0].frames)
        if len(seeds) > 1:
            iv = seed_frame_interval(per_seed, None, dist, level=level, n_frames=n_frames)
            low, high, covers = iv.ci_low, iv.ci_high, SEEDS_AND_FRAMES
        else:
            (low, high), covers = frames_only_interval(dist, n_frames, level), FRAMES_ONLY
        out[m] = Estimate(
            value=float(per_seed.mean()),
            ci_low=low,
            ci_high=high,
            n_frames=n_frames,
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


def _per_seed(
    runs: Sequence[FrameStats], counts: np.ndarray, reduction: str, metrics: set[str]
) -> dict[str, np.ndarray]:
    """metric -> (seeds, B): each seed's statistic on each of the B frame weightings in ``counts`` (B x frames;
    one row of ones: the statistic itself)."""
    per_run = [reduce_weighted(fs.stats, counts, reduction) for fs in runs]
    return {m: np.array([r[m] for r in per_run]) for m in metrics}


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
    va, vb = ({m: v[:, 0] for m, v in _per_seed(runs, np.ones((1, len(frames))), reduction, metrics).items()}
              for runs in (a, b))  # fmt: skip
    ra, rb = (_per_seed(runs, counts, reduction, metrics) for runs in (a, b))
    da, db = {m: v.mean(axis=0) for m, v in ra.items()}, {m: v.mean(axis=0) for m, v in rb.items()}
    several = len(a) > 1 and len(b) > 1
    out = {}
    for metric, relative in tests:
        ta, tb = float(va[metric].mean()), float(vb[metric].mean())
        diff, dist = ta - tb, da[metric] - db[metric]
        if relative:
            diff, dist = diff / tb, dist / db[metric]
        n = len(frames)
        spread = (math.nan,) * 4
        if several:
            iv = seed_frame_interval(va[metric], vb[metric], dist, relative=relative, level=level, n_frames=n)
            low, high, p, df, covers = iv.ci_low, iv.ci_high, iv.p_value, iv.df, SEEDS_AND_FRAMES
            spread = _variance_parts(va[metric], vb[metric], ra[metric], rb[metric], dist, relative, n)
        else:
            low, high = frames_only_interval(dist, n, level)
            p, df, covers = _frames_only_p_value(dist, n), max(n - 1, 1), FRAMES_ONLY
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
            seed_var_a=spread[0],
            seed_var_b=spread[1],
            frame_var=spread[2],
            frame_seed_var=spread[3],
        )
    return out


def _variance_parts(
    a: np.ndarray,
    b: np.ndarray,
    boot_a: np.ndarray,
    boot_b: np.ndarray,
    boot: np.ndarray,
    relative: bool,
    n_frames: int,
) -> tuple[float, float, float, float]:
    """What ``seed_frame_interval``'s se^2 = s_a/n_a + s_b/n_b + frame term is made of: (one seed's variance of
    a, of b, on the statistic's scale (relative: the delta method's); the frame term's part common to all
    seeds; its part that differs between seeds, for one seed of each model).

    The frame term is the bootstrap variance of the statistic of the seed means. Part of it is the test frames'
    own (hard frames are hard for every seed) and stays whatever the seeds; part is each seed's own noise on
    each frame, which averages out as 1/n. With V1 the bootstrap variance of a statistic of one seed of each
    model (the mean over pairs of seeds) and V that of the seed means: V1 = c + v and V = c + v/n, where
    1/n = (1/n_a + 1/n_b)/2, give the common part c and the per-seed part v (each at least 0). Every term is
    scaled by N/(N - 1), as in the interval."""
    ma, mb = float(np.mean(a)), float(np.mean(b))
    sa, sb = float(np.var(a, ddof=1)), float(np.var(b, ddof=1))
    if relative:
        sa, sb = sa / mb**2, sb * ma**2 / mb**4
    if boot.shape[-1] < 2 or n_frames < 2:
        return sa, sb, 0.0, 0.0
    scale = n_frames / (n_frames - 1)
    pairs = min(len(boot_a), len(boot_b))
    single = [(boot_a[i] / boot_b[i] - 1) if relative else (boot_a[i] - boot_b[i]) for i in range(pairs)]
    v1 = float(np.mean([np.var(d, ddof=1) for d in single])) * scale
    v = float(np.var(boot, ddof=1)) * scale
    inv_n = (1 / len(boot_a) + 1 / len(boot_b)) / 2
    per_seed = max((v1 - v) / (1 - inv_n), 0.0)
    common = max(v - per_seed * inv_n, 0.0)
    return sa, sb, common, per_seed


@dataclass(frozen=True)
class SeedsEstimate:
    """How many seeds per model would decide an interval, estimated from its observed variances (``seeds``
    None: none up to ``MAX_SEEDS_ESTIMATE``; ``frames_limit``: not even infinitely many, the test frames' own
    noise alone is too wide)."""

    seeds: int | None
    frames_limit: bool = False


def seeds_to_decide(
    estimate: float,
    seed_var_a: float,
    seed_var_b: float,
    frame_var: float,
    frame_seed_var: float,
    n_frames: int,
    decided: Callable[[float, float], bool],
    level: float = CI_LEVEL,
    max_seeds: int = MAX_SEEDS_ESTIMATE,
) -> SeedsEstimate | None:
    """The smallest n (2 to ``max_seeds``) of seeds per model whose ``projected_interval`` a verdict rule decides
    (``decided(low, high)``); ``frames_limit`` when not even infinitely many seeds would (the common frame term
    alone is too wide). None when the variances are unknown (one seed)."""
    parts = (seed_var_a, seed_var_b, frame_var, frame_seed_var, estimate)
    if any(not math.isfinite(float(x)) for x in parts) or min(parts[:4]) < 0:
        return None

    def interval(n: float) -> tuple[float, float]:
        return projected_interval(estimate, seed_var_a, seed_var_b, frame_var, frame_seed_var, n_frames, n, level)

    if not decided(*interval(math.inf)):
        return SeedsEstimate(None, frames_limit=True)
    for n in range(2, max_seeds + 1):
        if decided(*interval(n)):
            return SeedsEstimate(n)
    return SeedsEstimate(None)


def projected_interval(
    estimate: float,
    seed_var_a: float,
    seed_var_b: float,
    frame_var: float,
    frame_seed_var: float,
    n_frames: int,
    n: float,
    level: float = CI_LEVEL,
) -> tuple[float, float]:
    """The interval ``seed_frame_interval`` would give with ``n`` seeds of each model (inf: infinitely many) if
    the estimate and the variances stayed as observed: estimate +- t(df_n) * se_n with se_n^2 = (s_a + s_b) / n
    + c + v / n (``_variance_parts``: the seed variances s_a, s_b; the frame term's common part c, which the same
    test frames keep whatever the seeds, and its per-seed part v), df_n by Welch-Satterthwaite with n - 1 df per
    seed term and N - 1 for the frame term, as in the interval itself."""
    finite = math.isfinite(n)
    seeds = [v / n for v in (seed_var_a, seed_var_b)] if finite else [0.0, 0.0]
    frame = frame_var + (frame_seed_var / n if finite else 0.0)
    var = sum(seeds) + frame
    if var <= 0:
        return estimate, estimate
    denom = sum(v**2 / (n - 1) for v in seeds if v > 0) + frame**2 / max(n_frames - 1, 1)
    half = float(t_quantile(0.5 + level / 2, var**2 / denom)) * math.sqrt(var)
    return estimate - half, estimate + half


def seed_frame_interval(
    values_a: np.ndarray,
    values_b: np.ndarray | None,
    boot: np.ndarray,
    relative: bool = False,
    level: float = CI_LEVEL,
    *,
    n_frames: int,
) -> Interval:
    """t-interval of mean(a) - mean(b) (``relative``: / mean(b); ``values_b`` None: of mean(a) alone).

    ``values_a`` (n_a,) and ``values_b`` (n_b,) are each seed's metric on the same ``n_frames`` frames (n >= 2
    each); ``boot`` (B,) is the bootstrap distribution of the same statistic of the seed means (frames
    resampled). se^2 = seed term (delta method when relative) + var(boot) * N/(N - 1); df by
    Welch-Satterthwaite, the frame term with N - 1 df. Leading dimensions (..., n_a), (..., n_b), (..., B)
    compute many intervals at once; the fields of the result are then arrays over them.
    """
    a = np.asarray(values_a, dtype=np.float64)
    b = None if values_b is None else np.asarray(values_b, dtype=np.float64)
    k_a, k_b = a.shape[-1], None if b is None else b.shape[-1]
    if k_a < 2 or (k_b is not None and k_b < 2):
        raise ValueError("a seed interval needs at least 2 seeds per model")
    ma = a.mean(axis=-1)
    parts = [(a.var(axis=-1, ddof=1) / k_a, k_a - 1)]  # (variance of the mean, its df)
    if b is None:
        value = ma
    else:
        mb = b.mean(axis=-1)
        vb = b.var(axis=-1, ddof=1) / k_b
        if relative:
            value = ma / mb - 1
            parts = [(parts[0][0] / mb**2, parts[0][1]), (vb * ma**2 / mb**4, k_b - 1)]
        else:
            value = ma - mb
            parts.append((vb, k_b - 1))
    boot = np.asarray(boot, dtype=np.float64)
    if boot.shape[-1] > 1 and n_frames > 1:
        parts.append((boot.var(axis=-1, ddof=1) * n_frames / (n_frames - 1), n_frames - 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        var = sum(v for v, _ in parts)
        denom = sum(v**2 / d for v, d in parts)
        df = np.where(denom > 0, var**2 / np.where(denom > 0, denom, 1.0), math.inf)
        se = np.sqrt(var)
        t = t_quantile(0.5 + level / 2, df)
        p = np.minimum(1.0, 2 * (1 - t_cdf(np.abs(value) / np.where(var > 0, se, 1.0), df)))
        low, high = value - t * se, value + t * se
    zero = var == 0  # every seed and every resample agree: the interval is the point
    low, high = np.where(zero, value, low), np.where(zero, value, high)
    p = np.where(zero, np.where(value == 0, 1.0, 0.0), p)
    bad = np.isnan(boot).any(axis=-1) | ~np.isfinite(value)
    out = [np.where(bad, math.nan, x) for x in (low, high, p, df)]
    if np.ndim(value) == 0:
        return Interval(float(value), *(float(x) for x in out))
    return Interval(value, *out)


def expanded_level(level: float, n_frames: int) -> float:
    """The level at which a percentile bootstrap interval over ``n_frames`` frames is as wide as the t-interval
    with n - 1 df at ``level`` (Hesterberg 2015, "What teachers should know about the bootstrap", sec. 3.4):
    Phi^-1((1 + level') / 2) = sqrt(n / (n - 1)) * t_{n-1}((1 + level) / 2). 95 % at 16 frames: 97.2 % (the
    1.4th and 98.6th percentiles); at 654 frames: 95.06 %."""
    if n_frames < 2:
        return level
    z = math.sqrt(n_frames / (n_frames - 1)) * float(t_quantile(0.5 + level / 2, n_frames - 1))
    return 2 * NormalDist().cdf(z) - 1


def frames_only_interval(boot: np.ndarray, n_frames: int, level: float = CI_LEVEL) -> tuple[Any, Any]:
    """The frames-only interval of one seed: the percentiles of the bootstrap distribution ``boot`` (..., B)
    at ``expanded_level(level, n_frames)``; NaN where ``boot`` has a NaN. Floats for a 1-d ``boot``."""
    boot = np.asarray(boot, dtype=np.float64)
    alpha = (1 - expanded_level(level, n_frames)) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha], axis=-1)
    bad = np.isnan(boot).any(axis=-1)
    low, high = np.where(bad, math.nan, low), np.where(bad, math.nan, high)
    return (float(low), float(high)) if boot.ndim == 1 else (low, high)


def t_cdf(x: Any, df: Any) -> Any:
    """Student t cumulative distribution at ``x`` with ``df`` (>= 1, may be fractional or inf) degrees of freedom.

    Arrays broadcast (a float for scalars). The density is integrated over u in [0, atan |x|] (x = tan u bounds
    the range for heavy tails) by Gauss-Legendre quadrature."""
    x, df = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(df, dtype=np.float64))
    normal = ~(df <= _NORMAL_DF)  # inf and NaN too
    d = np.where(normal, 1.0, df)
    b = np.arctan(np.abs(x))[..., None] / 2
    u = b * (_GL_NODES + 1)
    log_c = (_lgamma((d + 1) / 2) - _lgamma(d / 2) - 0.5 * np.log(d * math.pi))[..., None]
    density = np.exp(log_c - (d[..., None] + 1) / 2 * np.log1p(np.tan(u) ** 2 / d[..., None])) / np.cos(u) ** 2
    half = np.where(normal, 0.5 * _erf(np.abs(x) / math.sqrt(2)), b[..., 0] * (density @ _GL_WEIGHTS))
    out = np.where(np.isnan(x) | np.isnan(df), math.nan, 0.5 + np.sign(x) * half)
    return float(out) if out.ndim == 0 else out


def t_quantile(p: Any, df: Any) -> Any:
    """Inverse of ``t_cdf``, e.g. t_quantile(0.975, 2) = 4.3027 (0.975 within 1e-9 for p <= 0.995, df >= 1).

    Arrays broadcast (a float for scalars). Newton's method on log(tail probability) against log t, from the
    Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5), to 1e-13 in log t: three or four steps."""
    p, df = np.broadcast_arrays(np.asarray(p, dtype=np.float64), np.asarray(df, dtype=np.float64))
    if not np.all((p > 0) & (p < 1)):
        raise ValueError(f"t_quantile: p must be in (0, 1), got {p}")
    q = np.maximum(p, 1 - p)
    z = _normal_quantile(q)
    d = np.where(df <= _NORMAL_DF, df, math.inf)
    terms = (
        (z**3 + z) / 4,
        (5 * z**5 + 16 * z**3 + 3 * z) / 96,
        (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
        (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160,
    )
    x = z + sum(term / d ** (i + 1) for i, term in enumerate(terms))
    y, target = np.log(np.maximum(x, 1e-300)), np.log1p(-q)
    for _ in range(60):
        x = np.exp(y)
        tail = 1 - t_cdf(x, df)
        step = (np.log(tail) - target) * tail / (_t_pdf(x, d) * x)
        y = y + np.where(np.isfinite(step), step, 0.0)
        if np.all(~np.isfinite(step) | (np.abs(step) <= 1e-13)):
            break
    out = np.where(p < 0.5, -np.exp(y), np.exp(y))
    out = np.where(np.isnan(df), math.nan, out)
    return float(out) if out.ndim == 0 else out


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


def _frames_only_p_value(dist: np.ndarray, n_frames: int) -> float:
    """The percentile bootstrap's two-sided p-value (the level at which its interval reaches 0), mapped through
    the expansion of ``expanded_level``, so that p < 1 - level exactly when the frames-only interval excludes 0
    (up to the resolution 1/B)."""
    if np.isnan(dist).any():
        return math.nan
    p = min(1.0, 2 * min(float(np.mean(dist <= 0)), float(np.mean(dist >= 0))))
    if p in (0.0, 1.0) or n_frames < 2:
        return p
    t = NormalDist().inv_cdf(1 - p / 2) / math.sqrt(n_frames / (n_frames - 1))
    return min(1.0, 2 * (1 - t_cdf(t, n_frames - 1)))


def _t_pdf(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Student t density; ``df`` inf gives the normal density."""
    normal = np.isinf(df)
    d = np.where(normal, 1.0, df)
    log_t = _lgamma((d + 1) / 2) - _lgamma(d / 2) - 0.5 * np.log(d * math.pi) - (d + 1) / 2 * np.log1p(x**2 / d)
    return np.where(normal, np.exp(-(x**2) / 2) / math.sqrt(2 * math.pi), np.exp(log_t))


_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])
_erf = np.vectorize(math.erf, otypes=[np.float64])
_normal_quantile = np.vectorize(NormalDist().inv_cdf, otypes=[np.float64])


def _named(rmse, abs_rel, sq_rel, log10, rmse_log, deltas) -> dict[str, np.ndarray]:
    cols = (rmse, abs_rel, sq_rel, log10, rmse_log, deltas[:, 0], deltas[:, 1], deltas[:, 2])
    return dict(zip(DEPTH_METRICS, cols, strict=True))
