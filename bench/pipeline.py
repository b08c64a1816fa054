"""``bench run`` as one pipeline: request -> plan -> (dry run) -> launcher checks -> launch -> speed sweeps ->
summary. Each step is a function of the one before; ``run`` returns the exit code.

Exit codes: 0 every run ended well (or its job was submitted), 1 a run or the speed sweeps failed, 2 the
request or the plan cannot run (nothing was started or written; every problem is listed). The plan is made
before torch is imported, so a mistyped suite or option is reported at once.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from bench.config import ConfigError
from bench.plan import Plan, RunRequest, make_plan
from bench.suite import Suite

if TYPE_CHECKING:
    from pathlib import Path

    from bench.launchers import Launcher

__all__ = ["EXIT_BAD_PLAN", "EXIT_FAILED", "EXIT_OK", "run", "run_speed"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_PLAN = 0, 1, 2


def run(request: RunRequest, out: TextIO | None = None) -> int:
    """``bench run``: the exit code (see the module docstring); everything it says goes to ``out``."""
    out = out if out is not None else sys.stdout
    try:
        plan = make_plan(request)
    except (ConfigError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=out)
        return EXIT_BAD_PLAN
    if request.dry_run:
        return dry_run(plan, out)
    from bench.launchers import make_launcher  # torch comes in from here on

    try:
        launcher = make_launcher(request.launch)
    except ConfigError as exc:
        print(f"error: {exc}", file=out)
        return EXIT_BAD_PLAN
    with launcher.session(plan) as reports:
        return carry_out(plan, launcher, reports, out)


def dry_run(plan: Plan, out: TextIO) -> int:
    """Print the plan, its cost and every problem (data is looked at, never generated); run nothing."""
    from bench.checks import check_data, preflight
    from bench.dryrun import describe_plan

    problems = preflight(plan.configs, plan.runs_dir, plan.resume, with_data=False, rerun=plan.rerun)
    problems += check_data(plan.configs, generate=False)
    print(describe_plan(plan, problems), file=out)
    return EXIT_BAD_PLAN if problems else EXIT_OK


def carry_out(plan: Plan, launcher: Launcher, reports: bool, out: TextIO) -> int:
    """Checks -> launch -> speed sweeps -> summary; ``reports``: this process prints (rank 0 under torchrun)."""
    from bench.launchers import LaunchError
    from bench.outcomes import summary_table

    problems = launcher.check(plan)
    if problems:
        if reports:
            _print_problems(problems, launcher.verb, out)
        return EXIT_BAD_PLAN
    elsewhere = launcher.speed_elsewhere(plan) if plan.speed else None
    if elsewhere and reports:
        print(elsewhere, file=out)
    try:
        result = launcher.launch(plan, out)
    except LaunchError as exc:
        print(f"error: {exc}", file=out)
        return EXIT_BAD_PLAN
    speed_ok = True
    if plan.speed and not elsewhere and reports:
        speed_ok = run_speed(plan.suite, plan.speed, plan.device, plan.runs_dir, out, plan.rerun)
    if reports and result.waited and result.outcomes:
        print("\nsummary (headline = the protocol's own reduction)", file=out)
        print(summary_table(result.outcomes), file=out)
    return EXIT_FAILED if result.failed or not speed_ok else EXIT_OK


def _print_problems(problems: Sequence[str], verb: str, out: TextIO) -> None:
    print(f"error: {len(problems)} problem(s); nothing was {verb}:", file=out)
    for p in problems:
        print(f"  - {p}", file=out)


def run_speed(
    suite: Suite,
    entries: Sequence[dict[str, Any]],
    device: str | None,
    runs_dir: Path,
    out: TextIO,
    rerun: bool = False,
) -> bool:
    """The suite's [[speed]] entries through bench.speed (Table 2); False if the sweep failed.

    A complete CPU sweep of the same setup on this CPU is reused, as complete training runs are, unless
    ``rerun``: then a new sweep is measured beside it, and the report uses the latest of the two."""
    from bench import speed as speed_lib

    names = [e["name"] for e in entries]
    print(f"\n=== speed sweeps: {', '.join(names)} ===", file=out, flush=True)
    try:
        targets = tuple(t for t in speed_lib.speed_targets(suite) if t.label in names)  # the parsed entries
        config = speed_lib.SpeedConfig(targets=targets, device=device or "auto", suite=suite.name)
        found = None if rerun else speed_lib.reusable_sweep(config, runs_dir)
        if found is not None:
            print(
                f"reusing {found}: complete, same settings on this CPU (--rerun measures again)", file=out, flush=True
            )
            return True
        out_dir = runs_dir / speed_lib.default_run_id(config)
        speed_lib.run_sweep(config, out_dir, progress=lambda msg: print(msg, file=out, flush=True))
    except Exception as exc:
        print(f"speed sweeps FAILED: {type(exc).__name__}: {exc}", file=out)
        return False
    print(f"speed results in {out_dir}", file=out)
    return True
