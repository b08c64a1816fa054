"""``bench status``: where every run of a runs directory (or of one suite) stands, read from the run
directories themselves, with the scheduler asked only about jobs they name.

States: not started, queued, running (with the progress line of its log.txt), interrupted (resumable, with its
last checkpoint's step), complete, damaged (complete, but checkpoints/final.pt is not the file metrics.json
recorded), failed (the error's last line). A run is running while a process holds its lock
(``bench.runlock``), whoever launched it, and the row names the holder (host, pid, since when): the kernel drops
the lock when its holder dies, so a killed run is never taken for a running one. A run directory written by
``bench run --launcher local|slurm`` also holds ``launch.json`` (its job: queued, requeued, failed).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.rundir import RunDir, RunState
from bench.runlock import LOCKS_DIR

__all__ = ["RunStatus", "collect_status", "job_liveness", "scheduler_states", "status_table"]

QUEUED_STATES = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESIZING", "SUSPENDED"}
RUNNING_STATES = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}
PROGRESS = re.compile(r"epoch \d+/\d+ \| step \d+/\d+")


@dataclass(frozen=True)
class RunStatus:
    """One row of the table."""

    run_id: str
    state: str  # not started | queued | running | interrupted | complete | damaged | failed
    job: str = "-"  # "slurm 1234", "local 5678" or "-"
    detail: str = ""


def collect_status(runs_dir: Path, suite_name: str | None = None, now: float | None = None) -> list[RunStatus]:
    """A RunStatus per run directory under ``runs_dir`` (only ``suite_name``'s, plus its runs not started)."""
    now = time.time() if now is None else now
    found = (RunDir(d) for d in sorted(Path(runs_dir).glob("*/")))
    dirs = {rd.root.name: rd for rd in found if rd.config_path.is_file() or rd.launch_path.is_file()}
    for lock in sorted((Path(runs_dir) / LOCKS_DIR).glob("*.lock")):  # a run that holds its lock, nothing written yet
        rd = RunDir(Path(runs_dir) / lock.stem)
        if lock.stem not in dirs and rd.lock_holder() is not None:
            dirs[lock.stem] = rd
    records = {name: rd.read_launch_record() for name, rd in dirs.items()}
    planned: list[str] = []
    if suite_name is not None:
        suite, planned = _planned(suite_name, dirs, records)
        dirs = {name: rd for name, rd in dirs.items() if name in planned or _suite_of(rd, records[name]) == suite}
    slurm_ids = [
        str(r["job_id"]) for n, r in records.items() if n in dirs and r.get("launcher") == "slurm" and r.get("job_id")
    ]
    states = scheduler_states(slurm_ids)
    rows = {name: _status(rd, records[name], states, now) for name, rd in dirs.items()}
    order = planned + sorted(n for n in rows if n not in planned)
    return [rows.get(name) or RunStatus(name, "not started") for name in order]


def status_table(rows: Sequence[RunStatus]) -> str:
    """Fixed-width table: run, state, job, detail; then a count per state."""
    header = ("run", "state", "job", "progress / detail")
    cells = [header, *((r.run_id, r.state, r.job, r.detail) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    lines = ["  ".join([*(c[i].ljust(widths[i]) for i in range(3)), c[3]]).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in [*widths, len(header[3])]))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    lines += ["", ", ".join(f"{n} {state}" for state, n in counts.items())]
    return "\n".join(lines)


# --- one directory ----------------------------------------------------------------------------------------


def _status(rd: RunDir, record: dict[str, Any], scheduler: dict[str, str] | None, now: float) -> RunStatus:
    name = rd.root.name
    try:
        state = rd.state()
    except Exception as exc:  # damaged config.json
        return RunStatus(name, "failed", detail=f"cannot read the run directory: {exc}")
    holder = rd.lock_holder()
    if holder is not None:  # definitive: the process writing it says who it is
        progress = _progress(rd, now) if state == RunState.STARTED else "starting"
        return RunStatus(name, "running", _job(record), f"{progress}; {holder.describe()}")
    if state == RunState.COMPLETE:
        damaged = _final_weights_text(rd)
        if damaged:
            return RunStatus(name, "damaged", _job(record), damaged)
        return RunStatus(name, "complete", _job(record), _metrics_text(rd))
    if state == RunState.IMPORTED:
        return RunStatus(name, "not started", _job(record), "imported weights; `bench run` evaluates them")
    live = job_liveness(record, scheduler)
    if record.get("state") == "failed" and live != "queued":
        if state == RunState.STARTED and _log_failure(rd) is None:
            record, live = {}, None  # a later session (an inline --resume) continued the run without the job
        else:
            return RunStatus(name, "failed", _job(record), record.get("error", "the job failed (see its logs)"))
    job = _job(record)
    if live == "running" or (live is None and record.get("state") == "running"):
        return RunStatus(name, "running", job, _progress(rd, now) if state == RunState.STARTED else "starting")
    if live == "queued" or (live is None and record.get("state") in ("queued", "requeued")):
        again = f"requeued; resumes from {_checkpoint_text(rd)}" if state == RunState.STARTED else ""
        return RunStatus(name, "queued", job, again)
    failed = _log_failure(rd)
    if failed:
        return RunStatus(name, "failed", job, failed)
    if state == RunState.ABSENT:  # a job that ended before its run wrote config.json
        return RunStatus(name, "failed", job, _job_error(rd) or "the job ended before the run started")
    return RunStatus(
        name,
        "interrupted",
        job,
        f"resumable{_signal_text(record)}: last checkpoint {_checkpoint_text(rd)}; `bench run --resume` continues it",
    )


def _job(record: dict[str, Any]) -> str:
    return f"{record['launcher']} {record['job_id']}" if record.get("job_id") else "-"


def job_liveness(record: dict[str, Any], scheduler: dict[str, str] | None) -> str | None:
    """ "queued", "running", "ended", or None when nobody can tell (no scheduler reachable, another host)."""
    if not record:
        return None
    if record.get("launcher") == "slurm":
        if scheduler is None or not record.get("job_id"):
            return None
        raw = scheduler.get(str(record["job_id"]), "ENDED")
        return "queued" if raw in QUEUED_STATES else "running" if raw in RUNNING_STATES else "ended"
    if record.get("host") and record.get("host") != socket.gethostname():
        return None
    if record.get("state") in ("running", "requeued") and record.get("pid"):
        return "running" if _pid_alive(int(record["pid"])) else "ended"
    if record.get("state") == "queued" and record.get("launcher_pid"):
        return "queued" if _pid_alive(int(record["launcher_pid"])) else "ended"
    return "ended" if record.get("state") in ("complete", "failed", "interrupted") else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def scheduler_states(job_ids: Sequence[str]) -> dict[str, str] | None:
    """SLURM state per job id (sacct, else squeue: a job it does not list has ended); None if neither answers."""
    if not job_ids:
        return {}
    ids = ",".join(dict.fromkeys(job_ids))
    if shutil.which("sacct"):
        out = _call(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ids])
        if out is not None:
            states = {}
            for line in out.splitlines():
                parts = line.strip().split("|")
                if len(parts) >= 2 and parts[0] and "." not in parts[0]:
                    states[parts[0]] = parts[1].split()[0] if parts[1].split() else "UNKNOWN"
            return states
    if shutil.which("squeue"):
        out = _call(["squeue", "-h", "-o", "%i|%T", "-j", ids])
        if out is not None:
            return dict(line.strip().split("|", 1) for line in out.splitlines() if "|" in line)
    return None


def _call(command: list[str]) -> str | None:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


# --- what a run directory says --------------------------------------------------------------------------------


def _suite_of(rd: RunDir, record: dict[str, Any]) -> str | None:
    try:
        return rd.read_config()[0].suite
    except Exception:  # no or damaged config.json: the launch record says which suite
        return record.get("suite")


def _planned(suite_name: str, dirs: dict[str, RunDir], records: dict[str, dict[str, Any]]) -> tuple[str, list[str]]:
    """(suite name, planned run ids): the suite's runs at its seeds and at every seed found in ``dirs``."""
    from bench.suite import load_suite, with_seeds

    suite = load_suite(suite_name)
    seeds = {r.seed for r in suite.runs}
    for rd in dirs.values():
        try:
            config = rd.read_config()[0]
        except Exception:
            continue
        if config.suite == suite.name:
            seeds.add(config.seed)
    return suite.name, [c.run_id for c in with_seeds(list(suite.runs), sorted(seeds))]


def _final_weights_text(rd: RunDir) -> str | None:
    """final.pt's problem when its size is not what metrics.json recorded (no file is read: a campaign's
    final.pt files are gigabytes; ``bench run`` checks the sha256 before it reuses one), else None."""
    try:
        return rd.final_weights_problem(digest=False)
    except Exception:  # an unexpected metrics layout must not hide the other runs
        return None


def _signal_text(record: dict[str, Any]) -> str:
    """`` (SIGTERM at 2025-01-31T12:00:00Z)`` when the job recorded the signal that interrupted it."""
    if record.get("state") != "interrupted" or not record.get("signal"):
        return ""
    return f" ({record['signal']} at {record.get('interrupted_utc', '?')})"


def _metrics_text(rd: RunDir) -> str:
    from bench.outcomes import headline_text

    try:
        metrics = rd.read_metrics()
        return f"{headline_text(metrics)} ({metrics.get('steps')} steps)"
    except Exception as exc:  # an unexpected metrics layout must not hide the other runs
        return f"metrics.json present ({type(exc).__name__})"


def _log_lines(rd: RunDir) -> list[str]:
    """log.txt's messages without their timestamps."""
    try:
        text = rd.log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.split(" ", 1)[1] if " " in line else line for line in text.splitlines()]


