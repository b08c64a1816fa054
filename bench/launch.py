"""Hand a checked plan's runs to a scheduler through submitit: SLURM (``--launcher slurm``) or this machine's
devices (``--launcher local``). ``bench run`` without ``--launcher`` never imports this module.

Each run (each seed) is one job that calls the same ``bench.runner.execute_run`` as an inline run. Its
submitit files (the sbatch script, pickles, stdout/stderr per task) go to ``runs/<run-id>/submitit/`` and
``runs/<run-id>/launch.json`` records the job (launcher, job id, state, host, pid; see ``bench.status``).
A job that is preempted or reaches its time limit gets submitit's signal (USR2), is requeued and continues
from ``checkpoints/last.pt``; a job killed outright (node failure, SIGKILL) and started again resumes the
same way, because the run directory's launch record carries the job's token.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from bench.config import ConfigError, RunConfig
from bench.paths import code_pythonpath, pythonpath_export_line
from bench.rundir import JOB_LOGS_DIR, RunDir, RunState

__all__ = [
    "LAUNCHERS",
    "LaunchOptions",
    "RunJob",
    "launch_command",
    "launch_options",
    "launch_plan",
    "parse_slurm_args",
    "parse_time_minutes",
]

LAUNCHERS = ("inline", "local", "slurm")
MAX_TIMEOUT_REQUEUES = 100  # time-limit requeues per run (preemptions do not count): 100 x --time of training
LOCAL_RESTARTS = 3  # a local job killed outright (no result) is started again this many times
LOCAL_TIMEOUT_MIN = 60 * 24 * 365  # local jobs without --time: no practical limit (minutes)
POLL_S = 1.0  # how often the local launcher and --wait look at their jobs (seconds)
SIGNAL_DELAY_S = 120  # SLURM sends USR2 this long before the time limit (seconds)
DEFAULT_SLURM_TIME_MIN = 24 * 60  # --time when none is given: one day per job, then requeue and resume


@dataclass(frozen=True)
class LaunchOptions:
    """How runs are handed out: launcher, resources per run, and whether to wait for the results."""

    launcher: str = "inline"  # inline | local | slurm
    gpus_per_run: int = 1  # > 1: one DDP task per GPU (on the CPU: that many gloo processes)
    max_parallel: int | None = None  # local: runs at once (default: one per GPU group, 1 on the CPU)
    partition: str | None = None
    cpus_per_gpu: int | None = None  # SLURM --cpus-per-task of each task (one task per GPU)
    mem: str | None = None  # SLURM --mem, e.g. 64G
    time_min: int | None = None  # SLURM --time in minutes (local: each job's limit)
    account: str | None = None
    qos: str | None = None
    slurm_args: dict[str, str] = field(default_factory=dict)  # any other sbatch option, key -> value
    wait: bool = False  # slurm: wait for the jobs, then print the summary (local always waits)


def parse_time_minutes(text: str | None) -> int | None:
    """SLURM time ("90", "1:30:00", "2-00:00:00", "45:00") -> whole minutes (rounded up); None -> None."""
    if text is None:
        return None
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise ConfigError(f"--time {text!r}: expected minutes, MM:SS, HH:MM:SS or D-HH:MM:SS, e.g. 2-00:00:00")
    days, a, b, c = (int(g) if g is not None else None for g in match.groups())
    if c is not None:
        seconds = a * 3600 + b * 60 + c  # HH:MM:SS
    elif b is not None:
        seconds = a * 3600 + b * 60 if days is not None else a * 60 + b  # D-HH:MM or MM:SS
    else:
        seconds = a * 3600 if days is not None else a * 60  # D-HH or minutes
    seconds += (days or 0) * 86400
    if seconds <= 0:
        raise ConfigError(f"--time {text!r}: must be positive")
    return -(-seconds // 60)


def parse_slurm_args(items: Sequence[str]) -> dict[str, str]:
    """["constraint=a100", "mail-type=END"] -> {"constraint": "a100", "mail-type": "END"}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key):
            raise ConfigError(
                f"--slurm-arg {item!r}: expected KEY=VALUE with an sbatch option name, "
                f"e.g. constraint=a100 or exclude=node[01-03]"
            )
        out[key] = value
    return out


