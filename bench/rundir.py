"""One run's directory, ``runs/<run-id>/`` (format: runs/README.md): paths, state, and its small files.

Every file here is written atomically (``bench.io``); ``log.txt`` is appended line by line. The state of a
directory decides what ``bench run`` does with it: start, resume, evaluate an import, or leave it alone.

A run has one writer at a time: its lock, ``runs/.locks/<run-id>.lock`` (``bench.runlock``), and nobody moves
a directory another process holds. ``final_weights_problem`` checks checkpoints/final.pt against the sha256
metrics.json recorded for it; ``run_footprint`` / ``disk_space_warning`` estimate what planned runs write.

``launch.json`` (written by ``bench run --launcher local|slurm``) records the job that owns the directory;
``bench status`` and the launchers read it here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.config import ConfigError, RunConfig
from bench.io import (
    DISK_FULL_ERRNOS,
    DiskFullError,
    format_bytes,
    free_bytes,
    sha256_file,
    write_csv_atomic,
    write_json_atomic,
)
from bench.paths import DEFAULT_RUNS_DIR
from bench.provenance import utc_now, utc_stamp
from bench.runlock import LockedBy, RunLock, held_here, read_lock, run_lock_path, try_lock
from bench.tensorboard_log import TENSORBOARD_DIR, write_history_scalars

__all__ = [
    "DEFAULT_RUNS_DIR",
    "FINAL_WEIGHTS_KEY",
    "JOB_LOGS_DIR",
    "LAUNCH_RECORD",
    "MOVED_ASIDE_DIR",
    "REPORT_BYTES",
    "RESULTS_BYTES",
    "RunDir",
    "RunDirError",
    "RunFootprint",
    "RunLockedError",
    "RunState",
    "directory_bytes",
    "disk_space_warning",
    "model_tensor_bytes",
    "planned_bytes",
    "run_footprint",
]

FINAL_WEIGHTS_KEY = "final_weights"  # metrics.json: {"path", "bytes", "sha256"} of checkpoints/final.pt
LAUNCH_RECORD = "launch.json"  # runs/<run-id>/launch.json: the job that owns the directory (launcher, id, state)
JOB_LOGS_DIR = "submitit"  # runs/<run-id>/submitit/: a job's sbatch script, pickles, per-task stdout/stderr
MOVED_ASIDE_DIR = ".old"  # runs/.old/<run-id>.old-<UTC stamp>: hidden, so `bench report` never reads them as runs


class RunDirError(RuntimeError):
    """A run directory is in a state that does not allow the requested action."""


class RunLockedError(RunDirError):
    """Another process holds the run's lock (``holder`` says who): the directory is not touched."""

    def __init__(self, message: str, holder: LockedBy):
        super().__init__(message)
        self.holder = holder


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
        """One line for plans and errors: the state, for started runs where it would resume, and who holds the
        run's lock if another process does."""
        state = self.state()
        text = state
        if state == RunState.STARTED and self.last_checkpoint.is_file():
            text = f"started, checkpoint at {self.last_checkpoint.stat().st_size / 2**20:.1f} MiB"
        holder = self.lock_holder()
        return f"{text}; {holder.describe()}" if holder is not None else text

    def move_aside(self, now: datetime | None = None) -> Path:
        """Rename the directory to ``<runs>/.old/<run-id>.old-<UTC stamp>`` (never onto an existing path).
        Under the run's lock: RunLockedError, and nothing moved, while another process holds it."""
        with self.locked_for("moved aside"):
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
        """Append one timestamped line to log.txt (DiskFullError, naming log.txt, when there is no room)."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = "".join(f"{stamp} {line}\n" for line in message.splitlines() or [""])
        try:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            if exc.errno in DISK_FULL_ERRNOS:
                free, kept = free_bytes(self.root), "its earlier lines are kept"
                raise DiskFullError(self.log_path, len(text.encode()), free, exc.errno, kept=kept) from exc
            raise

    # --- one writer, intact weights (issue 25) -----------------------------------------------------------
    lock_path = property(lambda self: run_lock_path(self.root.parent, self.root.name))  # runs/.locks/<id>.lock

    def try_lock(self, command: str | None = None) -> RunLock | LockedBy:
        """Take this run's lock for the life of the run (``bench.runlock.try_lock``): a RunLock to release at
        the end, or LockedBy naming the process that holds it (host, pid, since)."""
        return try_lock(self.lock_path, run_id=self.root.name, command=command)

    def lock_holder(self) -> LockedBy | None:
        """Who holds this run's lock now (``bench status``: "locked by host:pid since ..."), or None."""
        return read_lock(self.lock_path)

    @contextmanager
    def locked_for(self, action: str) -> Iterator[None]:
        """Hold this run's lock for the block (already held by this process: keep holding it); RunLockedError
        naming the holder, before anything is done, while another process holds it."""
        if held_here(self.lock_path):
            yield
            return
        got = self.try_lock()
        if isinstance(got, LockedBy):
            raise RunLockedError(f"{self.root} is in use, not {action}: {got.describe()}", got)
        with got:
            yield

    def final_weights_record(self) -> dict[str, Any]:
        """What metrics.json keeps about checkpoints/final.pt (as ``final_weights``) to verify it later:
        {"path": "checkpoints/final.pt", "bytes", "sha256"} of the file as it is now."""
        return {
            "path": self.final_weights.relative_to(self.root).as_posix(),
            "bytes": self.final_weights.stat().st_size,
            "sha256": _sha256_once(self.final_weights),
        }

    def final_weights_problem(self, digest: bool = True) -> str | None:
        """None when checkpoints/final.pt is what metrics.json recorded (size, then sha256), or when it recorded
        nothing (runs finished before the record existed); else one line naming the file, expected and found,
        and the way out: re-evaluate from the training checkpoint if it was kept, or ``--rerun``.
        ``digest=False`` compares the size only, reading no file (``bench status`` over a whole campaign); a
        file's sha256 is computed once per process for as long as the file is unchanged."""
        record = self.read_metrics().get(FINAL_WEIGHTS_KEY)
        if not isinstance(record, dict) or not record.get("sha256"):
            return None
        path, want_bytes, want = self.final_weights, record.get("bytes"), str(record["sha256"])
        if not path.is_file():
            found = "missing"
        elif want_bytes is not None and path.stat().st_size != want_bytes:
            found = f"{path.stat().st_size:,} bytes, metrics.json recorded {want_bytes:,} (sha256 {want[:16]}...)"
        elif not digest:
            return None
        else:
            got = _sha256_once(path)
            if got == want:
                return None
            found = f"sha256 {got[:16]}..., metrics.json recorded {want[:16]}... ({path.stat().st_size:,} bytes)"
        return f"{path} is damaged ({found}); {self._final_way_out()}"

    def _final_way_out(self) -> str:
        metrics = self.read_metrics()
        source = self.best_checkpoint if metrics.get("checkpoint") == "best" else self.last_checkpoint
        rerun = "`bench run --rerun` trains it again"
        if source.is_file():
            return (
                f"re-evaluate it from {source.relative_to(self.root).as_posix()}, which was kept (move "
                f"metrics.json aside and run `bench run --resume`: training is complete there, so it only "
                f"evaluates and writes final.pt again), or {rerun}"
            )
        return f"{rerun} ({source.relative_to(self.root).as_posix()} was not kept)"


