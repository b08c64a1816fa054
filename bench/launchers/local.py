"""``--launcher local``: the plan's runs as submitit jobs on this machine, at once, one per slot (a group of
``--gpus-per-run`` GPUs, or a set of CPU cores with ``--max-parallel`` on the CPU). Always waits for them;
a job killed outright (no result) is started again and resumes from its last checkpoint; one that a SIGTERM or
SIGINT stopped after saving it is "interrupted" and left for ``bench run --resume``."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from bench.config import RunConfig
from bench.launchers import LaunchError, LaunchResult
from bench.launchers.jobs import (
    MAX_TIMEOUT_REQUEUES,
    POLL_S,
    SIGNAL_DELAY_S,
    RunJob,
    SubmititLauncher,
    code_on_pythonpath,
    import_submitit,
    interrupted_outcome,
    job_outcome,
    new_job,
    reuse_complete,
)
from bench.launchers.options import LaunchOptions
from bench.outcomes import RunOutcome
from bench.plan import Plan
from bench.rundir import RunDir

__all__ = ["LocalLauncher", "local_slots", "visible_gpus"]

LOCAL_RESTARTS = 3  # a local job killed outright (no result) is started again this many times
LOCAL_TIMEOUT_MIN = 60 * 24 * 365  # local jobs without --time: no practical limit (minutes)


class LocalLauncher(SubmititLauncher):
    """Jobs on this machine's GPUs (or CPU cores), at most one per slot at a time."""

    name = "local"

    def parallel(self, plan: Plan) -> int:
        try:
            return len(local_slots(plan.configs, self.options))
        except LaunchError:  # no GPU here: the launch says so
            return 1

    def launch(self, plan: Plan, out: TextIO) -> LaunchResult:
        submitit = import_submitit()
        outcomes, todo = reuse_complete(plan, out)
        outcomes.update(_run_local(submitit, todo, plan.runs_dir, plan.resume, self.options, out))
        return LaunchResult([outcomes[c.run_id] for c in plan.configs])


def local_slots(configs: Sequence[RunConfig], options: LaunchOptions) -> list[dict[str, Any]]:
    """Where local jobs run: GPU groups of ``gpus_per_run`` (one per slot), or CPU core sets."""
    n = options.gpus_per_run
    if any(c.device == "cuda" for c in configs):
        gpus = visible_gpus()
        groups = [tuple(gpus[i : i + n]) for i in range(0, len(gpus) - n + 1, n)]
        if not groups:
            raise LaunchError(f"--launcher local: {len(gpus)} visible GPU(s), {n} needed per run (--gpus-per-run)")
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
) -> dict[str, RunOutcome]:
    """Run the jobs on this machine, at most one per slot at a time; a job killed outright is started again."""
    slots = local_slots(configs, options)
    pending = [new_job(config, runs_dir, resume, "local")[0] for config in configs]  # all recorded as queued
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
            stopped = interrupted_outcome(fn.config, RunDir.for_config(fn.config, runs_dir))
            if stopped is not None and not job.task(0).paths.result_pickle.exists():
                outcomes[fn.config.run_id] = stopped  # asked to stop (its checkpoint is saved): not restarted
                del running[i]
                continue
            if not job.task(0).paths.result_pickle.exists() and restarts < LOCAL_RESTARTS:
                print(
                    f"requeued {fn.config.run_id}: job {job.job_id} was killed; continuing from its last checkpoint",
                    file=out,
                    flush=True,
                )
                running[i] = (fn, _submit_local(submitit, fn, slots[i], options, out), restarts + 1)
                continue
            outcomes[fn.config.run_id] = job_outcome(job, fn.config, runs_dir)
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
    with code_on_pythonpath():
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
