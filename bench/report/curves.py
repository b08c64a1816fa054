"""Training curves from each run's ``history.csv`` (runs/README.md): train loss and test RMSE against
optimiser steps, grouped by model (one curve per seed), and a one-line convergence check per run.

The convergence check is a heuristic, labelled as such in the report: the last test RMSE against the median of
the last quarter of the run's evaluations. It says whether the curve was still moving when training stopped,
not whether the network reached its best. ``check_convergence`` turns it into the gate that accuracy verdicts
pass through (bench.report.claims): a run whose last RMSE is more than ``STILL_MOVING_REL`` off that median,
or whose pooled RMSE is no better than predicting one constant depth everywhere (``reference.constant_rmse``
of metrics.json), has not converged, and no claim is judged on it.

A trained run that cannot show it converged is not trusted either: without history.csv, with one that cannot
be read, with fewer than ``MIN_EVALS_FOR_CHECK`` test evaluations in it (``eval_every_epochs = 0``, or a
short run) or without ``reference.constant_rmse`` its convergence is *unknown*, and no claim is judged on it
("not judged: convergence unknown (<why>)"). Imported official weights have no training curve by design: they
skip the curve check (the constant-depth check still applies where recorded) and every verdict on them says
"imported weights: no training curve".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.config import MIN_EVALS_FOR_CHECK  # fewer evaluations: no convergence check (a quarter < 1 point)
from bench.report.identity import options_label
from bench.report.runs import EvalRun, RunFormatError, RunGroup, read_csv_checked

__all__ = [
    "HISTORY_COLUMNS",
    "MIN_EVALS_FOR_CHECK",
    "NO_CURVE_NOTE",
    "Convergence",
    "STILL_MOVING_REL",
    "RunCurve",
    "check_convergence",
    "convergence_note",
    "convergence_problems",
    "load_curves",
    "read_history",
    "relative_tail_change",
]

HISTORY_COLUMNS = ("step", "train_loss")  # required; test_rmse is empty on epochs without an evaluation
STILL_MOVING_REL = 0.05  # |last test RMSE / median of the last quarter's - 1| above this: not converged
NO_CURVE_NOTE = "imported weights: no training curve"  # how a verdict on imported weights says it had no curve


@dataclass(frozen=True)
class RunCurve:
    """One run's history: ``step`` (optimiser steps), ``train_loss`` (epoch mean) and ``test_rmse`` (m)."""

    model: str  # the suite entry's name, shared by its seeds (one colour per model in the figure)
    run_id: str
    seed: int
    history: pd.DataFrame  # columns step, train_loss, test_rmse (NaN where the epoch was not evaluated)

    @property
    def evals(self) -> pd.DataFrame:
        """The rows with a test RMSE, sorted by step."""
        return self.history.dropna(subset=["test_rmse"]).sort_values("step")


def read_history(path: str | Path) -> pd.DataFrame:
    """history.csv as columns step, train_loss, test_rmse (float; NaN when absent); RunFormatError if malformed."""
    path = Path(path)
    df = read_csv_checked(path, HISTORY_COLUMNS)
    out = pd.DataFrame({c: pd.to_numeric(df[c], errors="coerce") for c in HISTORY_COLUMNS})
    if out["step"].isna().any():
        raise RunFormatError(f"{path}: column 'step' must hold an integer on every row")
    out["test_rmse"] = pd.to_numeric(df["test_rmse"], errors="coerce") if "test_rmse" in df.columns else np.nan
    return out.sort_values("step", kind="stable").reset_index(drop=True)


def load_curves(groups: Sequence[RunGroup]) -> tuple[list[RunCurve], list[str]]:
    """The curves of every run that has a history.csv, and one problem line per run whose file is malformed."""
    curves, problems = [], []
    for group in groups:
        label = options_label(group)  # seeds of one suite entry built with other options: another colour
        for run in group.runs:
            path = run.path / "history.csv"
            if not path.is_file():
                continue
            try:
                model = f"{run.name} ({label})" if label else run.name
                curves.append(RunCurve(model, run.run_id, run.seed, read_history(path)))
            except RunFormatError as err:
                problems.append(str(err))
    return curves, problems


def relative_tail_change(rmse: Sequence[float]) -> tuple[float, int] | None:
    """(last / median - 1, k): the last test RMSE against the median of the last k = ceil(n/4) + 1 of the n
    evaluations (the last quarter and the one before it); None with fewer than MIN_EVALS_FOR_CHECK finite values.

    The median makes one noisy evaluation in the window harmless (eval-mode RMSE on a few test frames jumps by
    10-20 % from epoch to epoch before the learning rate drops), while a curve still falling by 2 % per
    evaluation over 6 evaluations ends 5 % below its window's median."""
    values = [float(v) for v in rmse if v is not None and math.isfinite(float(v))]
    if len(values) < MIN_EVALS_FOR_CHECK:
        return None
    k = math.ceil(len(values) / 4) + 1
    median = float(np.median(values[-k:]))
    return (values[-1] / median - 1.0 if median > 0 else math.nan), k