_DIGESTS: dict[tuple[str, int, int, int], str] = {}  # (real path, inode, size, mtime_ns) -> sha256 of the file


def _sha256_once(path: Path) -> str:
    """``sha256_file(path)``, read once per process while the file is unchanged (the preflight and the run's own
    check of a reused final.pt, hundreds of MiB each, then hash it once)."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def directory_bytes(root: str | Path) -> int:
    """Total size in bytes of the regular files under ``root`` (0 if it does not exist)."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total


# --- the disk space runs need (issue 25) --------------------------------------------------------------------

RESULTS_BYTES = 32 * 2**20  # per run: metrics.json, per_image.csv, predictions.h5 (6 frames at 480x640),
# history.csv, log.txt, tensorboard/ (an allowance, bytes)
REPORT_BYTES = 64 * 2**20  # reports/: tables, figures and report.html with its image grid (an allowance, bytes)
CHECKPOINT_EXTRA_BYTES = 256 * 2**10  # beyond the tensors: config, RNG states, zip and pickle records (bytes)


@dataclass(frozen=True)
class RunFootprint:
    """Bytes one run writes under runs/<run-id>/, estimated from its model's tensors (fp32 as trained)."""

    run_id: str
    final_bytes: int  # checkpoints/final.pt: weights and buffers, kept
    last_bytes: int  # checkpoints/last.pt: weights + Adam's two moments (+ amsgrad's max) per parameter
    results_bytes: int  # RESULTS_BYTES
    peak_bytes: int  # the most at once: last.pt and its next version during a save (+ best.pt), final.pt, results
    kept_bytes: int  # what stays: final.pt and results (+ last.pt, best.pt with keep_checkpoints)


