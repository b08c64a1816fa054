"""Atomic, durable file writes shared by the data writers and ``bench.io``: a file appears whole or not at all,
and a write that fails for lack of space says so in one line.

The rule for atomic writes on Linux: write a temporary file next to the target, fsync it, rename it over the
target, then fsync the directory, so that a power cut cannot lose the rename that a later step relied on.

Plain python (no torch), so that ``bench report`` can write its files without loading torch.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "DISK_FULL_ERRNOS",
    "DiskFullError",
    "atomic_path",
    "check_free_space",
    "format_bytes",
    "free_bytes",
    "fsync_directory",
]

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)  # no space left on the device; the user's quota is used up
NEARLY_FULL_BYTES = 4 * 2**20  # a writer's error counts as "disk full" when less than this is left (bytes)
# torch.save reports a short write of its zip stream as a RuntimeError, not as an OSError with errno 28
# (issue 25: "[enforce fail at inline_container.cc:672] . unexpected pos 35369664 vs 35369560")
WRITE_FAILED = re.compile(
    r"unexpected pos|PytorchStreamWriter failed|file write failed|iostream error|No space left", re.IGNORECASE
)


class DiskFullError(OSError):
    """A write failed (or would fail) for lack of space: one line naming the file, the bytes it needed and
    the bytes free on its filesystem. The file is as it was before the write (or absent), no temp file left.
    The one type for a full disk, whoever writes: ``message`` words the line for writers that say more (what
    to run again: ``bench fetch``)."""

    def __init__(
        self,
        path: str | Path,
        needed_bytes: int,
        free: int,
        code: int = errno.ENOSPC,
        before: bool = False,
        at_least: bool = False,
        kept: str | None = None,
        message: str | None = None,
    ):
        self.path, self.needed_bytes, self.free_bytes = Path(path), int(needed_bytes), int(free)
        what = "disk quota exceeded" if code == errno.EDQUOT else "no space left on device"
        if before:
            what = "not enough free space"
        needs = f"more than {format_bytes(needed_bytes)}" if at_least else f"about {format_bytes(needed_bytes)}"
        if kept is None:  # what is left of the file: an atomic write leaves it as it was
            kept = f"the previous {self.path.name} is unchanged" if self.path.exists() else "nothing was written"
        self.message = message or (
            f"{what} for {self.path}: it needs {needs}, {format_bytes(free)} free on its filesystem; {kept}"
        )
        super().__init__(code, self.message, str(self.path))

    def __str__(self) -> str:
        return self.message


def free_bytes(path: str | Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path`` (or its nearest existing
    parent): statvfs's f_bavail, which leaves out the blocks reserved for root."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def check_free_space(path: str | Path, needed_bytes: int) -> None:
    """Raise DiskFullError before writing ``needed_bytes`` to ``path`` when its filesystem has less free.
    (An atomic write of a file that already exists needs the whole new size: the old file stays until the
    rename.)"""
    free = free_bytes(path)
    if free < needed_bytes:
        raise DiskFullError(path, needed_bytes, free, before=True)


def format_bytes(n: int) -> str:
    """``412.3 MiB (432,316,416 bytes)``: binary units as ``du -h``, with the exact count."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


@contextmanager
def atomic_path(path: str | Path, expected_bytes: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` durably, else it vanishes.

    Use for writers that want a file name (torch.save, h5py): ``with atomic_path(p) as tmp: torch.save(x, tmp)``.
    On success the temp file is fsynced, renamed over ``path`` and the directory fsynced (with the parents of
    any directory created for it). A failure for lack of space (ENOSPC/EDQUOT, or a writer's own error while
    the filesystem is full) becomes ``DiskFullError`` naming ``path``, ``expected_bytes`` (default: what was
    written before the failure) and the free space; ``path`` keeps its previous content either way.
    """
    path = Path(path)
    created: list[Path] = []
    tmp = None
    try:
        created = _make_parents(path.parent)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode a plain open() would
        os.replace(tmp, path)
    except BaseException as exc:
        disk_full = _clean_up(exc, path, tmp, expected_bytes)
        if disk_full is not None:
            raise disk_full from exc
        raise
    for directory in [path.parent, *(d.parent for d in created)]:
        fsync_directory(directory)


def fsync_directory(directory: str | Path) -> None:
    """Make the entries of ``directory`` (a rename into it, a file created in it) durable. A no-op where the
    platform or filesystem cannot fsync a directory (Windows, some network filesystems)."""
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:
        return
    fd = os.open(directory, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _clean_up(exc: BaseException, path: Path, tmp: Path | None, expected_bytes: int | None) -> DiskFullError | None:
    """After a failed write: remove the temp file, whatever else fails; the DiskFullError to raise instead of
    ``exc`` when it was a write that failed for lack of space, else None (``exc`` goes on as it is)."""
    make = None
    try:
        make = _disk_full(exc, path, tmp, expected_bytes)
        if make is not None:
            _let_go_of_writers(exc)
    except Exception:  # judging the error must never hide it
        make = None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    try:
        return make(free_bytes(path.parent)) if make is not None else None
    except OSError:
        return None


def _disk_full(exc: BaseException, path: Path, tmp: Path | None, expected_bytes: int | None):
    """A factory ``free -> DiskFullError`` when ``exc`` is a write that failed for lack of space, else None.
    Decided before the temp file is removed: its blocks still count, so the filesystem still looks full."""
    if not isinstance(exc, OSError | RuntimeError):
        return None
    written = tmp.stat().st_size if tmp is not None and tmp.exists() else 0
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        code = exc.errno
    elif WRITE_FAILED.search(str(exc)):
        free = free_bytes(path.parent)
        if free >= NEARLY_FULL_BYTES and (expected_bytes is None or written + free >= expected_bytes):
            return None  # room enough: another kind of write failure
        code = errno.ENOSPC
    else:
        return None
    needed, at_least = (max(expected_bytes, written), False) if expected_bytes else (written, True)
    return lambda free: DiskFullError(path, needed, free, code, at_least=at_least)


def _let_go_of_writers(exc: BaseException) -> None:
    """Clear the local variables of the finished frames in ``exc``'s tracebacks (and its context's): torch.save's
    writer sits there with the temp file open, and removing an open file frees no space."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__


def _make_parents(directory: Path) -> list[Path]:
    """mkdir -p ``directory``; returns the directories it created (their parents need an fsync too)."""
    missing = []
    d = directory
    while not d.exists() and d != d.parent:
        missing.append(d)
        d = d.parent
    directory.mkdir(parents=True, exist_ok=True)
    return missing


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
