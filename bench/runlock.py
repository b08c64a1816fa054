"""One writer per run: an exclusive OS-level lock held for the life of a run, whoever launched it.

The lock of run ``<run-id>`` is ``runs/.locks/<run-id>.lock``, outside the run directory: it names the run,
not a directory, so the holder can move ``runs/<run-id>`` aside (``--rerun``) and write a new one without
letting go, and nobody can move a directory another process is writing (``RunDir.move_aside`` takes the
lock first). Its content is the holder, written after locking:
``{"host", "pid", "since" (UTC), "command", "job_id", "run_id"}``. The holder removes the file (and an empty
``.locks/``) before letting go, so a runs directory keeps no trace of finished runs; a locker checks after
locking that the path still names the file it locked, else takes the new one. A holder that crashed leaves
its file, unlocked: a record nobody holds, which ``read_lock`` does not report and the next locker reuses.

Why fcntl record locks, and not ``flock`` or a pid file:

- the kernel drops them when the holder dies, however it dies (kill -9, a node's OOM killer): a crash never
  leaves the lock behind, which a pid file cannot promise (a pid is reused, a host name says nothing on
  another node);
- they are what NFS (NLM, NFSv4) and cluster filesystems (Lustre mounted with ``flock``, GPFS) keep
  coherent across machines; ``flock`` is emulated with them on NFS since Linux 2.6.12 and not shared across
  clients on older kernels. On NFSv4 a crashed client's locks go when its lease ends (about 90 s).

On Linux they are open-file-description locks (``F_OFD_SETLK``): a classic POSIX lock (``lockf``, the
fallback elsewhere and where a filesystem refuses OFD locks) is released when its process closes *any*
descriptor of the file, so an innocent ``read_text()`` of the lock file by the holder would let a second
writer in. Forked children (DataLoader workers) close their copy of the descriptor at once
(``os.register_at_fork``), so only the process that took the lock ever holds it.
``bench status`` reads a lock without taking it (``F_OFD_GETLK``/``F_GETLK``), so it never turns a starting
run away.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import socket
import struct
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["LOCKS_DIR", "LockedBy", "RunLock", "RunLockError", "held_here", "read_lock", "run_lock_path", "try_lock"]

LOCKS_DIR = ".locks"  # runs/.locks/<run-id>.lock: hidden, as runs/.old/, so no reader takes it for a run

LOCK_ATTEMPTS = 20  # tries before giving up on a lock that keeps changing hands under us
_held: dict[str, RunLock] = {}  # lock files this process holds, by real path


class RunLockError(RuntimeError):
    """The lock cannot be used at all (a filesystem without fcntl locks, a lock already held here)."""


@dataclass(frozen=True)
class LockedBy:
    """Who holds a run's lock, as the holder wrote it (None where the holder has not written it yet)."""

    host: str | None
    pid: int | None
    since: str | None  # UTC, ISO 8601 to the second
    command: str | None = None
    job_id: str | None = None  # SLURM_JOB_ID of the holder, when it runs in a SLURM job
    run_id: str | None = None

    def describe(self) -> str:
        """``locked by node12:4711 (SLURM job 998) since 2025-01-31T12:00:00+00:00``."""
        who = f"{self.host or '?'}:{self.pid if self.pid is not None else '?'}"
        job = f" (SLURM job {self.job_id})" if self.job_id else ""
        since = f" since {self.since}" if self.since else " (no holder record yet)"
        return f"locked by {who}{job}{since}"


class RunLock:
    """A held run lock; ``release()`` (or leaving its ``with`` block) lets it go. Get one from ``try_lock``."""

    def __init__(self, path: Path, fd: int, holder: LockedBy):
        self.path, self._fd, self.holder = path, fd, holder

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Remove the lock file while still holding it, then let the lock go (closing the descriptor releases
        it) and remove ``.locks/`` if no other run's lock is in it."""
        if self._fd is None:
            return
        key, fd, self._fd = _key(self.path), self._fd, None
        _held.pop(key, None)
        try:
            os.unlink(self.path)  # whoever opened it meanwhile finds it gone once it gets the lock, and retries
        except OSError:
            pass  # the lock goes with the close below either way
        os.close(fd)
        try:
            self.path.parent.rmdir()
        except OSError:
            pass  # other runs' locks are in it

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RunLock({str(self.path)!r}, {'held' if self.held else 'released'})"


def run_lock_path(runs_dir: str | Path, run_id: str) -> Path:
    """``runs/.locks/<run-id>.lock``."""
    return Path(runs_dir) / LOCKS_DIR / f"{run_id}.lock"