def model_tensor_bytes(config: RunConfig) -> tuple[int, int]:
    """(bytes of the parameters, bytes of the buffers) of the config's model, built on torch's meta device
    (no memory, no weights read: a second for SENet-154)."""
    import torch

    from architectures import build_model

    with torch.device("meta"):
        model = build_model(config.arch, config.backbone, weights=None, **config.options)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return params, sum(b.numel() * b.element_size() for b in model.buffers())


def run_footprint(config: RunConfig, param_bytes: int, buffer_bytes: int) -> RunFootprint:
    """What ``config``'s run writes, given its model's tensor sizes (``model_tensor_bytes``)."""
    weights = param_bytes + buffer_bytes + CHECKPOINT_EXTRA_BYTES
    moments = 3 if config.amsgrad else 2  # Adam: exp_avg, exp_avg_sq (+ max_exp_avg_sq)
    last = weights + moments * param_bytes
    best = last if config.checkpoint_select == "best" else 0
    peak = 2 * last + best + weights + RESULTS_BYTES
    kept = weights + RESULTS_BYTES + (last + best if config.keep_checkpoints else 0)
    return RunFootprint(config.run_id, weights, last, RESULTS_BYTES, peak, kept)


def planned_bytes(
    configs: Sequence[RunConfig], runs_dir: str | Path = DEFAULT_RUNS_DIR, parallel: int = 1
) -> tuple[int, list[RunFootprint]]:
    """(bytes the plan still needs at its peak, footprints of the runs that will write): what the finished
    runs keep, plus the largest transient (``parallel`` runs at once) and the report. Complete runs need
    nothing; a started run is credited with what its directory already holds."""
    sizes: dict[tuple[str, str, str], tuple[int, int]] = {}
    prints, extra = [], []
    for c in configs:
        rd = RunDir.for_config(c, runs_dir)
        if rd.metrics_path.is_file() or c.source == "imported":
            continue
        key = (c.arch, c.backbone, json.dumps(c.options, sort_keys=True))
        if key not in sizes:
            sizes[key] = model_tensor_bytes(c)
        fp = run_footprint(c, *sizes[key])
        prints.append(fp)
        extra.append(max(fp.peak_bytes - fp.kept_bytes - rd.size_bytes(), 0))
    kept = sum(fp.kept_bytes for fp in prints)
    return kept + sum(sorted(extra, reverse=True)[: max(parallel, 1)]) + REPORT_BYTES, prints


def disk_space_warning(
    configs: Sequence[RunConfig], runs_dir: str | Path = DEFAULT_RUNS_DIR, parallel: int = 1
) -> str | None:
    """For the preflight: one line when the filesystem of ``runs_dir`` has less free space than the planned
    runs will write (``planned_bytes``), else None."""
    needed, prints = planned_bytes(configs, runs_dir, parallel)
    free = free_bytes(runs_dir)
    if not prints or free >= needed:
        return None
    biggest = max(prints, key=lambda fp: fp.last_bytes)
    return (
        f"{Path(runs_dir)} has {format_bytes(free)} free; the {len(prints)} run(s) to train will need about "
        f"{format_bytes(needed)} (final.pt per run, last.pt while training: up to "
        f"{format_bytes(biggest.last_bytes)} for {biggest.run_id}, and the report). A run that fills the disk "
        f"stops with its checkpoint intact; free space or pass --runs-dir on a larger filesystem"
    )
