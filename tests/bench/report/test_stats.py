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
    expanded_level,
    frames_only_interval,
    paired_bootstrap,
    paired_differences,
    point_metrics,
    projected_interval,
    reduce_weighted,
    resample_counts,
    seed_frame_interval,
    seeds_to_decide,
    t_cdf,
    t_quantile,
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
    # one seed's interval: the percentiles at the expanded level (for 4 frames, as wide as t with 3 df)
    est = bootstrap_estimate([fs], "rside", metrics=("rmse",), n_boot=40000, seed=7)["rmse"]
    alpha = (1 - expanded_level(0.95, 4)) / 2
    lo_exact, hi_exact = np.quantile(exact, [alpha, 1 - alpha])
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


def noisy_seeds(base: FrameStats, scale: float, n_seeds: int, noise: float, seed: int) -> list[FrameStats]:
    """Seeds of one model: ``base``'s frames with their MSE x ``scale`` x exp(noise x z), z independent per seed
    and frame (each seed's own errors on each frame)."""
    g = np.random.default_rng(seed)
    out = []
    for _ in range(n_seeds):
        stats = base.stats.copy()
        stats[:, 1] *= scale * np.exp(noise * g.standard_normal(len(stats)))
        out.append(FrameStats(base.frames, stats))
    return out


@pytest.mark.parametrize("relative", [False, True])
def test_the_projected_interval_at_the_observed_seeds_is_the_observed_interval(relative):
    base = random_stats(40, seed=11)
    a, b = noisy_seeds(base, 1.1, 3, 0.2, seed=1), noisy_seeds(base, 1.0, 3, 0.2, seed=2)
    d = paired_differences(a, b, "rside", [("rmse", relative)], n_boot=500)[("rmse", relative)]
    low, high = projected_interval(d.diff, d.seed_var_a, d.seed_var_b, d.frame_var, d.frame_seed_var, 40, 3)
    assert (low, high) == pytest.approx((d.ci_low, d.ci_high), rel=1e-9)


def test_the_frame_term_splits_into_the_frames_own_part_and_each_seeds_part():
    base = random_stats(60, seed=12)
    # the models differ only by each seed's own noise on each frame: almost all of the frame term is per seed
    own = paired_differences(
        noisy_seeds(base, 1.0, 4, 0.3, 1), noisy_seeds(base, 1.0, 4, 0.3, 2), "rside", [("rmse", True)]
    )
    spread = own[("rmse", True)]
    assert spread.frame_seed_var > 10 * spread.frame_var
    # DRNet better on some frames and worse on others, the same for every seed: the frames' own part dominates
    frame_effect = np.exp(0.3 * np.random.default_rng(5).standard_normal(60))
    shifted = FrameStats(base.frames, base.stats * np.c_[np.ones(60), frame_effect, np.ones((60, 10))])
    common = paired_differences(
        noisy_seeds(shifted, 1.0, 4, 0.01, 3), noisy_seeds(base, 1.0, 4, 0.01, 4), "rside", [("rmse", True)]
    )[("rmse", True)]
    assert common.frame_var > 10 * common.frame_seed_var


def test_seeds_to_decide_is_the_first_seed_count_whose_interval_is_decided():
    def parity(lo, hi):
        return -0.05 <= lo and hi <= 0.05

    found = seeds_to_decide(0.02, 4e-4, 4e-4, 1e-5, 1e-4, 654, parity)
    n = found.seeds
    assert n is not None and not found.frames_limit
    assert parity(*projected_interval(0.02, 4e-4, 4e-4, 1e-5, 1e-4, 654, n))
    assert not parity(*projected_interval(0.02, 4e-4, 4e-4, 1e-5, 1e-4, 654, n - 1))
    at_the_margin = seeds_to_decide(0.05, 4e-4, 4e-4, 0.0, 0.0, 654, parity)
    assert at_the_margin.seeds is None and not at_the_margin.frames_limit  # none up to the cap
    frames = seeds_to_decide(0.045, 4e-4, 4e-4, 1e-4, 0.0, 654, parity)  # +-2 % from the frames alone
    assert frames.seeds is None and frames.frames_limit
    assert seeds_to_decide(0.02, math.nan, 4e-4, 0.0, 0.0, 654, parity) is None  # one seed: unknown


