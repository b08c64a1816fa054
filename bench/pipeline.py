"""``bench run`` as one pipeline: request -> plan -> (--fetch) -> (dry run) -> launcher checks -> launch -> speed
sweeps -> summary. Each step is a function of the one before; ``run`` returns the exit code.

Exit codes: 0 every run ended well (or its job was submitted; runs another runner holds are skipped, which is
no failure), 1 a run or the speed sweeps failed (a full disk stops the suite), 2 the request or the plan cannot
run (nothing was started or written; every problem is listed), 75 interrupted by SIGTERM/SIGINT and resumable
(the run saved its checkpoint; ``bench run --resume`` continues), 130 stopped at once by a second signal (the
last checkpoint is kept). The plan is made before torch is imported, so a mistyped suite or option is reported
at once.
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

__all__ = [
    "EXIT_BAD_PLAN",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STOPPED_AT_ONCE",
    "fetch_missing",
    "run",
    "run_speed",
]

EXIT_OK, EXIT_FAILED, EXIT_BAD_PLAN = 0, 1, 2
EXIT_INTERRUPTED = 75  # = bench.train.EXIT_INTERRUPTED (EX_TEMPFAIL): interrupted, resumable; torch-free here
EXIT_STOPPED_AT_ONCE = 130  # 128 + SIGINT, as shells report a Ctrl-C: a second signal, no checkpoint written
DISK_FULL_HINT = "free space, then `bench run --resume` continues (the suite stopped: the next runs would fail too)"


def run(request: RunRequest, out: TextIO | None = None) -> int:
    """``bench run``: the exit code (see the module docstring); everything it says goes to ``out``."""
    out = out if out is not None else sys.stdout
    try:
        plan = make_plan(request)
    except (ConfigError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=out)
        return EXIT_BAD_PLAN
    if request.fetch and (failed := fetch_missing(plan, request.dry_run, out)) is not None:
        return failed
    if request.dry_run:
        return dry_run(plan, out, request.launch)
    from bench.launchers import make_launcher  # torch comes in from here on

    try:
        launcher = make_launcher(request.launch)
    except ConfigError as exc:
        print(f"error: {exc}", file=out)
        return EXIT_BAD_PLAN
    with launcher.session(plan) as reports:
        return carry_out(plan, launcher, reports, out)


def fetch_missing(plan: Plan, dry_run: bool, out: TextIO) -> int | None:
    """``--fetch``: download (verified, resumable) the data and ImageNet weights the plan's runs read and lack,
    before anything is checked or started; with ``--dry-run`` only say what that would be. None to go on, else
    the exit code. Refused under torchrun, where every process would download the same files."""
    import os

    from bench.fetch import FetchError, fetch_for_configs

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        print("error: --fetch would download in every torchrun process: run `bench fetch` first", file=out)
        return EXIT_BAD_PLAN
    try:
        fetch_for_configs(plan.configs, echo=lambda line: print(line, file=out, flush=True), dry_run=dry_run)
    except FetchError as exc:
        print(f"error: --fetch: {exc}; nothing was run (the same command resumes the downloads)", file=out)
        return EXIT_BAD_PLAN
    return None


def dry_run(plan: Plan, out: TextIO, launch: dict[str, Any] | None = None) -> int:
    """Print the plan, its cost, every problem and the notes (runs another runner holds, too little disk space;
    data is looked at, never generated); run nothing."""
    from bench.checks import check_data, preflight, preflight_notes
    from bench.dryrun import describe_plan
    from bench.launchers import make_launcher

    problems = preflight(plan.configs, plan.runs_dir, plan.resume, with_data=False, rerun=plan.rerun)
    problems += check_data(plan.configs, generate=False)
    print(describe_plan(plan, problems), file=out)
    try:
        parallel = make_launcher(launch or {}).parallel(plan)
    except ConfigError:  # the launcher options are reported when the plan runs
        parallel = 1
    for line in preflight_notes(plan.configs, plan.runs_dir, parallel):
        print(line, file=out)
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
    if reports:
        for line in launcher.notes(plan):
            print(line, file=out)
    elsewhere = launcher.speed_elsewhere(plan) if plan.speed else None
    if elsewhere and reports:
        print(elsewhere, file=out)
    try:
        result = launcher.launch(plan, out)
    except LaunchError as exc:
        print(f"error: {exc}", file=out)
        return EXIT_BAD_PLAN
    except KeyboardInterrupt as exc:  # a second SIGTERM/SIGINT while a run saved: no summary, no sweeps
        if reports:
            print(
                f"\nstopped at once ({exc or 'a second signal'}): every run keeps its last checkpoint; "
                "`bench run --resume` continues",
                file=out,
            )
        return EXIT_STOPPED_AT_ONCE
    stop = result.stopped_by
    speed_ok = True
    if plan.speed and not elsewhere and reports and stop is None:
        speed_ok = run_speed(plan.suite, plan.speed, plan.device, plan.runs_dir, out, plan.rerun)
    if reports and result.waited and result.outcomes:
        print("\nsummary (headline = the protocol's own reduction)", file=out)
        print(summary_table(result.outcomes), file=out)
    if stop is not None and stop.status == "interrupted":
        if reports:
            print(f"\n{stop.run_id}: {stop.message}", file=out)
        return EXIT_INTERRUPTED
    if stop is not None:
        if reports:
            print(f"\nerror: {stop.message}\n{DISK_FULL_HINT}", file=out)
        return EXIT_FAILED
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
