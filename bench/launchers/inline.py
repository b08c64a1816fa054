"""``--launcher inline`` (the default): the plan's runs one after another in this process.

Under torchrun every rank takes part in each run (DDP); rank 0 alone checks, moves directories aside,
writes and reports. A failing run is recorded (and logged) and the next one starts, except under torchrun,
where the other ranks may be waiting in a collective: there the error stops them all.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from bench.checks import preflight
from bench.config import RunConfig
from bench.distributed import DistInfo, init_distributed, on_rank0, shutdown_distributed
from bench.launchers import LaunchResult
from bench.launchers.options import LaunchOptions, check_options
from bench.lifecycle import execute_run, move_aside
from bench.outcomes import RunOutcome
from bench.plan import Plan
from bench.progress import SuiteProgress
from bench.rundir import DEFAULT_RUNS_DIR, RunDir, RunState
from bench.runtime import say

__all__ = ["InlineLauncher", "run_plan", "runs_to_train"]


class InlineLauncher:
    """Runs in this process (every rank of it under torchrun)."""

    verb = "run"

    def __init__(self, options: LaunchOptions | None = None):
        self.options = options  # None: no launcher option was given (else they are checked)
        self.info = DistInfo()

    @contextmanager
    def session(self, plan: Plan) -> Iterator[bool]:
        """torch.distributed under torchrun (one process otherwise); yields whether this is rank 0."""
        self.info = init_distributed(plan.configs[0].device if plan.configs else "cpu")
        try:
            yield self.info.is_main
        finally:
            shutdown_distributed()

    def check(self, plan: Plan) -> list[str]:
        """The launcher options, then the preflight on rank 0 (which may generate the default synthetic data)."""
        problems = check_options(self.options) if self.options is not None else []
        if problems:
            return problems
        return on_rank0(self.info, lambda: preflight(plan.configs, plan.runs_dir, plan.resume, rerun=plan.rerun))

    def speed_elsewhere(self, plan: Plan) -> str | None:
        if self.info.enabled:
            return "speed sweeps are not run under torchrun; run `bench speed` in one process"
        return None

    def launch(self, plan: Plan, out: TextIO) -> LaunchResult:
        """With --rerun, move the old directories aside first; then every run in turn."""
        moved = on_rank0(self.info, lambda: move_aside(plan.configs, plan.runs_dir)) if plan.rerun else []
        for old, new in moved:
            say(self.info, None, out, f"moved {old} aside to {new} (--rerun)")
        return LaunchResult(run_plan(plan.configs, plan.runs_dir, plan.resume, self.info, out))


def run_plan(
    configs: Sequence[RunConfig],
    runs_dir: Path = DEFAULT_RUNS_DIR,
    resume: bool = False,
    info: DistInfo | None = None,
    stream: TextIO | None = None,
) -> list[RunOutcome]:
    """Execute every run in order; a failing run is recorded (and logged) and the next one starts."""
    info = info or DistInfo()
    stream = stream if stream is not None else sys.stdout
    outcomes = []
    pace = SuiteProgress()
    for i, config in enumerate(configs, start=1):
        say(info, None, stream, f"\n=== [{i}/{len(configs)}] {config.run_id} ===")
        pace.later = runs_to_train(configs[i:], runs_dir)
        try:
            outcome = execute_run(config, runs_dir, resume, info, stream, pace)
            outcome.size_bytes = RunDir.for_config(config, runs_dir).size_bytes() if info.is_main else None
            outcomes.append(outcome)
            if outcome.status == "trained":
                pace.record(outcome.steps, outcome.wall_time_s)
        except Exception as exc:  # keep going: the summary names every failure
            if info.enabled:
                raise  # other ranks may be waiting in a collective: stop them all
            rd = RunDir.for_config(config, runs_dir)
            message = f"{type(exc).__name__}: {exc}"
            say(info, rd if rd.root.is_dir() else None, stream, f"FAILED {config.run_id}: {message}")
            outcomes.append(RunOutcome.failed(config, message))
    return outcomes


def runs_to_train(configs: Sequence[RunConfig], runs_dir: Path) -> list[RunConfig]:
    """The runs among ``configs`` that will train (for the suite ETA): not complete, not imported, readable."""

    def trains(config: RunConfig) -> bool:
        try:
            return RunDir.for_config(config, runs_dir).state() in (RunState.ABSENT, RunState.STARTED)
        except Exception:  # an unreadable directory fails when its turn comes; it costs no training time
            return False

    return [c for c in configs if trains(c)]
