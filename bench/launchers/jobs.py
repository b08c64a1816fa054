"""What ``--launcher local`` and ``--launcher slurm`` share: the submitit job of one run (``RunJob``), its
launch record, the checks before submitting, and the outcome of an ended job.

Each run (each seed) is one job that calls ``bench.lifecycle.execute_run``, as an inline run does. The job takes
the run's lock before it writes anything (a run another process holds is skipped). Its submitit files (the
sbatch script, pickles, stdout/stderr per task) go to ``runs/<run-id>/submitit/`` and
``runs/<run-id>/launch.json`` records the job (launcher, job id, state, host, pid; read by ``bench.status``).
A job that reaches its time limit (or is preempted) gets submitit's signal, USR2: while the run trains, the
current step finishes and ``checkpoints/last.pt`` is saved first (``bench.train``'s graceful stop), then
submitit requeues the job, which continues from there; outside training, submitit requeues at once. SIGTERM or
SIGINT while it trains save last.pt the same way and end the job "interrupted" (exit code 75; a scheduler
that preempted it requeues it). A job killed outright (node failure, SIGKILL) and started again resumes from
its last checkpoint, because the run directory's launch record carries the job's token.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from bench.checks import preflight, preflight_notes
from bench.config import ConfigError, RunConfig
from bench.launchers import LaunchError
from bench.launchers.options import SUBMITIT_MISSING, LaunchOptions, check_options
from bench.outcomes import RunOutcome
from bench.paths import code_pythonpath
from bench.plan import Plan
from bench.provenance import utc_now
from bench.rundir import JOB_LOGS_DIR, RunDir, RunState
from bench.runlock import LockedBy

__all__ = ["RunJob", "SubmititLauncher", "code_on_pythonpath", "interrupted_outcome", "job_outcome", "new_job"]

MAX_TIMEOUT_REQUEUES = 100  # time-limit requeues per run (preemptions do not count): 100 x --time of training
POLL_S = 1.0  # how often the local launcher and --wait look at their jobs (seconds)
SIGNAL_DELAY_S = 120  # SLURM sends USR2 this long before the time limit (seconds)


@dataclass
class RunJob:
    """One run as a submitit job: called in every task of the job; ``checkpoint`` is submitit's requeue hook."""

    config: RunConfig
    runs_dir: str
    resume: bool  # the user's --resume (or a requeue: this job's own directory)
    token: str  # matches launch.json's token while the directory belongs to this submission
    cpus: tuple[int, ...] | None = None  # local CPU jobs: cores this job is pinned to

    def __call__(self) -> Any:
        from bench.distributed import init_distributed, shutdown_distributed
        from bench.lifecycle import execute_run
        from bench.train import RunInterrupted

        _export_task_environment()
        self._pin_cpus()
        rd = RunDir.for_config(self.config, self.runs_dir)
        main = int(os.environ.get("RANK", "0")) == 0  # as init_distributed will say
        lock = None
        try:
            lock = rd.try_lock() if main else None  # before the job writes anything there; execute_run keeps it
            if main and not isinstance(lock, LockedBy):
                rd.update_launch_record(
                    state="running",
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    job_id=_current_job_id(),
                    started_utc=utc_now(),
                    attempts=int(rd.read_launch_record().get("attempts", 0)) + 1,
                )
            info = init_distributed(self.config.device)
            resume = self.resume or self._owns(rd)
            with _usr2_stops_training() as requeue:
                try:
                    outcome = execute_run(self.config, Path(self.runs_dir), resume, info, sys.stdout)
                except RunInterrupted as exc:  # last.pt holds every finished step
                    if exc.signal_name == "SIGUSR2" and requeue is not None:
                        requeue(signal.SIGUSR2, None)  # submitit: RunJob.checkpoint, requeue, exit (rank 0)
                    if main:
                        rd.update_launch_record(
                            state="interrupted", signal=exc.signal_name, interrupted_utc=utc_now(), message=exc.message
                        )
                    raise
            if main and outcome.status != "locked":
                rd.update_launch_record(state="complete", finished_utc=utc_now())
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            if main:
                print(f"FAILED {self.config.run_id}: {message}", flush=True)
                if rd.config_path.is_file():
                    rd.log(f"FAILED {self.config.run_id}: {message}")
                rd.update_launch_record(state="failed", error=message.strip().splitlines()[-1], finished_utc=utc_now())
            raise
        finally:
            shutdown_distributed()
            if lock is not None and not isinstance(lock, LockedBy):
                lock.release()
        return outcome if main else None

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit calls this on USR2 (preemption, time limit): requeue as a resume of the same directory."""
        import submitit

        rd = RunDir.for_config(self.config, self.runs_dir)
        rd.update_launch_record(state="requeued", requeued_utc=utc_now())
        return submitit.helpers.DelayedSubmission(replace(self, resume=True))

    def _owns(self, rd: RunDir) -> bool:
        """True when an earlier attempt of this very job wrote the directory (a requeue after a hard kill)."""
        owned = rd.read_launch_record().get("token") == self.token
        return owned and rd.state() in (RunState.STARTED, RunState.COMPLETE)

    def _pin_cpus(self) -> None:
        if not self.cpus:
            return
        import torch

        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, self.cpus)
        if "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(len(self.cpus))


@contextmanager
def _usr2_stops_training() -> Iterator[Callable[..., Any] | None]:
    """Inside a submitit job, yield submitit's USR2 handler (checkpoint, requeue, exit) after putting a handler
    in front of it: while the run trains, USR2 goes to the training loop's stop (``bench.train.GracefulStop``:
    the current step finishes, last.pt is saved, ``RunInterrupted``), after which the caller hands the signal on
    to submitit's handler to requeue; submitit's own handler exits at once and loses every step since the last
    checkpoint. Outside training it runs as before. Yields None (and changes nothing) outside a submitit job."""
    from bench.train import GracefulStop

    requeue = signal.getsignal(signal.SIGUSR2)
    if not callable(requeue) or threading.current_thread() is not threading.main_thread():
        yield None
        return

    def handle(signum: int, frame: Any) -> None:
        training = signal.getsignal(signal.SIGTERM)  # fit's graceful stop while it trains
        if isinstance(getattr(training, "__self__", None), GracefulStop):
            training(signum, frame)
        else:
            requeue(signum, frame)

    signal.signal(signal.SIGUSR2, handle)
    try:
        yield requeue
    finally:
        signal.signal(signal.SIGUSR2, requeue)


def _export_task_environment() -> None:
    """Inside a multi-task submitit job: RANK / WORLD_SIZE / LOCAL_RANK / MASTER_* as torchrun sets them."""
    import submitit

    try:
        env = submitit.JobEnvironment()
    except RuntimeError:
        return  # not inside a submitit job (called directly)
    if env.num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


def _current_job_id() -> str | None:
    try:
        import submitit

        return str(submitit.JobEnvironment().job_id)
    except Exception:  # not inside a submitit job
        return None


# --- submitting -------------------------------------------------------------------------------------------


class SubmititLauncher:
    """The part of the local and SLURM launchers that is the same: options and plan checked once before
    anything is submitted, complete runs reused here, speed sweeps left to ``bench speed``."""

    name = ""  # "local" | "slurm"
    verb = "submitted"
    devices_here = True  # whether this process must see the planned devices (not a SLURM login node)

    def __init__(self, options: LaunchOptions):
        self.options = options

    def session(self, plan: Plan) -> nullcontext[bool]:
        return nullcontext(True)

    def check(self, plan: Plan) -> list[str]:
        problems = check_options(self.options) + self.missing_commands()
        if not problems:
            problems = preflight(plan.configs, plan.runs_dir, plan.resume, devices=self.devices_here)
        return problems or not_in_flight(plan.configs, plan.runs_dir)

    def notes(self, plan: Plan) -> list[str]:
        return preflight_notes(plan.configs, plan.runs_dir, self.parallel(plan))

    def parallel(self, plan: Plan) -> int:
        return max(len(plan.configs), 1)  # a scheduler may start them all at once

    def missing_commands(self) -> list[str]:
        """Problems with the scheduler's commands on this machine (none needed by default)."""
        return []

    def speed_elsewhere(self, plan: Plan) -> str | None:
        return (
            f"speed sweeps are not run by --launcher {self.name}; run `bench speed --suite {plan.suite.name}` "
            f"on the machine to measure"
        )