def test_t_quantile_matches_tables():
    for df, q in ((1, 12.7062), (2, 4.3027), (3, 3.1824), (10, 2.2281), (15, 2.1314), (30, 2.0423), (math.inf, 1.96)):
        assert t_quantile(0.975, df) == pytest.approx(q, abs=2e-4)
    assert t_cdf(0.0, 3) == pytest.approx(0.5) and t_cdf(-2.0, 5) == pytest.approx(1 - t_cdf(2.0, 5))
    assert t_quantile(0.025, 3) == pytest.approx(-3.1824, abs=2e-4)


def test_t_distribution_against_high_precision_values():
    """Values from 30-digit quadrature of the t density (fractional df: Welch-Satterthwaite gives them)."""
    cdf = {
        (2.0, 1.3): 0.876272421746292,
        (5.0, 2.5): 0.988274405014569,
        (1.0, 7.6): 0.825959780384503,
        (30.0, 1.0): 0.989393597594465,
        (2.2, 15.0): 0.978052212436252,
    }
    for (x, df), want in cdf.items():
        assert t_cdf(x, df) == pytest.approx(want, abs=1e-9)
        assert t_quantile(want, df) == pytest.approx(x, rel=1e-7)
    x, df = np.array([[0.5], [2.0]]), np.array([1.0, 4.5, math.inf])  # arrays broadcast
    grid = t_cdf(x, df)
    assert grid.shape == (2, 3) and grid[1, 2] == pytest.approx(0.9772498681, abs=1e-9)
    assert all(
        grid[i, j] == pytest.approx(t_cdf(float(x[i, 0]), float(df[j])), abs=1e-15) for i in (0, 1) for j in (0, 1, 2)
    )
    assert np.allclose(t_cdf(t_quantile(0.975, df), df), 0.975, atol=1e-12)


def test_expanded_percentile_level():
    """The percentile interval over N frames read at the level where it is as wide as t with N - 1 df."""
    assert expanded_level(0.95, 16) == pytest.approx(0.97229, abs=1e-5)  # the 1.39th and 98.61st percentiles
    assert expanded_level(0.95, 654) == pytest.approx(0.95060, abs=1e-5)
    assert expanded_level(0.95, 1) == 0.95
    dist = np.random.default_rng(0).normal(0, 1, 100_000)
    low, high = frames_only_interval(dist, 16)
    assert (high - low) / 2 == pytest.approx(math.sqrt(16 / 15) * t_quantile(0.975, 15), rel=0.01)


def test_frame_term_counts_as_estimated_from_the_frames():
    """Frames only (seeds agree): the interval is mean +- t(N - 1) * sd / sqrt(N), sd with ddof 1."""
    x = np.random.default_rng(2).normal(0.1, 0.05, 16)
    boot = resample_counts(16, 200_000, np.random.default_rng(3)) @ x / 16
    iv = seed_frame_interval(np.full(3, x.mean()), None, boot, n_frames=16)
    assert iv.df == pytest.approx(15, rel=0.02)
    half = t_quantile(0.975, 15) * x.std(ddof=1) / 4
    assert (iv.ci_high - iv.ci_low) / 2 == pytest.approx(half, rel=0.01)


