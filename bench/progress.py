"""Training progress: loss, lr, images/s and three ETAs (epoch, run, suite) on a terminal bar or log lines.

- The epoch and run ETAs come from this session's seconds per step, measured from the end of the first
  step (which pays for worker start-up and lazy initialisation) on; until a second step has finished the
  line says "warming up" instead of a rate.
- The run ETA adds the evaluations still due at the last measured evaluation time (or says "+ eval" when
  none has been timed yet).
- The suite ETA adds the runs after this one: their planned steps (assuming they train on as many frames as
  this run) at the suite's mean seconds per step so far, marked "~ ... (est.)".
- Lines are written every ``every`` steps, at the end of every epoch, and at least every ``interval_s``
  seconds, so a long epoch with a large ``log_every_steps`` is never silent for long.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from bench.config import RunConfig

__all__ = ["LOG_INTERVAL_S", "Progress", "SuiteProgress", "format_hms", "planned_steps"]

BAR_WIDTH = 20  # characters of the progress bar on a terminal
LOG_INTERVAL_S = 30.0  # a log line at least this often (s), whatever log_every_steps says


def planned_steps(config: RunConfig, train_frames: int, world_size: int = 1) -> int:
    """Optimiser steps a run of ``config`` takes on ``train_frames`` frames: epochs x ceil(frames / batch),
    at most ``max_steps``. (DistributedSampler pads each process's share to ceil(frames / world_size).)"""
    frames = min(train_frames, config.train_frames) if config.train_frames is not None else train_frames
    per_rank = math.ceil(frames / world_size)
    steps = config.epochs * math.ceil(per_rank / max(config.batch_size // world_size, 1))
    return min(steps, config.max_steps) if config.max_steps is not None else steps


@dataclass
class SuiteProgress:
    """What the suite ETA needs besides the current run: the runs still to train after it and the pace
    (steps, seconds) of the runs this session already trained."""

    later: Sequence[RunConfig] = ()  # runs after the current one that will train (not reused)
    steps_done: int = 0  # optimiser steps of runs trained earlier in this session
    seconds_done: float = 0.0  # their wall time (s): training, evaluation and set-up

    def record(self, steps: int | None, seconds: float | None) -> None:
        """Add a finished run's steps and wall time (s) to the pace."""
        if steps and seconds:
            self.steps_done += steps
            self.seconds_done += seconds

    def later_seconds(self, train_frames: int, run_steps: int, run_seconds: float, world_size: int = 1) -> float:
        """Estimated seconds for the later runs: their planned steps at the pooled seconds per step of
        the earlier runs and this one (``run_steps`` in ``run_seconds``)."""
        steps = self.steps_done + run_steps
        if steps <= 0:
            return math.nan
        per_step = (self.seconds_done + run_seconds) / steps
        return per_step * sum(planned_steps(c, train_frames, world_size) for c in self.later)


@dataclass
class Progress:
    """One training session's progress display; ``update`` after every step."""

    label: str
    epochs: int
    steps_per_epoch: int
    run_steps: int  # optimiser steps the whole run takes (epochs x steps_per_epoch, capped by max_steps)
    every: int  # log_every_steps
    stream: TextIO | None = None  # None: stdout
    log: Callable[[str], None] | None = None  # also gets every non-bar line (log.txt)
    suite: SuiteProgress | None = None
    train_frames: int = 0  # for the suite ETA's planned steps of later runs
    world_size: int = 1
    interval_s: float = LOG_INTERVAL_S
    clock: Callable[[], float] = time.perf_counter
    evals_left: int = 0  # evaluations still due in this run (set by the loop)
    eval_s: float | None = None  # seconds of the last evaluation, once one was timed
    _t_first: float | None = field(default=None, repr=False)  # clock at the end of the session's first step
    _steps_after_first: int = field(default=0, repr=False)
    _images_after_first: int = field(default=0, repr=False)
    _t_logged: float = field(default=0.0, repr=False)
    _t_start: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.stream = self.stream if self.stream is not None else sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._t_start = self._t_logged = self.clock()

    # --- pace ---------------------------------------------------------------------------------------
    def _record(self, images: int) -> float:
        now = self.clock()
        if self._t_first is None:
            self._t_first = now
        else:
            self._steps_after_first += 1
            self._images_after_first += images
        return now

    def seconds_per_step(self) -> float | None:
        """Seconds per optimiser step since the end of the first step; None while warming up."""
        if not self._steps_after_first:
            return None
        return (self.clock() - self._t_first) / self._steps_after_first

    # --- output -------------------------------------------------------------------------------------
    def update(self, epoch: int, step: int, global_step: int, loss: float, lr: float, images: int) -> None:
        """Record finished step ``step`` (1-based, of epoch ``epoch``, 0-based) of ``images`` images (all
        processes); ``global_step`` counts the run's steps so far. Writes a line when one is due."""
        now = self._record(images)
        due = step % self.every == 0 or step == self.steps_per_epoch or now - self._t_logged >= self.interval_s
        if not (due or self.tty):
            return
        text = self.line(epoch, step, global_step, loss, lr)
        if self.tty:
            filled = int(BAR_WIDTH * step / max(self.steps_per_epoch, 1))
            self.stream.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {text}")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        if due:
            self._t_logged = now
            if self.log is not None:
                self.log(text)

    def line(self, epoch: int, step: int, global_step: int, loss: float, lr: float) -> str:
        """``label | epoch e/E | step s/S | loss | lr | img/s | epoch eta | run eta | suite eta``."""
        head = (
            f"{self.label} | epoch {epoch + 1}/{self.epochs} | step {step}/{self.steps_per_epoch} | "
            f"loss {loss:.4f} | lr {lr:.1e}"
        )
        per_step = self.seconds_per_step()
        if per_step is None:
            return f"{head} | warming up (no rate yet)"
        rate = self._images_after_first / max(self.clock() - self._t_first, 1e-9)
        return f"{head} | {rate:.2f} img/s | {self._etas(step, global_step, per_step)}"

    def _etas(self, step: int, global_step: int, per_step: float) -> str:
        run_left = max(self.run_steps - global_step, 0)  # max_steps may end the run inside this epoch
        epoch_s = min(max(self.steps_per_epoch - step, 0), run_left) * per_step
        run_s = run_left * per_step
        evals = ""
        if self.evals_left:
            if self.eval_s is None:
                evals = " + eval"
            else:
                run_s += self.evals_left * self.eval_s
        text = f"epoch eta {format_hms(epoch_s)} | run eta {format_hms(run_s)}{evals}"
        if self.suite is not None and self.suite.later:
            later = self.suite.later_seconds(
                self.train_frames, self._steps_after_first + 1, self.clock() - self._t_start, self.world_size
            )
            text += (
                f" | suite eta ~{format_hms(run_s + later)} (est., {len(self.suite.later)} more "
                f"run(s) at this suite's s/step)"
            )
        return text

    def close(self) -> None:
        """End the bar's line on a terminal."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def format_hms(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``; ``?`` for NaN or infinity."""
    if seconds != seconds or seconds == math.inf:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
