"""Atomic writes: every file in a run directory appears whole or not at all (temp file + rename).

``atomic_path`` lives in ``architectures.files`` (the data writers use it too) and is re-exported here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from architectures.files import atomic_path

__all__ = ["atomic_path", "write_bytes_atomic", "write_csv_atomic", "write_json_atomic", "write_text_atomic"]


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
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


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, Mapping):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj
