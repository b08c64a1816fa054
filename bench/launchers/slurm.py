"""``--launcher slurm``: one SLURM job per run (sbatch through submitit), one task per GPU, ``--requeue``;
a job preempted or at its time limit is requeued and resumes. Returns once submitted (``bench status``
follows the jobs), or with ``--wait`` once they ended, for the summary."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, TextIO

from bench.config import RunConfig
from bench.launchers import LaunchError, LaunchResult
from bench.launchers.jobs import (
    MAX_TIMEOUT_REQUEUES,
    POLL_S,
    SIGNAL_DELAY_S,
    SubmititLauncher,
    code_on_pythonpath,
    import_submitit,
    job_outcome,
    new_job,
    reuse_complete,
)
from bench.launchers.options import LaunchOptions
from bench.outcomes import RunOutcome
from bench.paths import pythonpath_export_line
from bench.plan import Plan

__all__ = ["SlurmLauncher", "slurm_parameters"]

DEFAULT_SLURM_TIME_MIN = 24 * 60  # --time when none is given: one day per job, then requeue and resume


class SlurmLauncher(SubmititLauncher):
    """Jobs submitted with sbatch from a machine of the cluster (a login node needs no GPU)."""

    name = "slurm"
    devices_here = False  # the jobs, not this process, need the devices

    def missing_commands(self) -> list[str]:
        missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
        if not missing:
            return []
        return [
            f"--launcher slurm: {' and '.join(missing)} not found on PATH; submit from a machine "
            f"of the SLURM cluster (a login node), or use --launcher local"
        ]

    def launch(self, plan: Plan, out: TextIO) -> LaunchResult:
        submitit = import_submitit()
        outcomes, todo = reuse_complete(plan, out)
        jobs = [self._submit(submitit, config, plan, out) for config in todo]
        if not self.options.wait:
            print(
                f"\n{len(jobs)} job(s) submitted; `bench status --runs {plan.runs_dir}` shows where they stand",
                file=out,
            )
            return LaunchResult(list(outcomes.values()), waited=False)
        print(f"waiting for {len(jobs)} job(s)", file=out, flush=True)
        for config, job in zip(todo, jobs, strict=True):
            outcomes[config.run_id] = _wait(job, config, plan.runs_dir)
        return LaunchResult([outcomes[c.run_id] for c in plan.configs])

    def _submit(self, submitit, config: RunConfig, plan: Plan, out: TextIO):
        job_fn, rd = new_job(config, plan.runs_dir, plan.resume, "slurm")
        executor = submitit.SlurmExecutor(folder=rd.job_logs, max_num_timeout=MAX_TIMEOUT_REQUEUES)
        executor.update_parameters(**slurm_parameters(config, self.options))
        try:
            with code_on_pythonpath():
                job = executor.submit(job_fn)
        except Exception as exc:  # sbatch refused (bad partition, account, time beyond the partition's limit...)
            message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            rd.update_launch_record(state="failed", error=f"sbatch refused the job: {message}")
            raise LaunchError(f"sbatch refused {config.run_id}: {str(exc).strip()}") from exc
        rd.update_launch_record(job_id=str(job.job_id))
        print(f"submitted {config.run_id}: SLURM job {job.job_id} (logs in {rd.job_logs})", file=out, flush=True)
        return job


def _wait(job, config: RunConfig, runs_dir: Path) -> RunOutcome:
    polls = 0
    while not job.done(force_check=polls % 30 == 29):  # ask sacct now and then: a job may die silently
        time.sleep(POLL_S)
        polls += 1
    return job_outcome(job, config, runs_dir)


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
