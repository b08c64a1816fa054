"""How a checked plan's runs are carried out: the ``Launcher`` interface and its three implementations.

- ``inline`` (``bench.launchers.inline``): one run after another in this process; under torchrun every rank
  takes part in each run. The default.
- ``local`` (``bench.launchers.local``): submitit jobs on this machine, one per GPU group or CPU core set.
- ``slurm`` (``bench.launchers.slurm``): one SLURM job per run, requeued on preemption; ``--wait`` waits.

Whichever launcher, each run goes through ``bench.lifecycle.execute_run``; the submitit job that wraps it,
and the launch record it keeps in the run directory, are in ``bench.launchers.jobs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from bench.config import ConfigError
from bench.launchers.options import launch_options
from bench.outcomes import RunOutcome
from bench.plan import Plan

__all__ = ["LaunchError", "LaunchResult", "Launcher", "make_launcher"]


class LaunchError(ConfigError):
    """The launcher cannot hand out the runs (submitit missing, sbatch refused a job): nothing more is sent."""


@dataclass(frozen=True)
class LaunchResult:
    """What a launcher hands back: the outcome of every planned run, in plan order, once they ended.

    ``waited`` False: jobs were submitted and left to the scheduler (``bench status`` follows them);
    ``outcomes`` then holds only the runs that were complete already and reused."""

    outcomes: list[RunOutcome] = field(default_factory=list)
    waited: bool = True

    @property
    def failed(self) -> bool:
        return any(o.status == "failed" for o in self.outcomes)

    @property
    def stopped_by(self) -> RunOutcome | None:
        """The run after which the launcher stopped the plan (interrupted by a signal, or a full disk), if any."""
        return next((o for o in self.outcomes if o.stopped_suite), None)


class Launcher(Protocol):
    """Carries out a plan's runs. ``bench.pipeline`` calls, in order: ``session`` (around the rest),
    ``check``, ``notes``, ``speed_elsewhere``, ``launch``."""

    verb: str  # what a refused plan says was not done: "nothing was run" / "nothing was submitted"

    def session(self, plan: Plan) -> AbstractContextManager[bool]:
        """Set up (and tear down) what the launcher needs; yields whether this process reports (prints)."""
        ...

    def check(self, plan: Plan) -> list[str]:
        """Every problem that stops this launcher from carrying out ``plan`` (empty list: go)."""
        ...

    def notes(self, plan: Plan) -> list[str]:
        """What the checked plan should know and does not stop it: runs another runner holds (skipped), less
        free disk space than the runs will write (``bench.checks.preflight_notes``)."""
        ...

    def parallel(self, plan: Plan) -> int:
        """How many of the plan's runs may train at once (the disk space they need together)."""
        ...

    def speed_elsewhere(self, plan: Plan) -> str | None:
        """Why the suite's speed sweeps are not measured here after the runs; None: they are."""
        ...

    def launch(self, plan: Plan, out: TextIO) -> LaunchResult:
        """Carry out the checked ``plan``; progress and notices go to ``out``."""
        ...


def make_launcher(given: Mapping[str, Any]) -> Launcher:
    """The launcher that the launcher options ``given`` on the command line ask for (none given: inline).

    ConfigError if an option cannot be parsed (--time, --slurm-arg); options that belong to another launcher
    are the launcher's ``check``'s to report."""
    options = launch_options(**given) if given else None
    if options is not None and options.launcher == "local":
        from bench.launchers.local import LocalLauncher

        return LocalLauncher(options)
    if options is not None and options.launcher == "slurm":
        from bench.launchers.slurm import SlurmLauncher

        return SlurmLauncher(options)
    from bench.launchers.inline import InlineLauncher

    return InlineLauncher(options)