def try_lock(path: str | Path, run_id: str | None = None, command: str | None = None) -> RunLock | LockedBy:
    """Take the lock at ``path`` without waiting: a ``RunLock`` (holder record written), or ``LockedBy`` naming
    the process that holds it. ``command`` (default: this process's command line) goes into the record.
    Raises RunLockError if this process already holds it (pass that RunLock on instead) or if the
    filesystem has no fcntl locks."""
    path = Path(path)
    if held_here(path):
        raise RunLockError(f"{path} is already held by this process ({_held[_key(path)].holder.describe()})")
    for _ in range(LOCK_ATTEMPTS):  # a holder letting go (removing the file) while we look: look again
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:  # .locks/ was removed by a holder letting go, between our mkdir and open
            continue
        try:
            got = _lock(fd)
        except OSError as exc:
            os.close(fd)
            raise RunLockError(f"cannot lock {path}: {exc} (does this filesystem support fcntl locks?)") from exc
        if got and _names(path, fd):
            break
        os.close(fd)
        holder = None if got else read_lock(path)  # got a file its holder removed as it let go: try the path again
        if holder is not None:
            return holder
    else:
        raise RunLockError(f"cannot lock {path}: other processes keep taking and letting go of it")
    holder = LockedBy(
        host=socket.gethostname(),
        pid=os.getpid(),
        since=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=command if command is not None else shlex.join([sys.executable, *sys.argv]),
        job_id=os.environ.get("SLURM_JOB_ID"),
        run_id=run_id,
    )
    data = (json.dumps(asdict(holder), sort_keys=True) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)
    lock = RunLock(path, fd, holder)
    _held[_key(path)] = lock
    return lock


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed, not replaced by a new one)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def held_here(path: str | Path) -> bool:
    """Whether this process holds the lock at ``path``."""
    return _key(Path(path)) in _held


def read_lock(path: str | Path) -> LockedBy | None:
    """Who holds the lock at ``path`` now, or None when nobody does (a record left by a holder that crashed
    is not a holder). Never takes the lock, so a run starting at the same moment is not turned away."""
    path = Path(path)
    if held_here(path):
        return _held[_key(path)].holder
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        pid = _lock_owner(fd)
        if pid is None:
            return None
        text = os.pread(fd, 64 * 1024, 0).decode("utf-8", "replace")
    finally:
        os.close(fd)
    try:
        record = json.loads(text)
        return LockedBy(**{k: record.get(k) for k in LockedBy.__dataclass_fields__})
    except (ValueError, TypeError):  # the holder is writing its record right now
        return LockedBy(None, pid if pid and pid > 0 else None, None)


# struct flock for fcntl(F_SETLK / F_GETLK and their OFD forms): Linux (l_type, l_whence, l_start, l_len,
# l_pid) and the BSDs / macOS (l_start, l_len, l_pid, l_type, l_whence)
_BSD = sys.platform == "darwin" or "bsd" in sys.platform
_FLOCK = "qqihh" if _BSD else "hhqqi4x"
_OFD = sys.platform.startswith("linux") and hasattr(fcntl, "F_OFD_SETLK")


def _flock(kind: int) -> bytes:
    """A struct flock over the whole file (start 0, length 0 = to the end; pid 0 as OFD locks require)."""
    return struct.pack(_FLOCK, 0, 0, 0, kind, os.SEEK_SET) if _BSD else struct.pack(_FLOCK, kind, os.SEEK_SET, 0, 0, 0)


def _lock(fd: int) -> bool:
    """Take a write lock on the whole file without waiting: True, or False when another holder has it."""
    global _OFD
    try:
        if _OFD:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock(fcntl.F_WRLCK))
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return False
        if _OFD and exc.errno == errno.EINVAL:  # a filesystem without OFD locks: classic POSIX locks
            _OFD = False
            return _lock(fd)
        raise
    return True


def _lock_owner(fd: int) -> int | None:
    """The pid that holds a lock on the file (-1 for an OFD lock, 0 where the filesystem cannot tell, e.g. a
    remote NFS client), or None when nobody holds one. Asks whether a write lock could be set, without
    setting it."""
    answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK if _OFD else fcntl.F_GETLK, _flock(fcntl.F_WRLCK))
    if _BSD:
        _, _, pid, kind, _ = struct.unpack(_FLOCK, answer)
    else:
        kind, _, _, _, pid = struct.unpack(_FLOCK, answer)
    return None if kind == fcntl.F_UNLCK else pid


def _close_in_child() -> None:
    """After a fork, in the child: drop the copies of held lock descriptors (the parent keeps the locks)."""
    for lock in list(_held.values()):
        if lock._fd is not None:
            os.close(lock._fd)
            lock._fd = None
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


def _key(path: Path) -> str:
    return os.path.realpath(path)
