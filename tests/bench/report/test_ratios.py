"""The interval of a DRNet / RSIDE ratio over pairs of timing sessions, and what it does to the speed verdicts,
by simulation (issue 22, item 7).

Noise model of one simulated sweep: the two models are measured in the schedule ``bench speed`` runs
(``session_schedule``: R D, D R, R D for the default 3 pairs on CPU); a session's fps is the true fps times
exp(-(eta + DRIFT * position)) times the median over REPEATS timed repeats of exp(-eps), with eta ~
N(0, SESSION_SD^2) from session to session, eps ~ N(0, REPEAT_SD^2) from repeat to repeat (10 % noise) and a
steady drift of the machine of DRIFT per session. Verdicts come from the report's own judge
(``claims.ratio_outcome``) on the report's own interval (``ratios.log_intervals``); the old rule (one session
per model, the range between the timings' quartiles, median -+ IQR/2 of 3 repeats) is simulated for
comparison. Seeds are fixed, so the rates are exact for these seeds; their Monte-Carlo standard errors are
stated where they matter.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.report.claims import INCONCLUSIVE, NOT_JUDGED, NOT_REPRODUCED, REPRODUCED, ratio_outcome
from bench.report.ratios import MIN_PAIRS, log_intervals, ratio_interval
from bench.speed import SpeedConfig, SpeedTarget, session_schedule
from bench.speed.records import DEFAULT_PAIRS

TARGET = 15.0  # "up to 15x": reproduced from 15 x (1 - 20 %) = 12x on
THRESHOLD = 12.0
REPEATS = 3  # timed repeats per session (the figures)
REPEAT_SD = 0.10  # 10 % noise per timed repeat
# session-to-session noise of one model's fps: with the repeats' noise it makes the sd of a pair's log ratio
# 0.14, what this project's CPU showed across its documented single-session sweeps (docs/speed-and-memory.md)
SESSION_SD = 0.075
LOADED_SESSION_SD = 0.23  # the same at load average 7-10 on its 2 cores: 0.34 for a pair's log ratio, measured
DRIFT = 0.02  # a steady drift of the machine, per session


def positions(pairs: int) -> tuple[list[int], list[int]]:
    """When RSIDE's and DRNet's session k run, in the order ``bench speed`` runs them."""
    config = SpeedConfig(
        targets=(SpeedTarget("rside", "resnet50"), SpeedTarget("drnet", "resnet50")), device="cpu", pairs=pairs
    ).resolved()
    order = [(s.target.arch, s.index) for s in session_schedule(config)]
    return [order.index(("rside", k)) for k in range(pairs)], [order.index(("drnet", k)) for k in range(pairs)]


def session_log_fps(rng, n: int, position: int, session_sd: float, drift: float) -> np.ndarray:
    """log of one session's fps (the median of its repeats) relative to the true fps, for ``n`` sweeps."""
    eta = rng.normal(0.0, session_sd, n) + drift * position
    eps = rng.normal(0.0, REPEAT_SD, (n, REPEATS))
    return np.median(-(eta[:, None] + eps), axis=1)


def simulated_log_ratios(true_ratio: float, pairs: int, n: int, seed: int, session_sd=SESSION_SD, drift=DRIFT):
    """(n, pairs) log DRNet / RSIDE ratios, one per pair of sessions, of ``n`` simulated sweeps."""
    rng = np.random.default_rng(seed)
    rside_at, drnet_at = positions(pairs)
    return np.stack(
        [
            math.log(true_ratio)
            + session_log_fps(rng, n, drnet_at[k], session_sd, drift)
            - session_log_fps(rng, n, rside_at[k], session_sd, drift)
            for k in range(pairs)
        ],
        axis=1,
    )


def verdict_rates(logs: np.ndarray) -> dict[str, float]:
    """Share of simulated sweeps per verdict of the "up to 15x" headline."""
    low, high = log_intervals(logs)
    outcomes = [ratio_outcome(lo, hi, TARGET) for lo, hi in zip(np.exp(low), np.exp(high), strict=True)]
    return {o: outcomes.count(o) / len(outcomes) for o in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)}


def test_at_the_threshold_a_verdict_lands_on_either_side_in_at_most_5_percent_of_sweeps():
    n = 100_000
    rates = verdict_rates(simulated_log_ratios(THRESHOLD, DEFAULT_PAIRS["cpu"], n, seed=1))
    wrong = rates[REPRODUCED] + rates[NOT_REPRODUCED]  # at the threshold only "inconclusive" is right
    se = math.sqrt(0.05 * 0.95 / n)  # 0.07 points
    # seen: reproduced 2.19 %, not reproduced 2.73 % (the drift leans one way), 4.92 % in all
    assert wrong <= 0.05, rates
    assert rates[REPRODUCED] <= 0.025 + 3 * se and rates[NOT_REPRODUCED] <= 0.025 + 3 * se + 0.005, rates


