"""Bootstrap: the vectorised reductions against bench.metrics, and the intervals against exact answers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bench.metrics import DEPTH_METRICS, REDUCTIONS, ImageStats, reduce_metrics
from bench.report.stats import (
    FrameStats,
    bootstrap_estimate,
    common_frames,
    paired_bootstrap,
    point_metrics,
    reduce_weighted,
    resample_counts,
)


def random_stats(n_frames: int, seed: int = 0) -> FrameStats:
    """Plausible per-frame sums: n pixels, squared errors, counts below thresholds (lt <= le <= n)."""
    g = np.random.default_rng(seed)
    n = g.integers(50, 200, n_frames).astype(float)
    mse = g.gamma(2.0, 0.1, n_frames)
    lt = np.stack(
        [
            np.floor(n * f)
            for f in (g.uniform(0.5, 0.8, n_frames), g.uniform(0.8, 0.95, n_frames), g.uniform(0.95, 1.0, n_frames))
        ],
        axis=1,
    )
    le = np.minimum(lt + g.integers(0, 3, lt.shape), n[:, None])
    stats = np.column_stack(
        [
            n,
            mse * n,
            g.uniform(0.05, 0.2, n_frames) * n,
            g.uniform(0.01, 0.1, n_frames) * n,
            g.uniform(0.02, 0.08, n_frames) * n,
            g.uniform(0.01, 0.05, n_frames) * n,
            lt,
            le,
        ]
    )
    return FrameStats(np.arange(1, n_frames + 1), stats)


def to_image_stats(stats: np.ndarray) -> list[ImageStats]:
    return [
        ImageStats(
            n=int(r[0]),
            sum_sq=r[1],
            sum_abs_rel=r[2],
            sum_sq_rel=r[3],
            sum_log10=r[4],
            sum_sq_log=r[5],
            lt=tuple(int(x) for x in r[6:9]),
            le=tuple(int(x) for x in r[9:12]),
        )
        for r in stats
    ]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reduce_weighted_equals_reduce_metrics_on_explicit_resamples(reduction):
    """A resample with counts w is the same as reduce_metrics over the frames repeated w times."""
    fs = random_stats(7, seed=1)
    counts = resample_counts(7, 5, np.random.default_rng(3))
    got = reduce_weighted(fs.stats, counts, reduction)
    for b, w in enumerate(counts):
        repeated = [s for s, k in zip(to_image_stats(fs.stats), w, strict=True) for _ in range(k)]
        want = reduce_metrics(repeated, reduction)
        for m in DEPTH_METRICS:
            assert got[m][b] == pytest.approx(want[m], rel=1e-12), (reduction, m, b)


def test_resample_counts_are_multinomial_draws():
    counts = resample_counts(10, 4000, np.random.default_rng(0))
    assert counts.shape == (4000, 10) and counts.dtype.kind == "i"
    assert (counts.sum(axis=1) == 10).all()
    # each frame is drawn Binomial(10, 1/10) times: mean 1, variance 0.9
    assert counts.mean() == pytest.approx(1.0, abs=0.02)
    assert counts.var() == pytest.approx(0.9, abs=0.05)


def test_bootstrap_of_a_mean_matches_the_closed_form():
    """per_image RMSE is a mean of per-frame values x_i: bootstrap var = pop. var / N, CI ~ mean +- 1.96 sd."""
    fs = random_stats(60, seed=2)
    x = np.sqrt(fs.stats[:, 1] / fs.stats[:, 0])
    sd = x.std(ddof=0) / math.sqrt(len(x))
    counts = resample_counts(len(x), 20000, np.random.default_rng(5))
    dist = reduce_weighted(fs.stats, counts, "per_image")["rmse"]
    assert dist.mean() == pytest.approx(x.mean(), abs=0.05 * sd)
    assert dist.std() == pytest.approx(sd, rel=0.03)
    est = bootstrap_estimate([fs], "per_image", n_boot=20000, seed=5)["rmse"]
    assert est.value == pytest.approx(x.mean(), rel=1e-12)
    assert (est.ci_high - est.ci_low) == pytest.approx(2 * 1.959964 * sd, rel=0.08)
    assert est.ci_low < est.value < est.ci_high


def test_bootstrap_distribution_matches_exhaustive_enumeration():
    """N = 4 frames: all 4^4 equally likely resamples give the exact bootstrap law of the rside RMSE."""
    fs = random_stats(4, seed=3)
    images = to_image_stats(fs.stats)
    exact = np.array(
        [reduce_metrics([images[i] for i in idx], "rside")["rmse"] for idx in itertools.product(range(4), repeat=4)]
    )
    dist = reduce_weighted(fs.stats, resample_counts(4, 40000, np.random.default_rng(7)), "rside")["rmse"]
    exact, dist = np.round(exact, 10), np.round(dist, 10)  # same atom, different summation order
    grid = np.unique(exact)
    assert set(np.unique(dist)) <= set(grid)
    cdf_exact = np.searchsorted(np.sort(exact), grid, side="right") / exact.size
    cdf_boot = np.searchsorted(np.sort(dist), grid, side="right") / dist.size
    assert np.abs(cdf_exact - cdf_boot).max() < 0.01  # Kolmogorov distance; MC error ~ 0.0025
    est = bootstrap_estimate([fs], "rside", metrics=("rmse",), n_boot=40000, seed=7)["rmse"]
    lo_exact, hi_exact = np.quantile(exact, [0.025, 0.975])
    spread = exact.max() - exact.min()
    assert est.ci_low == pytest.approx(lo_exact, abs=0.03 * spread)
    assert est.ci_high == pytest.approx(hi_exact, abs=0.03 * spread)


def test_bootstrap_is_reproducible_with_a_fixed_seed_and_changes_with_another():
    fs = random_stats(30, seed=4)
    a = bootstrap_estimate([fs], "rside", n_boot=500, seed=0)["rmse"]
    b = bootstrap_estimate([fs], "rside", n_boot=500, seed=0)["rmse"]
    c = bootstrap_estimate([fs], "rside", n_boot=500, seed=1)["rmse"]
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)


def test_several_seeds_give_mean_and_std_over_seeds():
    seeds = [random_stats(20, seed=s) for s in (10, 11, 12)]
    values = [point_metrics(fs, "rside")["rmse"] for fs in seeds]
    est = bootstrap_estimate(seeds, "rside", n_boot=300)["rmse"]
    assert est.n_seeds == 3
    assert est.value == pytest.approx(np.mean(values), rel=1e-12)
    assert est.seed_std == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert math.isnan(bootstrap_estimate(seeds[:1], "rside", n_boot=300)["rmse"].seed_std)


def test_seeds_that_evaluated_different_frames_are_rejected():
    a, b = random_stats(10), random_stats(12)
    with pytest.raises(ValueError, match="different frames"):
        bootstrap_estimate([a, b], "rside", n_boot=100)


def test_paired_difference_of_identical_models_is_exactly_zero():
    fs = random_stats(25, seed=5)
    res = paired_bootstrap([fs], [fs], "rside", "rmse", n_boot=500)
    assert (res.diff, res.ci_low, res.ci_high, res.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert not res.significant


def test_paired_difference_of_a_uniformly_worse_model_is_significant():
    a = random_stats(25, seed=6)
    worse = FrameStats(a.frames, a.stats.copy())
    worse.stats[:, 1] *= 1.21  # every frame's MSE up 21 %: RMSE up exactly 10 % in the rside reduction
    res = paired_bootstrap([worse], [a], "rside", "rmse", relative=True, n_boot=500)
    assert res.diff == pytest.approx(0.10, rel=1e-9)
    assert res.ci_low == pytest.approx(0.10, rel=1e-9) and res.ci_high == pytest.approx(0.10, rel=1e-9)
    assert res.p_value == 0.0 and res.significant


def test_paired_bootstrap_of_a_mean_difference_matches_the_closed_form():
    """per_image RMSE difference = mean of d_i = x_i - y_i: bootstrap sd = pop. sd(d) / sqrt(N)."""
    a, b = random_stats(80, seed=7), random_stats(80, seed=8)
    d = np.sqrt(a.stats[:, 1] / a.stats[:, 0]) - np.sqrt(b.stats[:, 1] / b.stats[:, 0])
    sd = d.std(ddof=0) / math.sqrt(len(d))
    res = paired_bootstrap([a], [b], "per_image", "rmse", n_boot=20000, seed=3)
    assert res.diff == pytest.approx(d.mean(), rel=1e-12)
    assert (res.ci_high - res.ci_low) == pytest.approx(2 * 1.959964 * sd, rel=0.08)


def test_paired_bootstrap_uses_only_common_frames():
    a = random_stats(10, seed=9)
    b = FrameStats(a.frames[2:], a.stats[2:])  # b lacks frames 1 and 2
    assert common_frames([a, b]).tolist() == list(range(3, 11))
    res = paired_bootstrap([a], [b], "rside", "rmse", n_boot=200)
    assert res.n_frames == 8 and res.diff == 0.0
    with pytest.raises(ValueError, match="no evaluated frame in common"):
        paired_bootstrap(
            [FrameStats(np.array([1]), a.stats[:1])],
            [FrameStats(np.array([2]), a.stats[:1])],
            "rside",
            "rmse",
            n_boot=10,
        )


def test_t_quantile_matches_tables():
    from bench.report.stats import t_cdf, t_quantile

    for df, q in ((1, 12.7062), (2, 4.3027), (3, 3.1824), (10, 2.2281), (30, 2.0423), (math.inf, 1.96)):
        assert t_quantile(0.975, df) == pytest.approx(q, abs=2e-4)
    assert t_cdf(0.0, 3) == pytest.approx(0.5) and t_cdf(-2.0, 5) == pytest.approx(1 - t_cdf(2.0, 5))


@pytest.mark.parametrize("n_seeds", [3, 5])
def test_seed_and_frame_interval_covers_the_true_difference(n_seeds):
    """Simulated experiments with a known true difference, known seed noise and test-frame noise.

    Each experiment: N test frames, per-frame model difference g_j (test sampling), each seed of each model
    shifted by u ~ N(0, SEED_SD) plus a small seed x frame interaction. The 95 % seed + frame interval must
    cover the true difference in 90-99 % of experiments; the frames-only bootstrap interval (what one seed
    allows) is shown to under-cover, so the test can tell an honest interval from a dishonest one.
    """
    from bench.report.stats import seed_frame_interval

    n_exp, n_frames, n_boot = 300, 40, 200
    mu_a, mu_b, seed_sd, frame_sd, inter_sd = 0.52, 0.50, 0.02, 0.05, 0.02
    g = np.random.default_rng(100 + n_seeds)
    shared = g.normal(0, 0.2, (n_exp, 1, n_frames))  # frame difficulty, common to both models
    frame_diff = g.normal(0, frame_sd, (n_exp, 1, n_frames))
    a = (
        mu_a
        + shared
        + frame_diff
        + g.normal(0, seed_sd, (n_exp, n_seeds, 1))
        + g.normal(0, inter_sd, (n_exp, n_seeds, n_frames))
    )
    b = mu_b + shared + g.normal(0, seed_sd, (n_exp, n_seeds, 1)) + g.normal(0, inter_sd, (n_exp, n_seeds, n_frames))
    va, vb = a.mean(axis=2), b.mean(axis=2)  # (E, k): each seed's metric on the test frames
    counts = resample_counts(n_frames, n_boot, np.random.default_rng(1)) / n_frames  # (B, N)
    boot_a, boot_b = a.mean(axis=1) @ counts.T, b.mean(axis=1) @ counts.T  # (E, B): seed means, resampled
    truths = {False: mu_a - mu_b, True: mu_a / mu_b - 1}
    for relative, truth in truths.items():
        boot = boot_a / boot_b - 1 if relative else boot_a - boot_b
        hits = np.array(
            [
                (lambda iv: iv.ci_low <= truth <= iv.ci_high)(seed_frame_interval(va[e], vb[e], boot[e], relative))
                for e in range(n_exp)
            ]
        )
        lo, hi = np.quantile(boot, [0.025, 0.975], axis=1)
        frames_only = np.mean((lo <= truth) & (truth <= hi))
        print(
            f"{n_seeds} seeds, {'relative' if relative else 'absolute'}: coverage {hits.mean():.3f} "
            f"(frames-only bootstrap: {frames_only:.3f}) over {n_exp} experiments"
        )
        assert 0.90 <= hits.mean() <= 0.99
        assert frames_only < 0.85
