"""One run's directory, ``runs/<run-id>/`` (format: runs/README.md): paths, state, and its small files.

Every file here is written atomically (``bench.io``); ``log.txt`` is appended line by line. The state of a
directory decides what ``bench run`` does with it: start, resume, evaluate an import, or leave it alone.
``launch.json`` (written by ``bench run --launcher local|slurm``) records the job that owns the directory;
``bench status`` and the launchers read it here.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.config import ConfigError, RunConfig
from bench.io import write_csv_atomic, write_json_atomic
from bench.paths import DEFAULT_RUNS_DIR
from bench.provenance import utc_now, utc_stamp
from bench.tensorboard_log import TENSORBOARD_DIR, write_history_scalars

__all__ = [
    "DEFAULT_RUNS_DIR",
    "JOB_LOGS_DIR",
    "LAUNCH_RECORD",
    "MOVED_ASIDE_DIR",
    "RunDir",
    "RunDirError",
    "RunState",
    "directory_bytes",
]

LAUNCH_RECORD = "launch.json"  # runs/<run-id>/launch.json: the job that owns the directory (launcher, id, state)
JOB_LOGS_DIR = "submitit"  # runs/<run-id>/submitit/: a job's sbatch script, pickles, per-task stdout/stderr
MOVED_ASIDE_DIR = ".old"  # runs/.old/<run-id>.old-<UTC stamp>: hidden, so `bench report` never reads them as runs


class RunDirError(RuntimeError):
    """A run directory is in a state that does not allow the requested action."""


class RunState:
    """What a run directory holds (string constants)."""

    ABSENT = "absent"  # no directory, or one without config.json (nothing worth keeping was written)
    STARTED = "started"  # config.json, no metrics.json: a run that was interrupted (or is running)
    IMPORTED = "imported"  # written by `bench import`: weights, no metrics yet
    COMPLETE = "complete"  # metrics.json exists


class RunDir:
    """Paths and small readers/writers of ``root`` = runs/<run-id>."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def for_config(cls, config: RunConfig, runs_dir: str | Path = DEFAULT_RUNS_DIR) -> RunDir:
        return cls(Path(runs_dir) / config.run_id)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    # --- paths ----------------------------------------------------------------------------------------
    config_path = property(lambda self: self.root / "config.json")
    metrics_path = property(lambda self: self.root / "metrics.json")
    per_image_path = property(lambda self: self.root / "per_image.csv")
    predictions_path = property(lambda self: self.root / "predictions.h5")
    history_path = property(lambda self: self.root / "history.csv")
    log_path = property(lambda self: self.root / "log.txt")
    tensorboard_dir = property(lambda self: self.root / TENSORBOARD_DIR)
    checkpoints = property(lambda self: self.root / "checkpoints")
    last_checkpoint = property(lambda self: self.root / "checkpoints" / "last.pt")
    best_checkpoint = property(lambda self: self.root / "checkpoints" / "best.pt")
    final_weights = property(lambda self: self.root / "checkpoints" / "final.pt")
    launch_path = property(lambda self: self.root / LAUNCH_RECORD)
    job_logs = property(lambda self: self.root / JOB_LOGS_DIR)

    # --- state ----------------------------------------------------------------------------------------
    def state(self) -> str:
        if not self.config_path.is_file():
            return RunState.ABSENT
        if self.metrics_path.is_file():
            return RunState.COMPLETE
        config, _ = self.read_config()
        return RunState.IMPORTED if config.source == "imported" else RunState.STARTED

    def describe(self) -> str:
        """One line for plans and errors: the state and, for started runs, where it would resume."""
        state = self.state()
        if state == RunState.STARTED and self.last_checkpoint.is_file():
            return f"started, checkpoint at {self.last_checkpoint.stat().st_size / 2**20:.1f} MiB"
        return state

    def move_aside(self, now: datetime | None = None) -> Path:
        """Rename the directory to ``<runs>/.old/<run-id>.old-<UTC stamp>`` (never onto an existing path)."""
        stamp = utc_stamp(now)
        aside = self.root.parent / MOVED_ASIDE_DIR
        aside.mkdir(exist_ok=True)
        target = aside / f"{self.root.name}.old-{stamp}"
        n = 1
        while target.exists():
            n += 1
            target = aside / f"{self.root.name}.old-{stamp}-{n}"
        os.rename(self.root, target)  # atomic on one filesystem; refuses to replace a non-empty directory
        return target

    def size_bytes(self) -> int:
        """Bytes of every file under the run directory."""
        return directory_bytes(self.root)

    # --- config.json ----------------------------------------------------------------------------------
    def read_config(self) -> tuple[RunConfig, dict[str, Any]]:
        """(RunConfig, provenance) from config.json; a damaged or foreign file raises naming it."""
        try:
            obj = json.loads(self.config_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(f"cannot read {self.config_path}: {exc}") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("config"), dict):
            raise RunDirError(f"{self.config_path} has no 'config' object (runs/README.md describes the format)")
        try:
            config = RunConfig.from_dict(obj["config"], where=str(self.config_path))
        except ConfigError as exc:
            raise RunDirError(str(exc)) from exc
        return config, obj.get("provenance") or {}

    def write_config(self, config: RunConfig, provenance: dict[str, Any]) -> None:
        write_json_atomic(self.config_path, {"config": config.to_dict(), "provenance": provenance})

    def update_provenance(self, **fields: Any) -> None:
        config, provenance = self.read_config()
        self.write_config(config, {**provenance, **fields})

    # --- results --------------------------------------------------------------------------------------
    def read_metrics(self) -> dict[str, Any]:
        try:
            return json.loads(self.metrics_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(f"cannot read {self.metrics_path}: {exc}") from exc

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        """history.csv: one row per evaluated epoch (train loss, lr, headline test metrics, time); the rows not
        yet in tensorboard/ also become TensorBoard scalars when tensorboard is installed (bench.tensorboard_log)."""
        if rows:
            columns = list(dict.fromkeys(k for row in rows for k in row))
            write_csv_atomic(self.history_path, [{c: row.get(c, "") for c in columns} for row in rows], columns)
            write_history_scalars(self.tensorboard_dir, rows, notice=self.log)

    # --- launch.json ----------------------------------------------------------------------------------
    def read_launch_record(self) -> dict[str, Any]:
        """launch.json as a dict; {} when there is none or it cannot be read."""
        try:
            record = json.loads(self.launch_path.read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def write_launch_record(self, record: dict[str, Any]) -> None:
        """A new submission's launch.json, replacing any earlier one."""
        write_json_atomic(self.launch_path, record)

    def update_launch_record(self, **fields: Any) -> None:
        """Merge ``fields`` into launch.json (created if absent), stamped ``updated_utc``."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.launch_path, {**self.read_launch_record(), **fields, "updated_utc": utc_now()})

    # --- log.txt --------------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        """Append one timestamped line to log.txt."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with open(self.log_path, "a", encoding="utf-8") as f:
            for line in message.splitlines() or [""]:
                f.write(f"{stamp} {line}\n")


def directory_bytes(root: str | Path) -> int:
    """Total size in bytes of the regular files under ``root`` (0 if it does not exist)."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total