def not_in_flight(configs: Sequence[RunConfig], runs_dir: Path) -> list[str]:
    """A run whose job is still queued or running must not get a second job writing the same directory (a run
    whose lock a process holds is no problem: it is skipped, ``reuse_complete``)."""
    from bench.status import job_liveness, scheduler_states

    dirs = [RunDir.for_config(c, runs_dir) for c in configs]
    records = {rd.root.name: rd.read_launch_record() for rd in dirs if rd.lock_holder() is None}
    slurm = [str(r["job_id"]) for r in records.values() if r.get("launcher") == "slurm" and r.get("job_id")]
    states = scheduler_states(slurm) if slurm else {}
    out = []
    for run_id, record in records.items():
        live = job_liveness(record, states)
        if live in ("queued", "running"):
            job = f"{record.get('launcher')} job {record.get('job_id', '(not yet started)')}"
            cancel = (
                f"`scancel {record['job_id']}`"
                if record.get("launcher") == "slurm" and record.get("job_id")
                else "stop it"
            )
            out.append(f"{runs_dir / run_id}: {job} is {live} for this run; wait for it or {cancel} first")
    return out


def import_submitit():
    try:
        import submitit
    except ImportError:
        raise LaunchError(SUBMITIT_MISSING) from None
    return submitit


