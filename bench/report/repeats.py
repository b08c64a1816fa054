"""A seed counts once: run directories that repeat another run are listed and left out of every table.

A long campaign leaves more directories than runs: a job re-launched under another directory, a run copied
aside before a re-run, a backup restored next to the original. Counted as seeds, each copy narrows the
interval and can turn "inconclusive: 2 seeds" into "reproduced". Two directories repeat each other when

- they are the same suite entry (suite and name) with the same training seed, or
- their evaluated results are identical: the same frames with the same per-frame statistics (per_image.csv,
  whatever the directory, suite entry or seed its metrics.json claims).

Of such directories one is used: the one at its canonical path (``runs/<run id>/``, where ``bench run``
writes and resumes it), else the most recently created (provenance ``created_utc``), else the first by
directory name. The others are listed (repeated_runs.csv, report.html) and every verdict resting on the
group they belong to says "counted once: ...".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from bench.metrics import STAT_COLUMNS
from bench.report.runs import EvalRun, RunGroup

__all__ = ["RepeatedRun", "count_once", "repeat_notes", "results_digest"]


@dataclass(frozen=True)
class RepeatedRun:
    """A run directory left out because it repeats ``kept``."""

    run: EvalRun  # the directory not used
    kept: EvalRun  # the directory used in its place
    why: str  # "same suite entry and seed" or "identical per_image.csv"

    @property
    def note(self) -> str:
        """What a verdict resting on the kept run's group says."""
        return f"counted once: {self.run.path.name} ({self.why} as {self.kept.path.name})"


def count_once(runs: Iterable[EvalRun]) -> tuple[list[EvalRun], list[RepeatedRun]]:
    """(the runs to use, in their given order; the repeats left out), as the module docstring says."""
    runs = list(runs)
    kept_by_entry: dict[tuple[str, str, int], EvalRun] = {}
    kept_by_results: dict[str, EvalRun] = {}
    kept: set[int] = set()
    repeats: list[RepeatedRun] = []
    for run in _by_preference(runs):
        entry, digest = (run.suite, run.name, run.seed), results_digest(run)
        if entry in kept_by_entry:
            repeats.append(RepeatedRun(run, kept_by_entry[entry], "same suite entry and seed"))
        elif digest in kept_by_results:
            repeats.append(RepeatedRun(run, kept_by_results[digest], "identical per_image.csv"))
        else:
            kept_by_entry[entry], kept_by_results[digest] = run, run
            kept.add(id(run))
    repeats.sort(key=lambda r: r.run.path.name)
    return [r for r in runs if id(r) in kept], repeats


def repeat_notes(repeats: Sequence[RepeatedRun], *groups: RunGroup) -> list[str]:
    """The notes of the repeats that concern ``groups``: those whose kept run is in one of them, or whose own
    suite entry is one of theirs (it would have been a seed of it)."""
    runs = {id(r) for g in groups for r in g.runs}
    entries = {(r.suite, r.name) for g in groups for r in g.runs}
    return [rep.note for rep in repeats if id(rep.kept) in runs or (rep.run.suite, rep.run.name) in entries]


def results_digest(run: EvalRun) -> str:
    """sha256 of the run's frames and per-frame statistics (per_image.csv, in frame order)."""
    df = run.per_image.sort_values("frame")
    values = df[["frame", *STAT_COLUMNS]].to_numpy(np.float64)
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()


def _by_preference(runs: Sequence[EvalRun]) -> list[EvalRun]:
    """Most preferred first: at its canonical path, then the newest (unknown times last), then by name."""
    ordered = sorted(runs, key=lambda r: r.path.name)
    ordered.sort(key=lambda r: str((r.provenance or {}).get("created_utc") or ""), reverse=True)
    ordered.sort(key=lambda r: r.path.name != r.run_id)
    return ordered