def simulate(scenario: str, n_seeds: int, n_frames: int, n_exp: int, rng: np.random.Generator) -> dict:
    """``n_exp`` experiments: each seed's metric on the test frames (va, vb: (E, k)), each frame's metric
    averaged over seeds (fa, fb: (E, N)), and the truths an interval should cover.

    "normal": additive per-frame metrics, normal frame difficulty common to both models, a per-frame model
    difference, seed shifts and seed x frame noise (seed and frame noise comparable at 16 frames). "skewed":
    log-normal, multiplicative (error = difficulty x model x seed x noise): heavy right tail of frame
    difficulty, frame noise dominating, as depth errors are. The truth of several seeds is the expected metric
    over seeds and frames; of one seed, that trained model's expected metric over frames.
    """
    shape_f, shape_s, shape_sf = (n_exp, 1, n_frames), (n_exp, n_seeds, 1), (n_exp, n_seeds, n_frames)
    if scenario == "normal":
        mu_a, mu_b, seed_sd, frame_sd, inter_sd = 0.52, 0.50, 0.02, 0.05, 0.02
        shared, frame_diff = rng.normal(0, 0.2, shape_f), rng.normal(0, frame_sd, shape_f)
        ua, ub = mu_a + rng.normal(0, seed_sd, shape_s), mu_b + rng.normal(0, seed_sd, shape_s)
        a = ua + shared + frame_diff + rng.normal(0, inter_sd, shape_sf)
        b = ub + shared + rng.normal(0, inter_sd, shape_sf)
        mean_a, mean_b = ua[:, 0, 0], ub[:, 0, 0]  # one seed's expected metric over frames
        truth_a, truth_b = mu_a, mu_b
    else:
        la, lb, hard_sd, diff_sd, seed_sd, inter_sd = math.log(0.52), math.log(0.50), 0.5, 0.2, 0.01, 0.05
        hard, frame_diff = rng.normal(0, hard_sd, shape_f), rng.normal(0, diff_sd, shape_f)
        ua, ub = rng.normal(0, seed_sd, shape_s), rng.normal(0, seed_sd, shape_s)
        a = np.exp(la + hard + frame_diff + ua + rng.normal(0, inter_sd, shape_sf))
        b = np.exp(lb + hard + ub + rng.normal(0, inter_sd, shape_sf))
        frames = math.exp(hard_sd**2 / 2 + inter_sd**2 / 2)  # E[exp(hard + noise)]
        mean_a = np.exp(la + diff_sd**2 / 2 + ua[:, 0, 0]) * frames
        mean_b = np.exp(lb + ub[:, 0, 0]) * frames
        truth_a = math.exp(la + diff_sd**2 / 2 + seed_sd**2 / 2) * frames
        truth_b = math.exp(lb + seed_sd**2 / 2) * frames
    if n_seeds == 1:
        truth_a, truth_b = mean_a, mean_b
    return {
        "va": a.mean(axis=2),
        "vb": b.mean(axis=2),
        "fa": a.mean(axis=1),
        "fb": b.mean(axis=1),
        "truth": {False: truth_a - truth_b, True: truth_a / truth_b - 1},
    }


@pytest.mark.parametrize("n_frames", [16, 654])
@pytest.mark.parametrize("n_seeds", [1, 3, 5])
@pytest.mark.parametrize("scenario", ["normal", "skewed"])
def test_intervals_cover_the_true_difference(scenario, n_seeds, n_frames):
    """Simulated experiments with a known truth: the nominal 95 % interval must cover it in >= 93 % of them
    (the requirement at 16 frames), and at most 98.5 % (16 frames) or 97.5 % (654): not bought by width.

    2000 experiments per case: Monte-Carlo standard error 0.5 points at 95 %. Several seeds: seed + frame
    t-interval; one seed: the frames-only expanded percentile interval, against that seed's own truth. The
    frames-only interval of several seeds (what ignoring seed noise would give) is shown to under-cover where
    seed noise matters, so the test can tell an honest interval from a dishonest one.
    """
    n_exp = 2000
    sim = simulate(scenario, n_seeds, n_frames, n_exp, np.random.default_rng([n_seeds, n_frames, len(scenario)]))
    n_boot = 1000 if n_seeds == 1 else 400  # one seed reads tail percentiles, several only a variance
    counts = resample_counts(n_frames, n_boot, np.random.default_rng(1)) / n_frames  # (B, N)
    boot_a, boot_b = sim["fa"] @ counts.T, sim["fb"] @ counts.T  # (E, B): seed means, frames resampled
    for relative, truth in sim["truth"].items():
        boot = boot_a / boot_b - 1 if relative else boot_a - boot_b
        if n_seeds == 1:
            low, high = frames_only_interval(boot, n_frames)
        else:
            iv = seed_frame_interval(sim["va"], sim["vb"], boot, relative, n_frames=n_frames)
            low, high = iv.ci_low, iv.ci_high
        coverage = float(np.mean((low <= truth) & (truth <= high)))
        mc_se = math.sqrt(coverage * (1 - coverage) / n_exp)
        lo, hi = np.quantile(boot, [0.025, 0.975], axis=1)
        plain = float(np.mean((lo <= truth) & (truth <= hi)))
        print(
            f"{scenario}, {n_frames} frames, {n_seeds} seed(s), {'relative' if relative else 'absolute'}: "
            f"coverage {coverage:.3f} +- {mc_se:.3f} (plain percentile interval: {plain:.3f})"
        )
        assert 0.93 <= coverage <= (0.985 if n_frames == 16 else 0.975)
        if scenario == "normal" and n_seeds > 1:
            assert plain < 0.85