def reuse_complete(plan: Plan, out: TextIO) -> tuple[dict[str, RunOutcome], list[RunConfig]]:
    """(outcomes of the runs settled here: complete runs reused, runs another process holds skipped; the runs
    that need a job)."""
    from bench.lifecycle import locked_message, reuse_run

    settled, todo = {}, []
    for config in plan.configs:
        rd = RunDir.for_config(config, plan.runs_dir)
        holder = rd.lock_holder()
        if holder is not None:
            print(locked_message(config, rd, holder), file=out, flush=True)
            settled[config.run_id] = RunOutcome.locked(config, holder.describe())
        elif rd.state() == RunState.COMPLETE:  # the checks refused it unless its configuration is the same
            try:
                settled[config.run_id] = reuse_run(config, rd, stream=out)
            except ConfigError as exc:  # changed since the checks (final.pt damaged meanwhile)
                settled[config.run_id] = RunOutcome.failed(config, str(exc))
        else:
            todo.append(config)
    return settled, todo


def new_job(
    config: RunConfig, runs_dir: Path, resume: bool, launcher: str, cpus: tuple[int, ...] | None = None
) -> tuple[RunJob, RunDir]:
    """The job of one run, its directory recorded as queued for it (a new token: this submission owns it)."""
    rd = RunDir.for_config(config, runs_dir)
    token = uuid.uuid4().hex
    rd.job_logs.mkdir(parents=True, exist_ok=True)
    rd.write_launch_record(
        {
            "run_id": config.run_id,
            "suite": config.suite,
            "launcher": launcher,
            "token": token,
            "state": "queued",
            "submitted_utc": utc_now(),
            "attempts": 0,
            "logs": JOB_LOGS_DIR,
            "host": socket.gethostname(),
            "launcher_pid": os.getpid(),
        }
    )
    return RunJob(config, str(runs_dir), resume, token, cpus), rd


@contextmanager
def code_on_pythonpath() -> Iterator[None]:
    """PYTHONPATH starts with this checkout while jobs are started (local jobs inherit the environment)."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = code_pythonpath(before)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def job_outcome(job, config: RunConfig, runs_dir: Path | None = None) -> RunOutcome:
    """The job's RunOutcome; for a job without one, ``interrupted`` when its launch record in ``runs_dir`` says a
    signal stopped it, else a failed one whose message is the error's last line."""
    try:
        result = job.task(0).result()  # rank 0 evaluates and returns the outcome (the others return None)
        if result is not None:
            return result
        message = "the job returned no result"
    except Exception as exc:  # FailedJobError (traceback text), UncompletedJobError (killed, cancelled)
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        message = lines[-1].strip() if lines else type(exc).__name__
    stopped = interrupted_outcome(config, RunDir.for_config(config, runs_dir)) if runs_dir is not None else None
    return stopped or RunOutcome.failed(config, f"job {job.job_id}: {message}")


def interrupted_outcome(config: RunConfig, rd: RunDir) -> RunOutcome | None:
    """The ``interrupted`` outcome of a job that a SIGTERM/SIGINT stopped after saving last.pt (its launch record
    says so), else None."""
    record = rd.read_launch_record()
    if record.get("state") != "interrupted":
        return None
    message = str(record.get("message") or f"interrupted by {record.get('signal')}")
    prefix = f"{config.run_id}: "
    return RunOutcome.interrupted(config, message[len(prefix) :] if message.startswith(prefix) else message)