def check_options(options: LaunchOptions) -> list[str]:
    """Problems with the launcher options themselves (empty list: fine)."""
    out = []
    if options.launcher not in LAUNCHERS:
        out.append(f"--launcher {options.launcher!r}: expected one of {', '.join(LAUNCHERS)}")
    if options.mem is not None and not re.fullmatch(r"\d+(\.\d+)?[KMGT]?B?", options.mem, flags=re.I):
        out.append(f"--mem {options.mem!r}: expected a SLURM size such as 64G or 500M")
    if options.launcher == "inline":
        given = (
            [
                name
                for name, value in (
                    ("--partition", options.partition),
                    ("--mem", options.mem),
                    ("--account", options.account),
                    ("--qos", options.qos),
                    ("--time", options.time_min),
                    ("--max-parallel", options.max_parallel),
                )
                if value is not None
            ]
            + (["--slurm-arg"] if options.slurm_args else [])
            + (["--wait"] if options.wait else [])
            + (["--gpus-per-run"] if options.gpus_per_run != 1 else [])
        )
        if given:
            out.append(f"{', '.join(given)} need(s) --launcher local or slurm")
    if options.launcher == "local":
        slurm_only = [
            name
            for name, value in (
                ("--partition", options.partition),
                ("--mem", options.mem),
                ("--cpus-per-gpu", options.cpus_per_gpu),
                ("--account", options.account),
                ("--qos", options.qos),
            )
            if value is not None
        ] + (["--slurm-arg"] if options.slurm_args else [])
        if slurm_only:
            out.append(f"{', '.join(slurm_only)} need(s) --launcher slurm")
    if options.launcher == "slurm" and options.max_parallel is not None:
        out.append("--max-parallel goes with --launcher local (SLURM schedules the jobs itself)")
    if options.launcher in ("local", "slurm"):
        import importlib.util

        if importlib.util.find_spec("submitit") is None:
            out.append(
                "--launcher local/slurm needs submitit: pip install 'drnet-bench[cluster]' "
                "(or pip install 'submitit>=1.5')"
            )
    return out


