"""TensorBoard event files that mirror a run's history.csv: ``runs/<run-id>/tensorboard/`` (optional).

Each history row (train loss, lr, test metrics, epoch, elapsed time) becomes scalars tagged with its column
name at the row's global ``step``. Written only when the ``tensorboard`` package is importable (``pip install
'drnet-bench[tensorboard]'``); otherwise log.txt gets one notice line and nothing else happens.

history.csv is rewritten whole after every epoch; here ``written.json`` keeps the rows already turned into
events, so each call appends only the new ones. When the rows diverge from what was written (a resumed run
repeats the epochs after its last checkpoint) the writer restarts at the first differing row's step with
TensorBoard's ``purge_step``, which makes readers drop the earlier events from that step on: no step appears
twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.io import write_json_atomic

__all__ = ["TENSORBOARD_DIR", "WRITTEN_FILE", "tensorboard_available", "write_history_scalars"]

TENSORBOARD_DIR = "tensorboard"  # under the run directory
WRITTEN_FILE = "written.json"  # in TENSORBOARD_DIR: the history rows already written as events
STEP_COLUMN = "step"
_NOTICED: set[Path] = set()  # run directories already told that tensorboard is missing (one line each)


def tensorboard_available() -> bool:
    """Whether the optional tensorboard package (and torch's writer for it) can be imported."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


def write_history_scalars(
    log_dir: str | Path, rows: Sequence[dict[str, Any]], notice: Callable[[str], None] = print
) -> bool:
    """Write the rows of ``rows`` not yet in ``log_dir``'s events; False (after one ``notice``) without
    tensorboard. Rows need a numeric ``step``; non-numeric or empty cells are skipped."""
    log_dir = Path(log_dir)
    if not tensorboard_available():
        if log_dir not in _NOTICED:
            _NOTICED.add(log_dir)
            notice("tensorboard is not installed: no event files (pip install 'drnet-bench[tensorboard]')")
        return False
    rows = [_plain(r) for r in rows]
    written = _read_written(log_dir)
    first_new = next(
        (i for i, (a, b) in enumerate(zip(rows, written, strict=False)) if a != b), min(len(rows), len(written))
    )
    new = rows[first_new:]
    if not new:  # the same rows as written, or a prefix of them (a resumed run before its next epoch)
        return True
    rewrite = first_new < len(written) or (not written and _has_events(log_dir))
    _write_events(log_dir, new, int(new[0][STEP_COLUMN]) if rewrite else None)
    write_json_atomic(log_dir / WRITTEN_FILE, {"rows": rows})
    return True


def _write_events(log_dir: Path, rows: Sequence[dict[str, Any]], purge_step: int | None) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)
    try:
        for row in rows:
            step = int(row[STEP_COLUMN])
            for tag, value in row.items():
                if tag != STEP_COLUMN and isinstance(value, int | float) and not isinstance(value, bool):
                    writer.add_scalar(tag, value, global_step=step)
    finally:
        writer.close()


def _has_events(log_dir: Path) -> bool:
    """Event files without WRITTEN_FILE: written by a process that stopped before recording them."""
    return any(log_dir.glob("events.out.tfevents.*"))


def _read_written(log_dir: Path) -> list[dict[str, Any]]:
    try:
        obj = json.loads((log_dir / WRITTEN_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []  # nothing written yet (or unreadable): write everything, purging nothing
    rows = obj.get("rows") if isinstance(obj, dict) else None
    return rows if isinstance(rows, list) else []


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """The row as it reads back from JSON (non-finite numbers as None, which is no scalar), so rows compare
    equal to the ones recorded in WRITTEN_FILE."""
    if STEP_COLUMN not in row:
        raise ValueError(f"history row without a {STEP_COLUMN!r} column: {row!r}")
    finite = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
    return json.loads(json.dumps(finite, default=float))