@pytest.mark.parametrize("true_ratio, decided", [(2 * THRESHOLD, REPRODUCED), (THRESHOLD / 2, NOT_REPRODUCED)])
def test_a_ratio_twice_or_half_the_threshold_is_decided_with_the_default_pairs(true_ratio, decided):
    rates = verdict_rates(simulated_log_ratios(true_ratio, DEFAULT_PAIRS["cpu"], 20_000, seed=2))
    assert rates[decided] >= 0.95, rates  # seen: 96.4 % and 96.8 % (Monte-Carlo standard error 0.13 points)
    assert rates[REPRODUCED if decided == NOT_REPRODUCED else NOT_REPRODUCED] == 0.0


def test_on_a_loaded_cpu_three_pairs_leave_a_2x_margin_undecided_and_six_decide_it():
    """At load average 7-10 on 2 cores the pairs' ratios spread 34 % (measured): 3 pairs then say
    "inconclusive" about half the time (never the wrong side), --pairs 6 decides."""
    rates = {
        pairs: verdict_rates(simulated_log_ratios(2 * THRESHOLD, pairs, 20_000, seed=6, session_sd=LOADED_SESSION_SD))
        for pairs in (3, 6)
    }
    assert rates[3][REPRODUCED] < 0.7 and rates[3][NOT_REPRODUCED] == 0.0  # seen: 48 %
    assert rates[6][REPRODUCED] >= 0.95, rates  # seen: 97.3 %


def test_the_quartile_ranges_judged_before_were_coin_flips_at_the_threshold():
    """The old rule on one session per model: median -+ IQR/2 of 3 repeats (x2 -+ (x3 - x1)/4) for each model,
    DRNet's low end over RSIDE's high end to the reverse. The issue saw about 20 % each way."""
    rng = np.random.default_rng(3)
    n = 20_000

    def quartile_range(true_fps: float) -> tuple[np.ndarray, np.ndarray]:
        fps = true_fps * np.exp(-rng.normal(0.0, REPEAT_SD, (n, REPEATS)))
        q25, q50, q75 = np.percentile(fps, [25, 50, 75], axis=1)
        return q50 - (q75 - q25) / 2, q50 + (q75 - q25) / 2

    (d_lo, d_hi), (r_lo, r_hi) = quartile_range(THRESHOLD), quartile_range(1.0)
    low, high = d_lo / r_hi, d_hi / r_lo
    reproduced, not_reproduced = (low >= THRESHOLD).mean(), (high < THRESHOLD).mean()
    assert 0.15 < reproduced < 0.30 and 0.15 < not_reproduced < 0.30  # seen: 22 % and 22 %


def test_reversing_the_order_every_other_pair_keeps_a_drift_from_deciding_the_verdict():
    """With a drift of 5 % per session and no other session noise, always measuring RSIDE first biases every
    pair alike; reversing every other pair (the schedule) keeps the wrong-side rate near its 5 %."""
    n, pairs = 50_000, DEFAULT_PAIRS["cpu"]
    rng = np.random.default_rng(4)
    same_order = np.stack(
        [
            math.log(THRESHOLD)
            + session_log_fps(rng, n, 2 * k + 1, 0.0, 0.05)
            - session_log_fps(rng, n, 2 * k, 0.0, 0.05)
            for k in range(pairs)
        ],
        axis=1,
    )
    alternating = simulated_log_ratios(THRESHOLD, pairs, n, seed=4, session_sd=0.0, drift=0.05)
    assert verdict_rates(same_order)[NOT_REPRODUCED] > 0.07  # seen: 8.4 %
    rates = verdict_rates(alternating)
    assert rates[REPRODUCED] + rates[NOT_REPRODUCED] <= 0.05, rates  # seen: 3.9 %


def test_ratio_interval_is_the_t_interval_of_the_log_ratios():
    ratios = [10.0, 12.0, 11.0, 13.5]
    logs = np.log(ratios)
    half = 3.182446 * logs.std(ddof=1) / 2  # t(0.975, 3 df) * sd / sqrt(4)
    got = ratio_interval(ratios)
    assert got.n == 4 and got.judged
    assert got.estimate == pytest.approx(math.exp(logs.mean()))
    assert (got.low, got.high) == pytest.approx((math.exp(logs.mean() - half), math.exp(logs.mean() + half)))
    flipped = ratio_interval([1 / r for r in ratios])  # RSIDE / DRNet: the reciprocal interval
    assert (flipped.low, flipped.high) == pytest.approx((1 / got.high, 1 / got.low))


def test_fewer_than_two_pairs_give_numbers_but_no_interval_and_no_verdict():
    assert MIN_PAIRS == 2
    one = ratio_interval([11.0, None, math.nan, -1.0])  # a pair without a value is left out
    assert one.n == 1 and one.estimate == pytest.approx(11.0) and not one.judged
    assert ratio_outcome(one.low, one.high, TARGET) == NOT_JUDGED
    assert ratio_interval([]).n == 0 and math.isnan(ratio_interval([]).estimate)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        log_intervals(np.zeros((3, 1)))