# --- the job ----------------------------------------------------------------------------------------------


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
        from bench.runner import execute_run

        _export_task_environment()
        self._pin_cpus()
        rd = RunDir.for_config(self.config, self.runs_dir)
        main = int(os.environ.get("RANK", "0")) == 0  # as init_distributed will say
        try:
            if main:
                rd.update_launch_record(
                    state="running",
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    job_id=_current_job_id(),
                    started_utc=_utc_now(),
                    attempts=int(rd.read_launch_record().get("attempts", 0)) + 1,
                )
            info = init_distributed(self.config.device)
            resume = self.resume or self._owns(rd)
            outcome = execute_run(self.config, Path(self.runs_dir), resume, info, sys.stdout)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            if main:
                print(f"FAILED {self.config.run_id}: {message}", flush=True)
                if rd.config_path.is_file():
                    rd.log(f"FAILED {self.config.run_id}: {message}")
                rd.update_launch_record(state="failed", error=message.strip().splitlines()[-1], finished_utc=_utc_now())
            raise
        finally:
            shutdown_distributed()
        if main:
            rd.update_launch_record(state="complete", finished_utc=_utc_now())
        return outcome if main else None

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit calls this on USR2 (preemption, time limit): requeue as a resume of the same directory."""
        import submitit

        rd = RunDir.for_config(self.config, self.runs_dir)
        rd.update_launch_record(state="requeued", requeued_utc=_utc_now())
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


def _utc_now() -> str:
    from bench.provenance import utc_now

    return utc_now()


# --- submitting -------------------------------------------------------------------------------------------


def launch_command(
    suite,
    configs: Sequence[RunConfig],
    speed_entries: Sequence[dict[str, Any]],
    runs_dir: Path,
    resume: bool,
    options: dict[str, Any],
    out: TextIO,
) -> int:
    """``bench run --launcher local|slurm``: check options and plan once, submit, (wait and) summarise.

    Returns the exit code: 0 ok (or submitted), 1 a run failed, 2 the options or the plan cannot run.
    """
    from bench.runner import preflight, summary_table

    try:
        launch = launch_options(**options)
    except ConfigError as exc:
        print(f"error: {exc}", file=out)
        return 2
    problems = check_options(launch)
    if launch.launcher == "slurm":
        import shutil

        missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
        if missing:
            problems.append(
                f"--launcher slurm: {' and '.join(missing)} not found on PATH; submit from a machine "
                f"of the SLURM cluster (a login node), or use --launcher local"
            )
    if not problems and launch.launcher != "inline":
        # the jobs, not this process, need the devices (a login node has no GPU)
        problems = preflight(configs, runs_dir, resume, devices=launch.launcher == "local")
    if not problems and launch.launcher != "inline":
        problems = _check_not_in_flight(configs, runs_dir)
    if problems:
        verb = "run" if launch.launcher == "inline" else "submitted"
        print(f"error: {len(problems)} problem(s); nothing was {verb}:", file=out)
        for p in problems:
            print(f"  - {p}", file=out)
        return 2
    if launch.launcher == "inline":
        return -1  # nothing launcher-specific was asked: the caller runs the plan as always
    if speed_entries:
        print(
            f"speed sweeps are not run by --launcher {launch.launcher}; run `bench speed --suite {suite.name}` "
            f"on the machine to measure",
            file=out,
        )
    try:
        outcomes = launch_plan(configs, runs_dir, resume, launch, out)
    except ConfigError as exc:
        print(f"error: {exc}", file=out)
        return 2
    if outcomes is None:
        return 0
    if outcomes:
        print("\nsummary (headline = the protocol's own reduction)", file=out)
        print(summary_table(outcomes), file=out)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _check_not_in_flight(configs: Sequence[RunConfig], runs_dir: Path) -> list[str]:
    """A run whose job is still queued or running must not get a second job writing the same directory."""
    from bench.status import job_liveness, scheduler_states

    records = {c.run_id: RunDir.for_config(c, runs_dir).read_launch_record() for c in configs}
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


def launch_options(
    launcher: str = "inline",
    gpus_per_run: int = 1,
    max_parallel: int | None = None,
    partition: str | None = None,
    cpus_per_gpu: int | None = None,
    mem: str | None = None,
    time: str | None = None,
    account: str | None = None,
    qos: str | None = None,
    slurm_args: Sequence[str] = (),
    wait: bool = False,
) -> LaunchOptions:
    """LaunchOptions from command-line values (--time as SLURM writes it, --slurm-arg KEY=VALUE)."""
    return LaunchOptions(
        launcher=launcher,
        gpus_per_run=gpus_per_run,
        max_parallel=max_parallel,
        partition=partition,
        cpus_per_gpu=cpus_per_gpu,
        mem=mem,
        time_min=parse_time_minutes(time),
        account=account,
        qos=qos,
        slurm_args=parse_slurm_args(slurm_args),
        wait=wait,
    )


def launch_plan(
    configs: Sequence[RunConfig], runs_dir: Path, resume: bool, options: LaunchOptions, out: TextIO
) -> list | None:
    """Submit every run of a checked plan; returns RunOutcomes once they ended, or None (slurm without --wait)."""
    from bench.runner import RunOutcome

    submitit = _import_submitit()
    outcomes: dict[str, RunOutcome] = {}
    todo = []
    for config in configs:
        rd = RunDir.for_config(config, runs_dir)
        if rd.state() == RunState.COMPLETE:  # the preflight refused it unless its configuration is the same
            metrics = rd.read_metrics()
            outcomes[config.run_id] = RunOutcome(
                config.run_id,
                "reused",
                config,
                metrics,
                None,
                metrics.get("epoch"),
                metrics.get("steps"),
                "already complete",
            )
            print(f"reusing {rd.root}: complete, same configuration (--rerun trains it again)", file=out)
        else:
            todo.append(config)
    if options.launcher == "slurm":
        jobs = [_submit_slurm(submitit, config, runs_dir, resume, options, out) for config in todo]
        if not options.wait:
            print(f"\n{len(jobs)} job(s) submitted; `bench status --runs {runs_dir}` shows where they stand", file=out)
            return None
        print(f"waiting for {len(jobs)} job(s)", file=out, flush=True)
        for config, job in zip(todo, jobs, strict=True):
            polls = 0
            while not job.done(force_check=polls % 30 == 29):  # ask sacct now and then: a job may die silently
                time.sleep(POLL_S)
                polls += 1
            outcomes[config.run_id] = _outcome(job, config)
    else:
        outcomes.update(_run_local(submitit, todo, runs_dir, resume, options, out))
    return [outcomes[c.run_id] for c in configs]


def _import_submitit():
    try:
        import submitit
    except ImportError:
        raise ConfigError(
            "--launcher local/slurm needs submitit: pip install 'drnet-bench[cluster]' (or pip install 'submitit>=1.5')"
        ) from None
    return submitit


def _new_job(config: RunConfig, runs_dir: Path, resume: bool, launcher: str, cpus=None) -> tuple[RunJob, RunDir]:
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
            "submitted_utc": _utc_now(),
            "attempts": 0,
            "logs": JOB_LOGS_DIR,
            "host": socket.gethostname(),
            "launcher_pid": os.getpid(),
        },
    )
    return RunJob(config, str(runs_dir), resume, token, cpus), rd


def _submit_slurm(submitit, config: RunConfig, runs_dir: Path, resume: bool, options: LaunchOptions, out: TextIO):
    job_fn, rd = _new_job(config, runs_dir, resume, "slurm")
    executor = submitit.SlurmExecutor(folder=rd.job_logs, max_num_timeout=MAX_TIMEOUT_REQUEUES)
    executor.update_parameters(**slurm_parameters(config, options))
    try:
        with _code_on_pythonpath():
            job = executor.submit(job_fn)
    except Exception as exc:  # sbatch refused (bad partition, account, time beyond the partition's limit...)
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        rd.update_launch_record(state="failed", error=f"sbatch refused the job: {message}")
        raise ConfigError(f"sbatch refused {config.run_id}: {str(exc).strip()}") from exc
    rd.update_launch_record(job_id=str(job.job_id))
    print(f"submitted {config.run_id}: SLURM job {job.job_id} (logs in {rd.job_logs})", file=out, flush=True)
    return job


def slurm_parameters(config: RunConfig, options: LaunchOptions) -> dict[str, Any]:
    """SlurmExecutor parameters for one run: one task per GPU, --requeue, extra sbatch options last."""
    tasks = options.gpus_per_run
    extra: dict[str, Any] = {"requeue": True}  # node failure / preemption: SLURM starts the job again
    if options.mem is not None:
        extra["mem"] = options.mem
    extra.update(options.slurm_args)
    params: dict[str, Any] = {
        "job_name": config.run_id,
        "nodes": 1,
        "ntasks_per_node": tasks,
        "signal_delay_s": SIGNAL_DELAY_S,
        "additional_parameters": extra,
        "setup": [pythonpath_export_line()],
    }
    if config.device == "cuda":
        params["gres"] = f"gpu:{options.gpus_per_run}"
    params["time"] = options.time_min or DEFAULT_SLURM_TIME_MIN  # submitit times its requeues by it
    optional = {
        "partition": options.partition,
        "cpus_per_task": options.cpus_per_gpu,
        "account": options.account,
        "qos": options.qos,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    return params


@contextmanager
def _code_on_pythonpath():
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


# --- local ------------------------------------------------------------------------------------------------


def local_slots(configs: Sequence[RunConfig], options: LaunchOptions) -> list[dict[str, Any]]:
    """Where local jobs run: GPU groups of ``gpus_per_run`` (one per slot), or CPU core sets."""
    n = options.gpus_per_run
    if any(c.device == "cuda" for c in configs):
        gpus = visible_gpus()
        groups = [tuple(gpus[i : i + n]) for i in range(0, len(gpus) - n + 1, n)]
        if not groups:
            raise ConfigError(f"--launcher local: {len(gpus)} visible GPU(s), {n} needed per run (--gpus-per-run)")
        return [{"gpus": g, "cpus": None} for g in groups[: options.max_parallel or len(groups)]]
    k = options.max_parallel or 1
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    return [{"gpus": (), "cpus": tuple(cores[i::k]) if k <= len(cores) else (cores[i % len(cores)],)} for i in range(k)]


def visible_gpus() -> list[int]:
    """GPU indices this process may use: CUDA_VISIBLE_DEVICES (integers) or every device torch sees."""
    text = os.environ.get("CUDA_VISIBLE_DEVICES")
    if text is not None and all(p.strip().isdigit() for p in text.split(",") if p.strip()):
        return [int(p) for p in text.split(",") if p.strip()]
    import torch

    return list(range(torch.cuda.device_count()))


def _run_local(
    submitit, configs: Sequence[RunConfig], runs_dir: Path, resume: bool, options: LaunchOptions, out: TextIO
) -> dict[str, Any]:
    """Run the jobs on this machine, at most one per slot at a time; a job killed outright is started again."""
    slots = local_slots(configs, options)
    pending = [_new_job(config, runs_dir, resume, "local")[0] for config in configs]  # all recorded as queued
    running: dict[int, tuple[RunJob, Any, int]] = {}  # slot -> (job function, submitit job, restarts)
    outcomes = {}
    print(f"local: {len(configs)} run(s), {len(slots)} at a time", file=out, flush=True)
    while pending or running:
        for i, slot in enumerate(slots):
            if i not in running and pending:
                fn = replace(pending.pop(0), cpus=slot["cpus"])
                running[i] = (fn, _submit_local(submitit, fn, slot, options, out), 0)
        time.sleep(POLL_S)
        for i, (fn, job, restarts) in list(running.items()):
            if not job.done():
                continue
            if not job.task(0).paths.result_pickle.exists() and restarts < LOCAL_RESTARTS:
                print(
                    f"requeued {fn.config.run_id}: job {job.job_id} was killed; continuing from its last checkpoint",
                    file=out,
                    flush=True,
                )
                running[i] = (fn, _submit_local(submitit, fn, slots[i], options, out), restarts + 1)
                continue
            outcomes[fn.config.run_id] = _outcome(job, fn.config)
            del running[i]
    return outcomes


def _submit_local(submitit, fn: RunJob, slot: dict[str, Any], options: LaunchOptions, out: TextIO):
    rd = RunDir.for_config(fn.config, fn.runs_dir)
    executor = submitit.LocalExecutor(folder=rd.job_logs, max_num_timeout=MAX_TIMEOUT_REQUEUES)
    tasks = max(len(slot["gpus"]), options.gpus_per_run if fn.config.device != "cuda" else 1)
    executor.update_parameters(
        timeout_min=options.time_min or LOCAL_TIMEOUT_MIN,
        tasks_per_node=tasks,
        gpus_per_node=len(slot["gpus"]),
        visible_gpus=tuple(slot["gpus"]),
        signal_delay_s=SIGNAL_DELAY_S,
    )
    with _code_on_pythonpath():
        job = executor.submit(fn)
    rd.update_launch_record(job_id=str(job.job_id))
    where = f"GPU {','.join(map(str, slot['gpus']))}" if slot["gpus"] else f"CPU cores {_ranges(slot['cpus'])}"
    print(
        f"started {fn.config.run_id}: local job {job.job_id} on {where} (logs in {rd.job_logs})",
        file=out,
        flush=True,
    )
    return job


def _ranges(cores: Sequence[int] | None) -> str:
    return ",".join(map(str, cores or ())) or "all"


def _outcome(job, config: RunConfig):
    """The job's RunOutcome, or a failed one whose message is the error's last line."""
    from bench.runner import RunOutcome

    try:
        result = job.task(0).result()  # rank 0 evaluates and returns the outcome (the others return None)
        if result is not None:
            return result
        message = "the job returned no result"
    except Exception as exc:  # FailedJobError (traceback text), UncompletedJobError (killed, cancelled)
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        message = lines[-1].strip() if lines else type(exc).__name__
    return RunOutcome(config.run_id, "failed", config, message=f"job {job.job_id}: {message}")
