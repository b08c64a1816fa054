"""Transfer progress: a redrawn bar with bytes, rate and ETA on a terminal; a line every 10% elsewhere (logs).

The rate is measured over the last ``RATE_WINDOW_S`` seconds of this session (bytes resumed from an earlier
session count as done but not towards the rate), so the ETA follows the connection as it is now.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

__all__ = ["TransferProgress", "format_duration", "human_bytes"]

BAR_WIDTH = 24  # characters of the bar on a terminal
REDRAW_S = 0.2  # at most this often on a terminal (s)
RATE_WINDOW_S = 10.0  # rate over this much recent time (s)
UNKNOWN_TOTAL_LINE_S = 30.0  # without a known total, a log line this often (s)


def human_bytes(n: float | None) -> str:
    """Decimal units, as download sizes are published: 4.10 GB, 97.8 MB, 512 B."""
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.{2 if unit == 'GB' else 1}f} {unit}"
    return f"{int(n)} B"


def format_duration(seconds: float | None) -> str:
    """1h02m, 4m05s, 12s; '?' when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class TransferProgress:
    """Progress of one transfer; ``advance`` after every chunk, ``close`` at the end."""

    def __init__(
        self,
        label: str,
        total: int | None,
        done: int = 0,
        stream: TextIO | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label = label
        self.total = total
        self.done = done
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        now = clock()
        self._samples: deque[tuple[float, int]] = deque([(now, done)])
        self._last_draw = -float("inf")
        self._next_decile = self._decile() + 1
        self._last_line = now
        self._width = 0

    def reset(self, done: int = 0, total: int | None = None) -> None:
        """Start counting again from ``done`` (a server that ignored the range request: starting over)."""
        self.done, self.total = done, total if total is not None else self.total
        self._samples = deque([(self.clock(), done)])
        self._next_decile = self._decile() + 1

    def advance(self, n: int) -> None:
        self.done += n
        now = self.clock()
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()
        if self.tty:
            if now - self._last_draw >= REDRAW_S:
                self._draw(now)
        elif self.total:
            if self._decile() >= self._next_decile:
                self._next_decile = self._decile() + 1
                self._line()
        elif now - self._last_line >= UNKNOWN_TOTAL_LINE_S:
            self._last_line = now
            self._line()

    def close(self) -> None:
        if self.tty:
            self._draw(self.clock())
            self.stream.write("\n")
            self.stream.flush()

    def rate(self) -> float | None:
        """Bytes per second over the recent window; None until there are two samples apart in time."""
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else None

    def eta(self) -> float | None:
        rate = self.rate()
        if not self.total or not rate:
            return None
        return max(self.total - self.done, 0) / rate

    def status(self) -> str:
        """'1.23 GB / 4.10 GB (30%), 11.2 MB/s, ETA 4m16s' (parts that are unknown are left out)."""
        rate = self.rate()
        parts = [f"{human_bytes(self.done)} / {human_bytes(self.total)} ({self._percent():.0f}%)" if self.total else
                 human_bytes(self.done)]  # fmt: skip
        parts.append(f"{human_bytes(rate)}/s" if rate is not None else "-- /s")
        if self.total:
            parts.append(f"ETA {format_duration(self.eta())}")
        return ", ".join(parts)

    def _percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0

    def _decile(self) -> int:
        return int(self._percent() // 10) if self.total else 0

    def _draw(self, now: float) -> None:
        self._last_draw = now
        if self.total:
            filled = min(BAR_WIDTH, int(BAR_WIDTH * self.done / self.total))
            bar = "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "] "
        else:
            bar = ""
        text = f"{self.label} {bar}{self.status()}"
        pad = max(self._width - len(text), 0)
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def _line(self) -> None:
        self.stream.write(f"{self.label}: {self.status()}\n")
        self.stream.flush()