def _progress(rd: RunDir, now: float) -> str:
    lines = _log_lines(rd)
    last = next((line for line in reversed(lines) if PROGRESS.search(line)), None)
    if last is None:
        return "starting"
    parts = [p.strip() for p in last.split("|")]
    keep = [p for p in parts if p.startswith(("epoch", "step", "eta"))]
    age = int(now - rd.log_path.stat().st_mtime)
    return f"{', '.join(keep)} (log {age}s ago)"


def _log_failure(rd: RunDir) -> str | None:
    """The error's last line when the log's last session ended in FAILED, else None."""
    lines = _log_lines(rd)
    marks = [i for i, line in enumerate(lines) if line.startswith("FAILED ")]
    if not marks:
        return None
    tail = lines[marks[-1] :]
    if any(line.startswith(("started ", "resuming ")) for line in tail):
        return None  # a later session continued the run
    last = tail[-1]
    return last.split(": ", 1)[1] if last is tail[0] and ": " in last else last


def _job_error(rd: RunDir) -> str | None:
    """The last line of the newest job stderr in the run's job logs (a job that died before the run)."""
    logs = sorted(rd.job_logs.glob("*_log.err"), key=lambda p: p.stat().st_mtime)
    for path in reversed(logs):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()
    return None


def _checkpoint_text(rd: RunDir) -> str:
    """ "step 6 (epoch 2, step 2 of it)" from checkpoints/last.pt (memory-mapped: the weights are not read)."""
    if not rd.last_checkpoint.is_file():
        return "none yet (starts from step 0)"
    try:
        import torch

        state = torch.load(rd.last_checkpoint, map_location="cpu", weights_only=True, mmap=True)["state"]
    except Exception as exc:
        return f"unreadable {rd.last_checkpoint.name} ({type(exc).__name__})"
    return f"step {state['global_step']} (epoch {state['epoch'] + 1}, step {state['step_in_epoch']} of it)"
