"""``--launcher inline`` (the default): the plan's runs one after another in this process.

Under torchrun every rank takes part in each run (DDP); rank 0 alone checks, takes the run's lock, moves
directories aside, writes and reports. A failing run is recorded (and logged) and the next one starts, except
under torchrun, where the other ranks may be waiting in a collective: there the error stops them all. A run
another runner holds is skipped. Three things stop the suite, the runs after it "not started": SIGTERM/SIGINT
(during training the step finishes and last.pt is saved, ``bench.train``; elsewhere the run stops at once, its
last checkpoint kept), and a full disk (``DiskFullError``: the next run would fail too).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from bench.checks import preflight, preflight_notes
from bench.config import RunConfig
from bench.distributed import DistInfo, init_distributed, on_rank0, shutdown_distributed
from bench.io import DiskFullError
from bench.launchers import LaunchResult
from bench.launchers.options import LaunchOptions, check_options
from bench.lifecycle import execute_run
from bench.outcomes import RunOutcome
from bench.plan import Plan
from bench.progress import SuiteProgress
from bench.rundir import DEFAULT_RUNS_DIR, RunDir, RunState
from bench.runtime import say
from bench.train import EXIT_INTERRUPTED, STOP_SIGNALS, RunInterrupted

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

    def notes(self, plan: Plan) -> list[str]:
        return preflight_notes(plan.configs, plan.runs_dir, self.parallel(plan))

    def parallel(self, plan: Plan) -> int:
        return 1  # one run after another (under torchrun, all ranks in each)

    def speed_elsewhere(self, plan: Plan) -> str | None:
        if self.info.enabled:
            return "speed sweeps are not run under torchrun; run `bench speed` in one process"
        return None

    def launch(self, plan: Plan, out: TextIO) -> LaunchResult:
        """Every run in turn (with --rerun, each moved aside when its turn comes, under its lock)."""
        return LaunchResult(run_plan(plan.configs, plan.runs_dir, plan.resume, self.info, out, rerun=plan.rerun))


def run_plan(
    configs: Sequence[RunConfig],
    runs_dir: Path = DEFAULT_RUNS_DIR,
    resume: bool = False,
    info: DistInfo | None = None,
    stream: TextIO | None = None,
    rerun: bool = False,
) -> list[RunOutcome]:
    """Execute every run in order (see the module docstring); an outcome per planned run, in plan order."""
    info = info or DistInfo()
    stream = stream if stream is not None else sys.stdout
    outcomes: list[RunOutcome] = []
    pace = SuiteProgress()
    with _stop_outside_training(info) as stop:
        for i, config in enumerate(configs, start=1):
            if stop.signal_name is not None:  # a signal between two runs
                outcomes.append(RunOutcome.interrupted(config, _stopped_before(stop.signal_name)))
                break
            outcome = _run_one(config, i, configs, runs_dir, resume, rerun, info, stream, pace, stop)
            outcomes.append(outcome)
            if outcome.stopped_suite:
                break
    why = "the suite stopped before it (`bench run --resume` continues)"
    return outcomes + [RunOutcome.not_started(c, why) for c in configs[len(outcomes) :]]


def _run_one(
    config: RunConfig,
    i: int,
    configs: Sequence[RunConfig],
    runs_dir: Path,
    resume: bool,
    rerun: bool,
    info: DistInfo,
    stream: TextIO,
    pace: SuiteProgress,
    stop: _StopOutsideTraining,
) -> RunOutcome:
    """One run's outcome: ``execute_run``'s, or what stopped it."""
    rd = RunDir.for_config(config, runs_dir)
    try:
        stop.armed = True
        say(info, None, stream, f"\n=== [{i}/{len(configs)}] {config.run_id} ===")
        pace.later = runs_to_train(configs[i:], runs_dir)
        outcome = execute_run(config, runs_dir, resume, info, stream, pace, rerun=rerun)
        stop.armed = False
        outcome.size_bytes = rd.size_bytes() if info.is_main and outcome.status != "locked" else None
        if outcome.status == "trained":
            pace.record(outcome.steps, outcome.wall_time_s)
        return outcome
    except RunInterrupted as exc:  # training saved last.pt after its current step (bench.train said so)
        stop.armed = False
        return RunOutcome.interrupted(config, _without_run_id(exc.message, config), exc.global_step)
    except _StopSignal as exc:
        stop.armed = False
        message = _stopped_outside_training(exc.signal_name, rd)
        say(info, rd if rd.config_path.is_file() else None, stream, f"{config.run_id}: {message}")
        return RunOutcome.interrupted(config, message)
    except DiskFullError as exc:  # the next run would fail too; log.txt has no room for the message either
        stop.armed = False
        if info.enabled:
            raise
        say(info, None, stream, f"FAILED {config.run_id}: {exc}")
        return RunOutcome.failed(config, str(exc), stopped_suite=True)
    except Exception as exc:  # keep going: the summary names every failure
        stop.armed = False
        if info.enabled:
            raise  # other ranks may be waiting in a collective: stop them all
        message = f"{type(exc).__name__}: {exc}"
        say(info, rd if rd.root.is_dir() else None, stream, f"FAILED {config.run_id}: {message}")
        return RunOutcome.failed(config, message)


# --- SIGTERM / SIGINT outside the training steps -------------------------------------------------------------


class _StopSignal(BaseException):
    """SIGTERM/SIGINT while no training step was running: stop the run at once (a BaseException, so that no
    ``except Exception`` on the way takes it for the run's own error)."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name


class _StopOutsideTraining:
    """SIGTERM/SIGINT handlers for the whole plan. While a run trains, ``bench.train.fit`` installs its own (the
    step finishes, last.pt is saved: ``RunInterrupted``) and puts these back after; anywhere else in a run
    (setting up, evaluating, writing its results) a signal stops it at once (``armed``: ``_StopSignal``), its
    last checkpoint as it was; between two runs it stops the plan before the next one."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.armed = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        while self._previous:
            sig, handler = self._previous.popitem()
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal_name = self.signal_name or signal.Signals(signum).name
        if self.armed:
            self.armed = False
            raise _StopSignal(self.signal_name)


@contextmanager
def _stop_outside_training(info: DistInfo) -> Iterator[_StopOutsideTraining]:
    """``_StopOutsideTraining`` for the block, in a single process's main thread (under torchrun the agent
    stops its workers itself)."""
    stop = _StopOutsideTraining()
    if not info.enabled and threading.current_thread() is threading.main_thread():
        stop.install()
    try:
        yield stop
    finally:
        stop.restore()


def _stopped_outside_training(signal_name: str, rd: RunDir) -> str:
    kept = (
        f"{rd.last_checkpoint} holds every finished step"
        if rd.last_checkpoint.is_file()
        else "no training step was saved yet"
    )
    return (
        f"interrupted by {signal_name} outside its training steps (setting up, evaluating or writing results); "
        f"{kept}; continue with `bench run --resume` (exit code {EXIT_INTERRUPTED}: interrupted, resumable)"
    )


def _stopped_before(signal_name: str) -> str:
    return (
        f"interrupted by {signal_name} before it started; `bench run --resume` continues "
        f"(exit code {EXIT_INTERRUPTED}: interrupted, resumable)"
    )


def _without_run_id(message: str, config: RunConfig) -> str:
    prefix = f"{config.run_id}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def runs_to_train(configs: Sequence[RunConfig], runs_dir: Path) -> list[RunConfig]:
    """The runs among ``configs`` that will train (for the suite ETA): not complete, not imported, readable."""

    def trains(config: RunConfig) -> bool:
        try:
            return RunDir.for_config(config, runs_dir).state() in (RunState.ABSENT, RunState.STARTED)
        except Exception:  # an unreadable directory fails when its turn comes; it costs no training time
            return False

    return [c for c in configs if trains(c)]
