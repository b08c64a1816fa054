"""Alternating timing sessions: which model is measured when, and one DRNet / RSIDE ratio per pair of sessions.

A single timing session is not a measurement of a ratio: the load of a shared machine, its clocks and its
caches drift between sessions (two sweeps of this project's CPU an hour apart read 11.9x and 8.1x for the same
fps ratio, each with a range that excluded the other). So the models of one backbone and mode (DRNet, RSIDE,
and any other model swept on that backbone) are measured in ``pairs`` sessions each, alternating, and the
order is reversed every other round: R D, D R, R D, ... Session k of DRNet and session k of RSIDE form pair k,
measured back to back, and give one ratio (``SpeedPair``, speed_pairs.csv); reversing the order cancels, on
average over the pairs, a steady drift that would otherwise favour the model measured first in every pair. The
report judges the t-interval of the pairs' ratios (``bench.report.ratios``).

Each session is one ``sweep_target`` call: a fresh process on CPU (``process=model``), the sweep's own process
on CUDA, where the sessions alternate all the same (each builds its model afresh). Session 0 sweeps the batch
sizes as asked (auto: doubling, then bisection to the largest batch that fits); later sessions measure the
batch sizes that session 0 measured ok, so that every session gives the same points without searching for the
out-of-memory edge again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from bench.speed.records import PAIR_ARCHS, SpeedConfig, SpeedPair, SpeedPoint, SpeedSummary, SpeedTarget

__all__ = ["Session", "later_session_target", "session_pairs", "session_schedule", "sessions_per_job"]


@dataclass(frozen=True)
class Session:
    """One timing session: ``target`` in ``mode``, its ``index``-th (0, 1, ...)."""

    target: SpeedTarget
    mode: str
    index: int

    @property
    def job(self) -> tuple[str, str]:
        """(model label, mode): the speed_summary.csv row this session adds to."""
        return self.target.label, self.mode


def session_schedule(config: SpeedConfig) -> list[Session]:
    """Every session of a (resolved) config in the order they run.

    The (model, mode) jobs are grouped by (mode, backbone), groups in the order their first job appears in the
    config; each group runs as many rounds as the most timing sessions one of its models asks for
    (``config.pairs_of``), its jobs in config order in even rounds and reversed in odd ones (R D, D R, R D for
    the smoke suite's pair), before the next group starts.
    """
    groups: dict[tuple[str, str], list[SpeedTarget]] = {}
    for target in config.targets:
        for mode in config.modes_of(target):
            groups.setdefault((mode, target.backbone), []).append(target)
    return [
        Session(target, mode, k)
        for (mode, _), targets in groups.items()
        for k in range(max(config.pairs_of(t) for t in targets))
        for target in (targets if k % 2 == 0 else targets[::-1])
    ]


def sessions_per_job(config: SpeedConfig) -> dict[tuple[str, str], int]:
    """(model label, mode) -> the timing sessions it gets (a resolved config): a complete sweep has them all."""
    count: dict[tuple[str, str], int] = {}
    for session in session_schedule(config):
        count[session.job] = count.get(session.job, 0) + 1
    return count


def later_session_target(target: SpeedTarget, first_session: Sequence[SpeedPoint]) -> SpeedTarget:
    """What a session after the first measures: the batch sizes session 0 measured ok, in ascending order (the
    target as given when session 0 measured none)."""
    ok = sorted({p.batch for p in first_session if p.status == "ok"})
    return replace(target, batch_sizes=tuple(ok)) if ok else target


def session_pairs(
    sessions: Mapping[tuple[str, str], Sequence[SpeedSummary]], order: Mapping[tuple[str, str, int], int]
) -> list[SpeedPair]:
    """speed_pairs.csv: for every DRNet model and every RSIDE model of the same backbone and mode, one row per
    session index k at which both measured batch 1.

    ``sessions`` maps (label, mode) to the per-session summaries of that job, session 0 first (each summary of
    one session's points); ``order`` maps (label, mode, k) to the position at which that session ran.
    """
    numerator, denominator = PAIR_ARCHS
    rows = []
    for (d_label, mode), d_runs in sessions.items():
        if not d_runs or d_runs[0].arch != numerator:
            continue
        for (r_label, r_mode), r_runs in sessions.items():
            partner = r_runs[0] if r_runs else None
            if (
                partner is None
                or partner.arch != denominator
                or r_mode != mode
                or partner.backbone != d_runs[0].backbone
            ):
                continue
            for k, (d, r) in enumerate(zip(d_runs, r_runs, strict=False)):  # an interrupted sweep: fewer of one
                if not (d.fps_b1 and r.fps_b1):
                    continue
                first = numerator if order[(d_label, mode, k)] < order[(r_label, mode, k)] else denominator
                rows.append(_pair_row(d, r, k, first))
    return rows


def _pair_row(d: SpeedSummary, r: SpeedSummary, k: int, first: str) -> SpeedPair:
    """One pair of sessions: DRNet's session ``d`` and RSIDE's session ``r``, both of index ``k``."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b is not None and b > 0 and a > 0 else None

    return SpeedPair(
        drnet=d.name,
        rside=r.name,
        backbone=d.backbone,
        mode=d.mode,
        device_kind=d.device_kind,
        device_name=d.device_name,
        dtype=d.dtype,
        input=d.input,
        pair=k,
        first=first,
        fps_b1_drnet=d.fps_b1,
        fps_b1_rside=r.fps_b1,
        speedup_b1=d.fps_b1 / r.fps_b1,
        mem_b1_drnet_mib=d.mem_b1_mib,
        mem_b1_rside_mib=r.mem_b1_mib,
        mem_ratio_b1=ratio(r.mem_b1_mib, d.mem_b1_mib),
        ram_per_img_drnet_mib=d.ram_per_img_mib,
        ram_per_img_rside_mib=r.ram_per_img_mib,
        mem_ratio_slope=ratio(r.ram_per_img_mib, d.ram_per_img_mib),
        mem_max_b_per_img_drnet_mib=d.mem_max_b_per_img_mib,
        mem_max_b_per_img_rside_mib=r.mem_max_b_per_img_mib,
        mem_ratio_max_b=ratio(r.mem_max_b_per_img_mib, d.mem_max_b_per_img_mib),
    )
