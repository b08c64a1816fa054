"""Atomic writes: every file in a run directory appears whole or not at all (temp file + rename), durably
(file and directory fsynced), and a write that fails for lack of space raises ``DiskFullError`` naming the
file, the bytes it needed and the bytes free.

``atomic_path`` and ``DiskFullError`` live in ``architectures.files`` (the data writers use them too) and are
re-exported here. torch is imported only by the functions that save tensors.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from architectures.files import (
    DISK_FULL_ERRNOS,
    DiskFullError,
    atomic_path,
    check_free_space,
    format_bytes,
    free_bytes,
)

__all__ = [
    "DISK_FULL_ERRNOS",
    "DiskFullError",
    "TORCH_SAVE_OVERHEAD_BYTES",
    "atomic_path",
    "check_free_space",
    "format_bytes",
    "free_bytes",
    "payload_bytes",
    "sha256_file",
    "torch_save_atomic",
    "write_bytes_atomic",
    "write_csv_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

TORCH_SAVE_OVERHEAD_BYTES = 64 * 2**10  # torch.save's zip directory, pickle and small values, beyond the tensors
TORCH_SAVE_RECORD_BYTES = 256  # per stored tensor: zip headers and alignment padding (bytes)
SHA256_CHUNK_BYTES = 2**20


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    with atomic_path(path, expected_bytes=len(data)) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Pretty JSON with sorted keys; NaN becomes null (strict JSON has no NaN)."""
    return write_text_atomic(path, json.dumps(_nan_to_none(obj), indent=2, sort_keys=True) + "\n")


def write_csv_atomic(path: str | Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Path:
    """Rows of dicts as CSV; ``columns`` fixes the order (default: keys of the first row)."""
    rows = list(rows)
    columns = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, buf.getvalue())


def torch_save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically and durably. Checks first that the filesystem has room for
    the payload (``payload_bytes``: the file is written whole before the old one goes); a write that fails
    for lack of space anyway raises ``DiskFullError``, and the previous file stays as it was.

    torch.save writes through a file object, not the path: given a path, it names the zip's records after the
    file (here the random temporary name), so two saves of the same weights would differ; this way they are
    byte-identical and a digest of the file (final.pt's sha256 in metrics.json) depends on its content only."""
    import torch

    needed = payload_bytes(obj)
    check_free_space(path, needed)
    with atomic_path(path, expected_bytes=needed) as tmp, open(tmp, "wb") as f:
        sink = _KeepsWriteErrors(f)
        try:
            torch.save(obj, sink)
        except RuntimeError as exc:  # torch reports a failed write as "unexpected pos ...": raise the write's own
            if sink.error is None:
                raise
            raise sink.error from exc
    return Path(path)


class _KeepsWriteErrors:
    """A binary file for torch.save that remembers the OSError of a failed write (ENOSPC, EDQUOT), which torch's
    zip writer turns into a RuntimeError without its errno."""

    def __init__(self, f: Any):
        self.f, self.error = f, None

    def write(self, data: Any) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.f.flush()


def payload_bytes(obj: Any) -> int:
    """About how many bytes ``torch.save(obj)`` writes: the storages of the tensors in ``obj`` (nested dicts,
    lists, tuples; each storage counted once, as torch.save stores it once) plus zip and pickle overhead."""
    import torch

    seen: set[tuple[str, int]] = set()
    total, stack = TORCH_SAVE_OVERHEAD_BYTES, [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            key = (str(item.device), storage.data_ptr())
            if key not in seen or storage.data_ptr() == 0:
                seen.add(key)
                total += storage.nbytes() + TORCH_SAVE_RECORD_BYTES
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return total


def sha256_file(path: str | Path, progress: Callable[[int], Any] | None = None) -> str:
    """The sha256 hex digest of the whole file, read in 1 MiB chunks; ``progress(n)`` after each chunk of n
    bytes (``bench fetch`` shows it for large downloads)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(SHA256_CHUNK_BYTES):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, Mapping):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj
