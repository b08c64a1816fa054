"""A DRNet-vs-RSIDE ratio measured in pairs of timing sessions: its geometric mean and its t-interval.

``bench speed`` times the models of one backbone in alternating sessions (``bench.speed.sessions``: pair k is
session k of each, back to back, the order reversed every other pair, each session a fresh process on CPU), and
speed_pairs.csv holds one ratio r_k per pair. The interval of the ratio is a t-interval on the log ratios:

    exp( mean(ln r) -+ t(1 - alpha/2, n - 1) * sd(ln r) / sqrt(n) ),   around the geometric mean exp(mean(ln r)).

Why logs: what disturbs a session (other work on the cores, clocks, the state of caches and the allocator)
scales its times, so it enters a ratio as a factor; on the log scale it adds, the interval of DRNet / RSIDE is
the reciprocal of RSIDE / DRNet's, and it never reaches zero. Why pairs and a t-interval: the pairs are
independent measurements (fresh processes), drift within a pair favours neither model on average because the
order alternates, and the session-to-session spread is estimated from the pairs themselves with n - 1 degrees
of freedom, so 2 pairs give a wide interval (t = 12.7) and 3 a usable one (t = 4.30). With fewer than
``MIN_PAIRS`` pairs there is no interval: one session gives numbers, not a verdict.

The simulations in tests/bench/report/test_ratios.py check what the speed verdicts need: with the true ratio at
the threshold (3 pairs, 3 repeats per session, 10 % noise per repeat, session-to-session noise and drift), the
interval lies wholly on one side of it in at most 5 % of simulated sweeps, and a true ratio 2x away from the
threshold is decided in at least 95 %.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from bench.report.stats import CI_LEVEL, t_quantile

__all__ = ["MIN_PAIRS", "RatioInterval", "log_intervals", "ratio_interval"]

MIN_PAIRS = 2  # pairs of timing sessions a ratio's interval (and so a speed or memory verdict) needs


@dataclass(frozen=True)
class RatioInterval:
    """A ratio over n pairs of sessions: geometric mean, interval (NaN with fewer than MIN_PAIRS pairs), n."""

    estimate: float
    low: float
    high: float
    n: int

    @property
    def judged(self) -> bool:
        """Whether there is an interval to judge (at least MIN_PAIRS pairs)."""
        return not (math.isnan(self.low) or math.isnan(self.high))


def ratio_interval(ratios: Iterable[float | None], level: float = CI_LEVEL) -> RatioInterval:
    """Geometric mean and t-interval of the positive, finite ``ratios`` (one per pair of sessions; others are
    left out: a pair in which a definition could not be measured)."""
    kept = [float(r) for r in ratios if r is not None and math.isfinite(float(r)) and float(r) > 0]
    if not kept:
        return RatioInterval(math.nan, math.nan, math.nan, 0)
    logs = np.log(np.asarray(kept))
    estimate = float(np.exp(logs.mean()))
    if len(kept) < MIN_PAIRS:
        return RatioInterval(estimate, math.nan, math.nan, len(kept))
    low, high = log_intervals(logs[None, :], level)
    return RatioInterval(estimate, float(np.exp(low[0])), float(np.exp(high[0])), len(kept))


def log_intervals(logs: np.ndarray, level: float = CI_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """The t-interval of the mean of each row of ``logs`` (experiments x pairs, at least 2 pairs): (low, high)
    on the log scale. Vectorised for the simulations; ``ratio_interval`` is the one-experiment form."""
    n = logs.shape[-1]
    if n < MIN_PAIRS:
        raise ValueError(f"an interval needs at least {MIN_PAIRS} pairs, got {n}")
    mean = logs.mean(axis=-1)
    half = t_quantile(0.5 + level / 2, n - 1) * logs.std(axis=-1, ddof=1) / math.sqrt(n)
    return mean - half, mean + half