def _tail_text(rmse: list[float], rel: float, k: int) -> str:
    median = float(np.median(rmse[-k:]))
    return (
        f"test RMSE {rmse[-1]:.3f} m at the end, {rel:+.1%} from {median:.3f} m, the median of its last {k} of "
        f"{len(rmse)} evaluations"
    )


def convergence_note(curve: RunCurve) -> str:
    """One line: the last test RMSE against the median of its last quarter of evaluations (steps a-b), or why
    there is no check."""
    evals = curve.evals
    rmse = evals["test_rmse"].tolist()
    change = relative_tail_change(rmse)
    if change is None:
        return (
            f"{curve.run_id}: {len(evals)} test evaluation(s) in history.csv, fewer than "
            f"{MIN_EVALS_FOR_CHECK}: no convergence check, so its convergence is unknown and no verdict rests on it"
            " (imported weights excepted)"
        )
    rel, k = change
    steps = evals["step"].tolist()
    verdict = "" if abs(rel) <= STILL_MOVING_REL else f": still moving (> +-{STILL_MOVING_REL:.0%}), not converged"
    return f"{curve.run_id}: {_tail_text(rmse, rel, k)} (steps {int(steps[-k])}-{int(steps[-1])}){verdict}"


@dataclass(frozen=True)
class Convergence:
    """What the convergence gate knows about the runs of a comparison, one line per run and sign."""

    not_converged: tuple[str, ...] = ()  # runs known not to have converged, and why
    unknown: tuple[str, ...] = ()  # trained runs whose convergence cannot be told, and why
    imported: tuple[str, ...] = ()  # runs of imported weights (no curve by design): their run ids

    @property
    def note(self) -> str:
        """The note every verdict resting on imported weights carries; "" without any."""
        return f"{NO_CURVE_NOTE} ({', '.join(self.imported)})" if self.imported else ""


def check_convergence(*groups: RunGroup) -> Convergence:
    """The convergence gate over every run of ``groups`` (see the module docstring)."""
    not_converged, unknown, imported = [], [], []
    for group in groups:
        for run in group.runs:
            is_imported = _source(run) == "imported"
            evals, why = (None, "") if is_imported else _evaluations(run)
            if is_imported:
                imported.append(run.run_id)
            elif why:
                unknown.append(f"{run.run_id}: {why}")
            if evals is not None:
                change = relative_tail_change(evals)
                if change is not None and not abs(change[0]) <= STILL_MOVING_REL:
                    not_converged.append(
                        f"{run.run_id}: still moving, {_tail_text(evals, *change)} (limit +-{STILL_MOVING_REL:.0%})"
                    )
            constant, pooled = _reference(run)
            if constant is None or pooled is None:
                if not is_imported:
                    what = "reference.constant_rmse" if constant is None else "a pooled RMSE"
                    unknown.append(f"{run.run_id}: metrics.json has no {what} (the constant-depth check)")
            elif not pooled < constant:
                not_converged.append(
                    f"{run.run_id}: pooled RMSE {pooled:.3f} m is no better than one constant depth everywhere "
                    f"({constant:.3f} m): the network has not learned the scene"
                )
    return Convergence(tuple(not_converged), tuple(unknown), tuple(imported))


def convergence_problems(*groups: RunGroup) -> list[str]:
    """Why some run of these groups has not converged (one line per run), empty when none is known not to
    (``check_convergence(...).not_converged``; runs whose convergence is unknown are in its ``unknown``)."""
    return list(check_convergence(*groups).not_converged)


def _source(run: EvalRun) -> str:
    """train or imported, as bench.report.regime reads it."""
    cfg = run.config.get("config", {}) if isinstance(run.config, dict) else {}
    return str(run.metrics.get("source") or cfg.get("source") or "train")


def _evaluations(run: EvalRun) -> tuple[list[float] | None, str]:
    """(the run's finite test RMSEs in step order, why its curve cannot be checked; "" when it can)."""
    path = run.path / "history.csv"
    if not path.is_file():
        return None, "no history.csv"
    try:
        history = read_history(path)
    except RunFormatError as err:
        return None, f"history.csv unreadable ({str(err).removeprefix(f'{path}: ')})"
    rmse = [float(v) for v in history["test_rmse"] if math.isfinite(float(v))]
    if len(rmse) >= MIN_EVALS_FOR_CHECK:
        return rmse, ""
    cfg = run.config.get("config", {}) if isinstance(run.config, dict) else {}
    why = " (eval_every_epochs = 0: evaluated at the end only)" if cfg.get("eval_every_epochs") == 0 else ""
    return rmse, f"{len(rmse)} test evaluation(s) in history.csv, {MIN_EVALS_FOR_CHECK} needed{why}"


def _reference(run: EvalRun) -> tuple[float | None, float | None]:
    """(metrics.json reference.constant_rmse, pooled RMSE); None where not recorded."""
    reference = run.metrics.get("reference")
    reductions = run.metrics.get("reductions")
    constant = reference.get("constant_rmse") if isinstance(reference, dict) else None
    pooled = (reductions.get("pooled") or {}).get("rmse") if isinstance(reductions, dict) else None
    return (
        float(constant) if isinstance(constant, int | float) else None,
        float(pooled) if isinstance(pooled, int | float) else None,
    )
