"""The paper's claims, each with the measured evidence and a verdict under tolerances stated here.

Claims (DRNet paper): accuracy parity with RSIDE (abstract, Table 1), "up to 15 times speedup per image with
batch size 1" (abstract, summary), "10 times less memory per image" (summary), and the three Table 3
findings (second branch matters most; auxiliary losses help a bit; diagonal connections may be useless).

Verdicts compare like with like: accuracy only between runs whose regimes (bench.report.regime) match
except for the model, else "not comparable: <fields>"; intervals cover training seeds and test frames
(bench.report.stats), and accuracy verdicts need ``MIN_SEEDS`` seeds per compared model, else "inconclusive:
n seed(s), 3 needed"; parity is two-sided. Speed and memory are DRNet-vs-RSIDE ratios measured in one sweep
on one device, never our fps against the paper's P40; they need no training and are judged wherever
measured. A suite's purpose (``pipeline``, ``miniature``, ``paper``) says what its accuracy verdicts are
about: a pipeline check's are "not judged: pipeline check". A claim the data cannot decide is
"inconclusive"; one without the runs it needs is "not measured here". ``Claim.outcome`` is the verdict's
category (for colour and counts); ``Claim.verdict`` the text, possibly with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import pandas as pd

from bench.outcomes import format_duration
from bench.provenance import BUSY_LOAD_PER_CPU, busy_cpu_load
from bench.report.curves import MIN_EVALS_FOR_CHECK, NO_CURVE_NOTE, STILL_MOVING_REL
from bench.report.paper import PAPER_TABLE2_DEVICE, paper_table1
from bench.report.ratios import MIN_PAIRS
from bench.report.records import Claim, PairedRow, SpreadCells, Table2Row, Table3Row
from bench.report.regime import CODE_DRIFT_ACCEPTED
from bench.report.stats import MAX_SEEDS_ESTIMATE, seeds_to_decide
from bench.report.tables import (
    ABLATIONS,
    FULL_SWITCHES,
    MEASURED,
    MEMORY_DEFINITIONS,
    NO_PAPER,
    PAPER_ABLATION_BACKBONE,
    MemoryDefinition,
    Tables,
    ablated,
)

__all__ = [
    "ABLATION_CLAIMS",
    "BETTER_THAN_MARGIN",
    "DEPENDS_ON_DEFINITION",
    "DEPENDS_ON_SETUP",
    "EQUIVALENCE_MARGIN_REL",
    "GAP_CLAIM",
    "MIN_SEEDS",
    "NOT_COMPARABLE",
    "PURPOSES",
    "INCONCLUSIVE",
    "MEMORY_CLAIM_RATIO",
    "NOT_JUDGED",
    "NOT_MEASURED",
    "NOT_REPRODUCED",
    "PARITY_MARGIN_REL",
    "REAL_TIME_FPS",
    "RATIO_REL_TOL",
    "REPRODUCED",
    "SPEED_CLAIM_RATIO_B1",
    "TOLERANCES",
    "Claim",
    "RatioClaim",
    "accuracy_gate",
    "equivalence_outcome",
    "evaluate_claims",
    "gap_outcome",
    "improvement_outcome",
    "parity_outcome",
    "ratio_outcome",
    "ratio_verdict",
    "scope_label",
    "to_decide",
    "with_notes",
]

PARITY_MARGIN_REL = 0.05  # parity: the relative RMSE difference lies within +-5 % of RSIDE's (equivalence margin)
MIN_SEEDS = 3  # training seeds per compared model an accuracy verdict needs
SPEED_CLAIM_RATIO_B1 = 15.0  # "up to 15 times speedup per image with batch size 1"
MEMORY_CLAIM_RATIO = 10.0  # "10 times less memory per image"
RATIO_REL_TOL = 0.2  # a measured ratio at least (1 - 20 %) of the claimed ratio reproduces it
REAL_TIME_FPS = 25.0  # "gives Real-Time fps rate" (summary): images/s at batch 1, video frame rate
REAL_TIME_MODEL = ("drnet", "resnet50")  # the paper's fastest DRNet, 36 images/s at batch 1 on its P40
MODE_ORDER = ("inference", "autograd", "train")  # sweep modes (bench.speed.MODES), in the order shown
EQUIVALENCE_MARGIN_REL = 0.02  # "no effect": the 95 % CI of the relative RMSE change lies within +-2 %

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_MEASURED, NOT_JUDGED, NOT_COMPARABLE, BETTER_THAN_MARGIN = (
    "reproduced within tolerance",
    "not reproduced",
    "inconclusive",
    "not measured here",
    "not judged",
    "not comparable",
    "DRNet better by more than the margin",
)
DEPENDS_ON_DEFINITION = "depends on the definition"  # memory: reproduced by some definitions, not by others
DEPENDS_ON_SETUP = "depends on the device or mode"  # a summary headline: the judged sweeps and modes disagree
# A suite's purpose (bench.suite): what its accuracy verdicts are about.
PIPELINE, MINIATURE, PAPER = "pipeline", "miniature", "paper"
PURPOSES = (PIPELINE, MINIATURE, PAPER)
PIPELINE_VERDICT = f"{NOT_JUDGED}: pipeline check"
TEST_SELECTED_VERDICT = f"{NOT_JUDGED}: weights selected on the test set"
CHECK_RSIDE_HINT = "check the RSIDE run (under-trained or broken?)"
ONE_SESSION_VERDICT = f"{NOT_JUDGED}: one timing session (a ratio needs >= {MIN_PAIRS} alternating pairs)"

TOLERANCES = (
    "Like with like: a paired comparison (DRNet vs RSIDE; each ablation vs the full model) is judged only when "
    "the runs' regimes match except for the model: data source and fingerprint, training-set variant, "
    "optimiser steps taken, epochs, batch, input size, encoder init, lr schedule, amsgrad, trained or imported, "
    f"protocol, evaluated frames and the code that computed the numbers (its fingerprint). Otherwise the numbers "
    f"are shown and the verdict is '{NOT_COMPARABLE}: <fields>'. A user who knows a code change was harmless "
    f"can accept it (bench report --accept-code-drift): the pair is then judged, and every verdict resting on it "
    f"ends with '{CODE_DRIFT_ACCEPTED}: <digests> (<files>)' (also in the notes column).",
    f"Selected on the test set: a run that evaluated the epoch with the best test RMSE (metrics.json checkpoint "
    f"best; or checkpoint_select = best in its config while nothing shows the last epoch was evaluated) reports "
    f"an optimistic number chosen by the test set itself; every comparison resting on it is "
    f"'{TEST_SELECTED_VERDICT}' (before any other rule), Table 1 and 3 mark its row, and bench run --dry-run "
    f"warns.",
    f"Seeds: with at least 2 seeds per model the 95 % interval is a t-interval whose variance adds the "
    f"seed-to-seed variance of each model's mean to the frame-bootstrap variance (Welch-Satterthwaite df); with "
    f"one seed it is the frame bootstrap only. Accuracy verdicts (parity and the three Table 3 findings) need "
    f">= {MIN_SEEDS} seeds per compared model, else '{INCONCLUSIVE}: n seed(s), {MIN_SEEDS} needed'. A seed "
    "counts once: run directories of one suite entry with the same seed, or with identical evaluated results "
    "(per_image.csv), are used once (the one at its canonical path runs/<run id>/, else the newest), listed in "
    "repeated_runs.csv, and every verdict resting on their group says 'counted once: <directory> (<why>)'.",
    f"Convergence (a heuristic): an accuracy verdict is '{NOT_JUDGED}: not converged' when any run it rests on "
    f"either ends with a test RMSE more than {STILL_MOVING_REL:.0%} from the median of the last quarter of its "
    "evaluations (history.csv; the curves figure shows them; the median ignores one noisy evaluation), or "
    "scores a pooled RMSE no better than one constant depth everywhere (the test pixels' own mean: "
    "metrics.json reference.constant_rmse), i.e. has "
    "learned nothing of the scene. A comparison with such a run measures how far training got, not the "
    f"architecture. A trained run that cannot show it converged is '{NOT_JUDGED}: convergence unknown (<why>)': "
    f"no history.csv, an unreadable one, fewer than {MIN_EVALS_FOR_CHECK} test evaluations in it "
    "(eval_every_epochs = 0, or a short run), or no reference.constant_rmse in metrics.json. Imported official "
    f"weights have no training curve by design: they stay judged, and their verdicts say '{NO_CURVE_NOTE}'.",
    f"Accuracy parity (per backbone, two-sided): reproduced if the 95 % CI of (RMSE_DRNet - RMSE_RSIDE) / "
    f"RMSE_RSIDE lies inside [-{PARITY_MARGIN_REL:.0%}, +{PARITY_MARGIN_REL:.0%}]; not reproduced if it lies "
    f"entirely above +{PARITY_MARGIN_REL:.0%}; '{BETTER_THAN_MARGIN}' if it lies entirely below "
    f"-{PARITY_MARGIN_REL:.0%} (the paper claims equality, so {CHECK_RSIDE_HINT}); inconclusive otherwise. "
    "log10 and delta1 differences are shown with their paired CIs.",
    f"The paper's own gap (a row apart from parity, which is the paper's claim in its words): per backbone with "
    f"the paper's DRNet and RSIDE Table 1 values, the paper's (RMSE_DRNet - RMSE_RSIDE) / RMSE_RSIDE beside our "
    f"95 % CI of the same (ResNet-50: +5.8 %, outside the parity margin, so a perfect reproduction of the paper "
    f"fails parity). 'The paper's gap reproduced' if our CI contains it and is no wider than "
    f"+-{PARITY_MARGIN_REL:.0%} (a wider CI would contain almost any gap: {INCONCLUSIVE}); not reproduced if our "
    f"CI excludes it. The same gates as parity apply.",
    f"Purpose: a '{PIPELINE}' suite (smoke, regression) shows accuracy verdicts as '{PIPELINE_VERDICT}'; a "
    f"'{MINIATURE}' suite judges the claims in miniature (scope column); only runs on NYU in the paper's regime "
    f"(rside-csv ~50k frames, 20 epochs, batch 8, ImageNet init, RSIDE's protocol on the 654 test frames, or "
    f"the imported official weights) judge the paper itself. Speed and memory verdicts are judged wherever "
    f"measured.",
    "Sweep modes: inference (eval mode under torch.inference_mode), autograd (eval mode with gradients on: "
    "the autograd graph and its saved activations are kept, as PyTorch 0.3-era code did without "
    "volatile=True) and train (forward + loss + backward + Adam step on random targets). Which one the paper "
    "measured is not said; every ratio is taken within one mode, every verdict names its mode, and the "
    "table 'which mode comes closest to the paper' (table2_modes.csv) compares each mode's ratios with the "
    "paper's.",
    f"Speed at batch 1: fps_b1(DRNet X) / fps_b1(RSIDE X) in one sweep on one device, from alternating timing "
    f"sessions: each model is measured in several sessions (fresh processes on CPU), the two models' sessions "
    f"alternate with the order reversed every other pair (R D, D R, R D: a steady drift favours neither), each "
    f"pair gives one ratio (speed_pairs.csv), and the measured ratio is their geometric mean with a 95 % "
    f"t-interval on the log ratios (df = pairs - 1). The headline 'up to {SPEED_CLAIM_RATIO_B1:g}x' (per sweep "
    f"and mode) is reproduced if that interval for the largest ratio over the paper's backbones lies at or above "
    f"{SPEED_CLAIM_RATIO_B1:g} x (1 - {RATIO_REL_TOL:.0%}), not reproduced if it lies below, inconclusive if it "
    f"straddles it; per backbone, likewise against the paper's own ratio. Fewer than {MIN_PAIRS} pairs (one "
    f"session per model, or a sweep written before sessions): the numbers are shown and the verdict is "
    f"'{ONE_SESSION_VERDICT}'. In simulations with the true ratio at the threshold (3 pairs, 3 timed repeats "
    f"per session with 10 % noise, session-to-session noise and drift) the interval lies wholly on one side in "
    f"about 5 % of sweeps (2.5 % each way). Which sweeps: those of the suite the report is about (the suite in "
    f"the sweep's config.json; all when it reports none), one verdict per device, dtype, input, mode and "
    f"backbone, from the latest sweep that measured all of that setup's models over all their sessions; "
    f"sweeps of other suites, of models named on the command line, older or incomplete ones are listed as not "
    f"used, with the reason.",
    f"A busy CPU: other work on the cores slows the two models unequally (a larger network loses more to shared "
    f"caches and memory bandwidth), so on a CPU sweep whose 1-minute load average rose above "
    f"{BUSY_LOAD_PER_CPU:g} per core (its start, its end or after any point: Table 2's load column) the speed "
    f"verdicts are '{NOT_JUDGED}: busy CPU (...)' and a real-time 'not reproduced' likewise; memory verdicts "
    f"stand.",
    "Memory per image has three definitions here, because the paper's 'RAM / img' cannot be one quantity: "
    "DRNet-R50's 2 GB/img with its best fps at batch 36 on a 24 GB P40 would need 72 GB (so it is not a "
    "per-image share of a batch's memory), while RSIDE's 21 GB/img with a largest batch of 1 reads like a "
    "total at batch 1. (1) peak at batch 1 above the pre-model baseline (weights included); (2) the marginal "
    "slope of peak memory against batch size, with its R^2 (weights excluded); (3) the peak at the largest "
    "measured batch divided by that batch. Peaks: NVML device memory on CUDA, process RSS on CPU (each CPU "
    "model in a fresh process, so that the models' order cannot change a number). Net RAM likewise two "
    "ways: weights + buffers, and the increase from the pre-model baseline to the model loaded.",
    f"Memory verdicts: RSIDE X / DRNet X in one sweep and mode, per definition, each session measuring every "
    f"batch size: one ratio per pair of sessions and the same interval and rule as the speed verdict, headline "
    f"'{MEMORY_CLAIM_RATIO:g}x less' against {MEMORY_CLAIM_RATIO:g} x (1 - {RATIO_REL_TOL:.0%}); per backbone "
    f"against the paper's ratio. The row over all three says which definitions reproduce it "
    f"('{DEPENDS_ON_DEFINITION}' when decided ones disagree).",
    f"Real-time fps rate (summary: 'gives Real-Time fps rate'): DRNet {REAL_TIME_MODEL[1]} at batch 1, "
    f"inference mode, reaches {REAL_TIME_FPS:g} images/s on the measured device; the verdict names the device "
    "(a CPU is not the paper's GPU: a CPU verdict says what this machine does, not what a P40 did).",
    "Table 3, relative RMSE change when an element is removed, (RMSE_variant - RMSE_full) / RMSE_full, "
    "paired "
    "bootstrap 95 % CI. Second branch matters most, decided on intervals, never on point estimates: reproduced "
    "if its CI lies above zero and, for each other ablation, the paired CI of RMSE(no second branch) - "
    "RMSE(no <other>) on their common frames (seeds pooled as for every interval) lies above zero; not "
    "reproduced if its CI or either paired CI lies below zero; inconclusive otherwise. Auxiliary losses help: "
    "reproduced if the CI "
    f"lies above zero; not reproduced if it lies below zero or within +-{EQUIVALENCE_MARGIN_REL:.0%}. "
    f"Diagonal connections useless: reproduced if the CI lies within +-{EQUIVALENCE_MARGIN_REL:.0%}; "
    f"not reproduced if it lies entirely outside.",
    f"Backbones the paper did not run (e.g. resnet18 in the smoke suite) are shown as '{NOT_JUDGED}' for the "
    "speed and memory claims, whose numbers are backbone-specific.",
    f"Summary: one headline row per claim of the paper (parity, the paper's own gap, speed, memory, real time, "
    f"the three Table 3 findings); the rows it rests on are folded under it (summary.csv: headline and level "
    f"columns). A headline's verdict comes from the rows one level under it (level 1), by one of two rules. "
    f"'every' (parity and the gap, which the paper states of every backbone it ran): '{NOT_REPRODUCED}' if any "
    f"judged backbone is, else '{BETTER_THAN_MARGIN}' if any is, else '{INCONCLUSIVE}' if any is, else "
    f"'{REPRODUCED}' (every judged backbone reproduces it). 'agree' (speed, memory and real time, measured per "
    f"sweep and mode): the outcome every judged sweep and mode agrees on, else '{DEPENDS_ON_SETUP}'. Rows not "
    f"judged (not comparable, not judged) never decide a headline but are named in it; with none judged, the "
    f"headline is the outcome they share (one row: its verdict word for word), else '{NOT_JUDGED}'. A Table 3 "
    f"finding is one verdict: its own headline.",
    f"What would decide it (an estimate, labelled so): an inconclusive accuracy verdict with >= 2 seeds of each "
    f"model says how many seeds per model n would decide it if the estimate d and the observed variances stayed "
    f"as they are: the smallest n (up to {MAX_SEEDS_ESTIMATE}) for which d +- t(df_n) * se_n falls on one side "
    f"of every boundary of its rule, with se_n^2 = (s_a^2 + s_b^2) / n + c + v / n (s^2: each model's seed-to-"
    f"seed variance of one seed's value; the frame term split into c, the test frames' own part that more seeds "
    f"leave as it is, and v, each seed's own noise on each frame, from the bootstrap variances of single seeds and "
    f"of the seed means) and df_n by Welch-Satterthwaite as in the interval; and what the missing runs cost at "
    f"each model's mean recorded wall time per run. When c alone reaches a boundary, no number of seeds decides "
    f"it (only more test frames would); when n exceeds {MAX_SEEDS_ESTIMATE}, it says so.",
)


def evaluate_claims(tables: Tables, purpose: str | None = None) -> list[Claim]:
    """All claims, in the order of the summary; ``purpose`` is the suite's (None: judged by regime only).

    Each claim is one function of the typed tables returning its rows (headline first); a new claim is one more
    function here. They share the judges below: ``accuracy_gate`` (may an accuracy comparison be judged on its
    numbers at all?), ``parity_outcome``, ``ratio_outcome`` (a measured ratio against a claimed one),
    ``improvement_outcome`` and ``equivalence_outcome`` (an interval against zero and a margin)."""
    if purpose is not None and purpose not in PURPOSES:
        raise ValueError(f"unknown suite purpose {purpose!r}; expected one of {', '.join(PURPOSES)}")
    return [
        *_under(_parity(tables, purpose)),
        *_under(_paper_gap(tables, purpose), GAP_CLAIM),
        *_under(_speed_claims(tables)),
        *_under(_memory_claims(tables), level=_memory_level),
        *_under(_real_time(tables)),
        *(c for row in _ablations(tables, purpose) for c in _under([row], level=lambda _: 0)),
    ]


def _under(rows: list[Claim], headline: str = "", level: Callable[[Claim], int] | None = None) -> list[Claim]:
    """``rows`` as the rows under one headline of the summary (``headline``, else the first row's claim), each at
    its ``level`` (default: as made; bench.report.summary folds them)."""
    title = headline or (rows[0].claim if rows else "")
    return [replace(c, headline=title, level=c.level if level is None else level(c)) for c in rows]


def _memory_level(c: Claim) -> int:
    """The memory claim's rows: per sweep mode over the three definitions (1), each definition's headline (2)
    and its per-backbone rows (3)."""
    return 1 if ": " not in c.claim else c.level + 1


# ------------------------------------------------------------------------------------------------ judges


def accuracy_gate(
    not_comparable: str,
    purpose: str | None,
    n_seeds: int,
    not_converged: str = "",
    *,
    test_selected: str = "",
    convergence_unknown: str = "",
) -> tuple[str, str] | None:
    """(verdict, outcome) when an accuracy comparison may not be judged on its numbers, else None, in this order:
    weights selected on the test set (the number itself is optimistic), runs trained differently, a pipeline
    check, a run that has not converged or whose convergence is unknown (bench.report.curves), too few seeds."""
    if test_selected:
        return f"{TEST_SELECTED_VERDICT} ({test_selected})", NOT_JUDGED
    if not_comparable:
        return f"{NOT_COMPARABLE}: {not_comparable}", NOT_COMPARABLE
    if purpose == PIPELINE:
        return PIPELINE_VERDICT, NOT_JUDGED
    if not_converged:
        return f"{NOT_JUDGED}: not converged: {not_converged}", NOT_JUDGED
    if convergence_unknown:
        return f"{NOT_JUDGED}: convergence unknown ({convergence_unknown})", NOT_JUDGED
    if n_seeds < MIN_SEEDS:
        return f"{INCONCLUSIVE}: {n_seeds} seed(s), {MIN_SEEDS} needed", INCONCLUSIVE
    return None


def with_notes(verdict: str, notes: str) -> str:
    """A verdict's text with the notes it rests on ("...; code drift accepted: ..."), if any."""
    return f"{verdict}; {notes}" if notes else verdict


def parity_outcome(lo: float, hi: float, margin: float = PARITY_MARGIN_REL) -> str:
    """Two-sided parity from the CI [lo, hi] of the relative RMSE difference (DRNet - RSIDE) / RSIDE."""
    if -margin <= lo and hi <= margin:
        return REPRODUCED
    if lo > margin:
        return NOT_REPRODUCED
    if hi < -margin:
        return BETTER_THAN_MARGIN
    return INCONCLUSIVE


def improvement_outcome(lo: float, hi: float, margin: float = EQUIVALENCE_MARGIN_REL) -> str:
    """ "X helps" from the CI [lo, hi] of the relative RMSE change when X is removed: reproduced if it lies above
    zero; not reproduced if it lies below zero or within +-``margin`` (no effect); inconclusive otherwise."""
    if lo > 0:
        return REPRODUCED
    if hi < 0 or (lo >= -margin and hi <= margin):
        return NOT_REPRODUCED
    return INCONCLUSIVE


def equivalence_outcome(lo: float, hi: float, margin: float = EQUIVALENCE_MARGIN_REL) -> str:
    """ "X has no effect" from the CI [lo, hi] of a relative change: reproduced if it lies within +-``margin``,
    not reproduced if it lies entirely outside, inconclusive otherwise."""
    if lo >= -margin and hi <= margin:
        return REPRODUCED
    if lo > margin or hi < -margin:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def ratio_outcome(low: float, high: float, target: float) -> str:
    """A measured ratio against a claimed one, from its 95 % interval [low, high] over pairs of timing sessions
    (``bench.report.ratios``): reproduced when the whole interval reaches (1 - RATIO_REL_TOL) of ``target``, not
    reproduced when it lies wholly below, inconclusive when it straddles; not judged without an interval (one
    session per model: numbers, no verdict)."""
    if math.isnan(low) or math.isnan(high):
        return NOT_JUDGED
    need = target * (1 - RATIO_REL_TOL)
    if low >= need:
        return REPRODUCED
    return NOT_REPRODUCED if high < need else INCONCLUSIVE


def ratio_verdict(outcome: str, low: float, high: float, target: float) -> str:
    """The verdict text of ``ratio_outcome``: its reason when inconclusive or not judged."""
    if outcome == NOT_JUDGED:
        return ONE_SESSION_VERDICT
    if outcome == INCONCLUSIVE:
        need = target * (1 - RATIO_REL_TOL)
        return f"{INCONCLUSIVE}: the 95 % CI {low:.1f}-{high:.1f}x straddles {need:.3g}x"
    return outcome


def scope_label(purpose: str | None, paper_regime: str) -> str:
    """What an accuracy verdict is about: the pipeline, a miniature, the paper, or another regime."""
    if purpose == PIPELINE:
        return "pipeline check"
    if purpose == MINIATURE:
        return "in miniature"
    if paper_regime == "matches":
        return "the paper's regime"
    return "not the paper's regime (" + paper_regime.removeprefix("differs: ") + ")"


# ---------------------------------------------------------------------------------------- accuracy parity

PARITY_CLAIM = "Accuracy parity: DRNet matches RSIDE (Table 1)"


def _parity(tables: Tables, purpose: str | None) -> list[Claim]:
    """One row per backbone with both models (paired.csv), judged two-sided on the relative RMSE difference."""
    paper = paper_table1().set_index(["arch", "backbone", "source"])["rmse"]
    if not tables.paired:
        measured = "no backbone with both an RSIDE and a DRNet run in this suite"
        return [Claim(PARITY_CLAIM, "any backbone", _paper_parity(paper, None), measured, NOT_MEASURED)]
    return [_parity_row(r, purpose, _paper_parity(paper, r.backbone)) for r in tables.paired]


def _parity_row(r: PairedRow, purpose: str | None, paper_text: str) -> Claim:
    if r.frames_common == 0:
        return Claim(PARITY_CLAIM, r.backbone, paper_text, "the two runs share no evaluated frame", NOT_MEASURED)
    gate = _pair_gate(r, purpose)
    if gate is not None:
        verdict, outcome = gate
    else:
        outcome = parity_outcome(r.rmse_rel.ci_low, r.rmse_rel.ci_high)
        verdict = f"{outcome}: {CHECK_RSIDE_HINT}" if outcome == BETTER_THAN_MARGIN else outcome
    scope = f"{r.backbone} · {r.data} · {scope_label(purpose, r.paper_regime)}"
    decide = ""
    if outcome == INCONCLUSIVE:
        decide = to_decide(
            r.rmse_rel.diff, r.rmse_rel_spread, (r.seeds_drnet, r.seeds_rside), r.frames_common, parity_outcome
        )
    return Claim(
        PARITY_CLAIM,
        scope,
        paper_text,
        _parity_measured(r),
        with_notes(with_notes(verdict, decide), r.notes),
        outcome,
        notes=r.notes,
        to_decide=decide,
    )


def to_decide(
    estimate: float,
    spread: SpreadCells,
    seeds: tuple[int, int],
    n_frames: int,
    rule: Callable[[float, float], str],
    models: tuple[str, str] = ("DRNet", "RSIDE"),
) -> str:
    """What would decide an inconclusive verdict (an estimate, labelled so): the seeds per model at which the
    interval of ``estimate`` would fall on one side of every boundary of ``rule`` (stats.seeds_to_decide), and
    the cost of the missing runs at each model's recorded wall time per run; "" when not estimable."""
    if _isnan(n_frames):
        return ""
    found = seeds_to_decide(
        estimate,
        spread.seed_var_a,
        spread.seed_var_b,
        spread.frame_var,
        spread.frame_seed_var,
        int(n_frames),
        lambda lo, hi: rule(lo, hi) != INCONCLUSIVE,
    )
    if found is None:
        return ""
    if found.frames_limit:
        return (
            "estimate: no number of seeds would decide it: the test frames' own noise alone gives an interval "
            "that reaches a boundary of the rule (only more test frames would narrow it)"
        )
    if found.seeds is None:
        return f"estimate: more than {MAX_SEEDS_ESTIMATE} seeds per model (the estimate lies at a boundary)"
    n = max(found.seeds, MIN_SEEDS, *seeds)
    more = [max(n - int(k), 0) for k in seeds]
    walls = (spread.wall_s_a, spread.wall_s_b)
    runs = " and ".join(f"{m} more {name} {_runs(m)}" for m, name in zip(more, models, strict=True) if m)
    text = f"estimate: {n} seeds per model would decide it"
    if not runs:
        return text
    if any(m and _isnan(w) for m, w in zip(more, walls, strict=True)):
        return f"{text} ({runs}; their cost: no wall time recorded, see bench run --dry-run)"
    cost = sum(m * float(w) for m, w in zip(more, walls, strict=True) if m)
    return f"{text} ({runs}, ~{format_duration(cost)} at their recorded wall times)"


def _pair_gate(r: PairedRow, purpose: str | None) -> tuple[str, str] | None:
    """``accuracy_gate`` of a DRNet-vs-RSIDE pair."""
    return accuracy_gate(
        r.not_comparable,
        purpose,
        min(r.seeds_drnet, r.seeds_rside),
        r.not_converged,
        test_selected=r.test_selected,
        convergence_unknown=r.convergence_unknown,
    )


def _parity_measured(r: PairedRow) -> str:
    frames = f"{r.frames_common} common frames" + (
        "" if r.same_frames else f" (DRNet {r.frames_drnet}, RSIDE {r.frames_rside})"
    )
    rel = r.rmse_rel
    return (
        f"RMSE {r.rmse_drnet:.3f} vs {r.rmse_rside:.3f} m: {rel.diff:+.1%} "
        f"[{rel.ci_low:+.1%}, {rel.ci_high:+.1%}], {_p(r.rmse.p)}; log10 {r.log10.diff:+.4f} "
        f"[{r.log10.ci_low:+.4f}, {r.log10.ci_high:+.4f}]; delta1 {r.delta1.diff:+.4f} "
        f"[{r.delta1.ci_low:+.4f}, {r.delta1.ci_high:+.4f}]; {frames}; seeds DRNet {r.seeds_drnet}, "
        f"RSIDE {r.seeds_rside} (CI covers {r.ci_covers}); regimes: DRNet {r.drnet_regime}, "
        f"RSIDE {r.rside_regime}"
    )


def _paper_parity(paper: pd.Series, backbone: str | None) -> str:
    def get(arch, src):
        return paper.get((arch, backbone, src), math.nan) if backbone else math.nan

    d, r, rr = get("drnet", "drnet-paper"), get("rside", "rside-paper"), get("rside", "drnet-reproduced")
    if math.isnan(d) or math.isnan(r):
        return "paper: 'results equal to the state of the art' (no row for this backbone)"
    text = f"RMSE {d:.3f} vs {r:.3f} m ({(d - r) / r:+.1%})"
    if not math.isnan(rr):
        text += f"; vs RSIDE as reproduced by DRNet {rr:.3f} m ({(d - rr) / rr:+.1%})"
    return text


# ------------------------------------------------------------------------------------- the paper's own gap

GAP_CLAIM = "The paper's own DRNet - RSIDE gap (Table 1's numbers)"
PAPER_GAP_BACKBONES = ("resnet50", "densenet161", "senet154")  # Table 1 has DRNet's and RSIDE's own rows for these


def gap_outcome(lo: float, hi: float, gap: float, margin: float = PARITY_MARGIN_REL) -> str:
    """The paper's relative gap against our CI [lo, hi] of (RMSE_DRNet - RMSE_RSIDE) / RMSE_RSIDE: reproduced if
    the CI contains it and is no wider than +-``margin`` (a wider one would contain almost any gap); not
    reproduced if the CI excludes it; inconclusive otherwise."""
    if gap < lo or gap > hi:
        return NOT_REPRODUCED
    return REPRODUCED if (hi - lo) / 2 <= margin else INCONCLUSIVE


def _paper_gap(tables: Tables, purpose: str | None) -> list[Claim]:
    """Per backbone with the paper's DRNet and RSIDE values and both models here: the paper's own gap beside
    ours, apart from the parity claim (the paper's ResNet-50 row is +5.8 %, outside the parity margin)."""
    paper = paper_table1().set_index(["arch", "backbone", "source"])["rmse"]
    rows = [_gap_row(r, purpose, paper) for r in tables.paired if not _isnan(r.rmse_rel_paper) and r.frames_common > 0]
    if rows:
        return rows
    gaps = ", ".join(f"{b} {_paper_gap_of(paper, b):+.1%}" for b in PAPER_GAP_BACKBONES)
    measured = "no backbone with the paper's DRNet and RSIDE values has both models in this suite"
    return [Claim(GAP_CLAIM, "the paper's backbones", f"Table 1: {gaps}", measured, NOT_MEASURED)]


def _paper_gap_of(paper: pd.Series, backbone: str) -> float:
    """(DRNet - RSIDE) / RSIDE of the paper's Table 1 RMSEs on ``backbone`` (DRNet's row, RSIDE's paper row)."""
    drnet, rside = paper[("drnet", backbone, "drnet-paper")], paper[("rside", backbone, "rside-paper")]
    return float((drnet - rside) / rside)


def _gap_row(r: PairedRow, purpose: str | None, paper: pd.Series) -> Claim:
    gap, rel = float(r.rmse_rel_paper), r.rmse_rel
    drnet, rside = paper[("drnet", r.backbone, "drnet-paper")], paper[("rside", r.backbone, "rside-paper")]
    measured = (
        f"ours {rel.diff:+.1%} [{rel.ci_low:+.1%}, {rel.ci_high:+.1%}] (RMSE {r.rmse_drnet:.3f} vs "
        f"{r.rmse_rside:.3f} m; seeds DRNet {r.seeds_drnet}, RSIDE {r.seeds_rside}); the paper's {gap:+.1%}"
    )
    gate = _pair_gate(r, purpose)
    decide = ""
    if gate is not None:
        verdict, outcome = gate
    else:
        outcome = gap_outcome(rel.ci_low, rel.ci_high, gap)
        verdict = {
            REPRODUCED: f"the paper's gap reproduced: our interval contains {gap:+.1%}",
            NOT_REPRODUCED: f"the paper's gap not reproduced: our interval excludes {gap:+.1%}",
            INCONCLUSIVE: f"{INCONCLUSIVE}: our interval contains {gap:+.1%} but is wider than "
            f"+-{PARITY_MARGIN_REL:.0%}",
        }[outcome]
    if outcome == INCONCLUSIVE:
        decide = to_decide(
            rel.diff,
            r.rmse_rel_spread,
            (r.seeds_drnet, r.seeds_rside),
            r.frames_common,
            lambda lo, hi: gap_outcome(lo, hi, gap),
        )
    return Claim(
        GAP_CLAIM,
        f"{r.backbone} · {r.data} · {scope_label(purpose, r.paper_regime)}",
        f"RMSE {drnet:.3f} vs {rside:.3f} m: {gap:+.1%} (DRNet's Table 1 row against RSIDE's paper)",
        measured,
        with_notes(with_notes(verdict, decide), r.notes),
        outcome,
        notes=r.notes,
        to_decide=decide,
    )


# ------------------------------------------------------------------------------ Table 2: ratios per sweep


@dataclass(frozen=True)
class RatioClaim:
    """A Table 2 claim judged on a DRNet-vs-RSIDE ratio (a Table2Row of a DRNet model) per sweep and mode: the
    headline is the largest ratio over the paper's backbones against ``target``; each backbone against the
    paper's own ratio; each judged on the ratio's 95 % interval over the sweep's pairs of timing sessions."""

    claim: str
    target: float  # the claimed ratio ("up to 15x")
    paper_text: str  # the paper's evidence
    what: str  # what the ratio is of, in the measured text
    measured: Callable[[Table2Row], float]  # the measured ratio of a row (geometric mean over the pairs)
    paper: Callable[[Table2Row], float]  # the paper's ratio of a row (NaN: a backbone the paper did not run)
    interval: Callable[[Table2Row], tuple[float, float]]  # its 95 % interval over the pairs (NaN, NaN: none)
    timed: bool = False  # a ratio of timings: not judged on a busy CPU (memory ratios are not disturbed by load)

    def ci(self, row: Table2Row) -> tuple[float, float]:
        """(low, high) of the measured ratio's interval; NaN, NaN without one."""
        low, high = self.interval(row)
        return float(low), float(high)


def _speed_claims(tables: Tables) -> list[Claim]:
    """DRNet / RSIDE fps at batch 1 per sweep and mode, judged on its interval over the pairs of sessions."""
    spec = RatioClaim(
        claim=f"Up to {SPEED_CLAIM_RATIO_B1:g}x faster per image at batch 1 (Table 2)",
        target=SPEED_CLAIM_RATIO_B1,
        paper_text=_paper_ratio_text(tables, lambda r: r.speedup_b1_paper),
        what="fps_b1",
        timed=True,
        measured=lambda r: r.speedup_b1_measured,
        paper=lambda r: r.speedup_b1_paper,
        interval=lambda r: (r.speedup_b1_ci_low, r.speedup_b1_ci_high),
    )
    rows = _measured_drnet(tables, spec.measured)
    if not rows:
        return [_no_pair_measured(spec.claim, spec.paper_text)]
    return [c for mode, sweep_rows in _by_mode_and_sweep(rows) for c in _ratio_rows(spec, mode, sweep_rows)]


def _memory_claims(tables: Tables) -> list[Claim]:
    """Per sweep mode: one row over the three memory definitions ("reproduced by peak at batch 1, not by
    marginal slope"), then each definition's headline and per-backbone rows."""
    claim = f"{MEMORY_CLAIM_RATIO:g}x less memory per image (Table 2)"
    paper_text = _paper_ratio_text(tables, lambda r: r.mem_ratio_paper, " ('RAM / img', never defined)")
    rows = [r for r in _measured_drnet(tables) if any(not _isnan(d.ratio_of(r)) for d in MEMORY_DEFINITIONS)]
    if not rows:
        return [_no_pair_measured(claim, paper_text)]
    out = []
    for mode, sweep_rows in _by_mode_and_sweep(rows):
        per_definition = [
            (d.label, _memory_definition(claim, paper_text, mode, sweep_rows, d)) for d in MEMORY_DEFINITIONS
        ]
        out.append(_memory_overall(claim, paper_text, mode, per_definition))
        out += [c for _, claims in per_definition for c in claims]
    return out


def _memory_definition(
    claim: str, paper_text: str, mode: str, rows: list[Table2Row], definition: MemoryDefinition
) -> list[Claim]:
    """The claim under one memory definition: its headline and per-backbone rows (RSIDE / DRNet)."""
    spec = RatioClaim(
        claim=f"{claim}: {definition.label}",
        target=MEMORY_CLAIM_RATIO,
        paper_text=paper_text,
        what=definition.label,
        measured=definition.ratio_of,
        paper=lambda r: r.mem_ratio_paper,
        interval=definition.interval_of,
    )
    with_ratio = [r for r in rows if not _isnan(definition.ratio_of(r))]
    if not with_ratio:
        measured = f"{definition.label} not measured in these sweeps"
        return [Claim(spec.claim, f"paper backbones · {mode}", paper_text, measured, NOT_MEASURED)]
    return _ratio_rows(spec, mode, with_ratio)


def _memory_overall(claim: str, paper_text: str, mode: str, per_definition: list[tuple[str, list[Claim]]]) -> Claim:
    """The memory claim over all three definitions of one mode, from each definition's headline."""
    by_outcome: dict[str, list[str]] = {}
    measured = []
    for label, claims in per_definition:
        headline = claims[0]
        by_outcome.setdefault(headline.outcome, []).append(label)
        if headline.outcome in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_JUDGED):
            measured.append(f"{label}: {headline.measured.split(' (')[0].removeprefix('largest ratio ')}")
    yes, no = by_outcome.get(REPRODUCED, []), by_outcome.get(NOT_REPRODUCED, [])
    undecided, unjudged = by_outcome.get(INCONCLUSIVE, []), by_outcome.get(NOT_JUDGED, [])
    scope = f"all three definitions · {mode}"
    if yes and no:
        verdict = f"reproduced by {', '.join(yes)}; not by {', '.join(no)}"
        outcome = DEPENDS_ON_DEFINITION
    elif yes:
        outcome, verdict = REPRODUCED, f"reproduced by every decided definition ({', '.join(yes)})"
    elif no:
        outcome, verdict = NOT_REPRODUCED, f"not reproduced by any decided definition ({', '.join(no)})"
    elif undecided:
        outcome, verdict = INCONCLUSIVE, f"{INCONCLUSIVE} by every judged definition ({', '.join(undecided)})"
    elif unjudged:
        outcome, verdict = NOT_JUDGED, ONE_SESSION_VERDICT
    else:
        return Claim(claim, scope, paper_text, "no definition measured", NOT_MEASURED)
    rest = [f"{', '.join(labels)}: {o}" for o, labels in by_outcome.items() if o not in (REPRODUCED, NOT_REPRODUCED)]
    if rest and outcome in (REPRODUCED, NOT_REPRODUCED, DEPENDS_ON_DEFINITION):
        verdict += f" ({'; '.join(rest)})"
    return Claim(
        claim,
        scope,
        paper_text,
        "largest RSIDE / DRNet ratio per definition: " + "; ".join(measured),
        verdict,
        outcome,
    )


def _ratio_rows(spec: RatioClaim, mode: str, rows: list[Table2Row]) -> list[Claim]:
    """Headline and one row per measurement, all of one sweep mode; every scope names the backbone, the device
    (and that it is a CPU) and the mode."""
    return [_ratio_headline(spec, mode, rows), *(replace(_ratio_row(spec, mode, r), level=2) for r in rows)]


def _ratio_headline(spec: RatioClaim, mode: str, rows: list[Table2Row]) -> Claim:
    """The largest ratio over the paper's backbones (the first of equal ones) against the claimed ratio."""
    in_paper = [r for r in rows if not math.isnan(spec.paper(r))]
    if not in_paper:
        measured = "only backbones the paper did not run were measured (see the rows below)"
        return Claim(spec.claim, f"paper backbones · {mode}", spec.paper_text, measured, NOT_MEASURED)
    best = max(in_paper, key=spec.measured)
    value = spec.measured(best)
    low, high = spec.ci(best)
    measured = (
        f"largest ratio {value:.1f}x ({spec.what}{_interval_text(low, high, best.pairs)}; {best.backbone}, sweep "
        f"{best.sweep}, {best.device_kind} {best.device_name}, {best.dtype}, input "
        f"{best.input}, {mode} mode)"
    )
    scope = f"{best.backbone} · {_device(best)} · {mode}"
    outcome = ratio_outcome(low, high, spec.target)
    verdict = ratio_verdict(outcome, low, high, spec.target)
    if spec.timed:
        outcome, verdict = _on_a_quiet_cpu(best, outcome, verdict)
    return Claim(spec.claim, scope, spec.paper_text, measured, verdict, outcome)


def _ratio_row(spec: RatioClaim, mode: str, r: Table2Row) -> Claim:
    """One backbone's ratio against the paper's ratio for it ('not judged' on a backbone the paper lacks)."""
    value, paper_ratio = spec.measured(r), spec.paper(r)
    low, high = spec.ci(r)
    text = (
        f"{value:.2f}x ({spec.what}{_interval_text(low, high, r.pairs)}, sweep {r.sweep}, {r.device_kind} "
        f"{r.device_name}, {mode} mode)"
    )
    if math.isnan(paper_ratio):
        return Claim(spec.claim, f"{r.backbone} (not in paper) · {mode}", "—", text, NOT_JUDGED)
    outcome = ratio_outcome(low, high, paper_ratio)
    verdict = ratio_verdict(outcome, low, high, paper_ratio)
    if spec.timed:
        outcome, verdict = _on_a_quiet_cpu(r, outcome, verdict)
    return Claim(
        spec.claim,
        f"{r.backbone} · {_device(r)} · {mode}",
        f"{paper_ratio:.1f}x ({PAPER_TABLE2_DEVICE})",
        text,
        verdict,
        outcome,
    )


def _on_a_quiet_cpu(r: Table2Row, outcome: str, verdict: str) -> tuple[str, str]:
    """(outcome, verdict) of a timing claim as judged, or 'not judged: busy CPU' when the sweep's CPU was busy."""
    busy = busy_cpu_verdict(r)
    return (NOT_JUDGED, busy) if busy else (outcome, verdict)


def busy_cpu_verdict(r: Table2Row) -> str | None:
    """'not judged: busy CPU (...)' for a CPU sweep whose load stayed above BUSY_LOAD_PER_CPU per core: other
    work slows the two models unequally, so timing ratios then say little about the networks. None otherwise."""
    if r.device_kind != "cpu" or _isnan(r.cpu_load_max) or _isnan(r.cpu_count):
        return None
    load = busy_cpu_load([float(r.cpu_load_max)], int(r.cpu_count))
    if load is None:
        return None
    return (
        f"{NOT_JUDGED}: busy CPU (1-minute load up to {load:.1f} on {int(r.cpu_count)} cores during sweep "
        f"{r.sweep}, above {BUSY_LOAD_PER_CPU:g} per core; sweep again on a quiet machine)"
    )


def _interval_text(low: float, high: float, pairs: float) -> str:
    """', 95 % CI 10.1-12.4x over 3 pairs of timing sessions' (or what there is instead)."""
    n = int(pairs) if not _isnan(pairs) else 1
    if math.isnan(low) or math.isnan(high):
        return ", one timing session per model" if n <= 1 else f", {n} pairs of timing sessions"
    return f", 95 % CI {low:.1f}-{high:.1f}x over {n} pairs of timing sessions"


def _no_pair_measured(claim: str, paper_text: str) -> Claim:
    """The Table 2 claim row when no sweep measured both networks on one backbone and device."""
    return Claim(
        claim,
        "paper backbones",
        paper_text,
        "no sweep measured a DRNet and an RSIDE model with the same backbone on the same device",
        NOT_MEASURED,
    )


def _measured_drnet(tables: Tables, value: Callable[[Table2Row], float] | None = None) -> list[Table2Row]:
    """The measured DRNet rows of Table 2 (those with ``value``, when given)."""
    return [
        r
        for r in tables.table2
        if r.arch == "drnet" and r.status in (MEASURED, NO_PAPER) and (value is None or not _isnan(value(r)))
    ]


def _mode_order(modes: Iterable[str]) -> list[str]:
    """Modes in MODE_ORDER first (inference, autograd, train), any other after, each once."""
    seen = list(dict.fromkeys(str(m) for m in modes))
    return [m for m in MODE_ORDER if m in seen] + [m for m in seen if m not in MODE_ORDER]


def _by_mode_and_sweep(rows: Sequence[Table2Row]) -> list[tuple[str, list[Table2Row]]]:
    """(mode, rows) per sweep mode and sweep: a headline ("up to 15x") is the largest ratio over the backbones
    of one sweep in one mode, never the best of several sweeps (of one device under other suite names, or of
    a CPU and a GPU)."""
    out = []
    for mode in _mode_order(r.mode for r in rows):
        by_sweep: dict[str, list[Table2Row]] = {}
        for r in rows:
            if r.mode == mode:
                by_sweep.setdefault(r.sweep, []).append(r)
        out += [(mode, sweep_rows) for sweep_rows in by_sweep.values()]
    return out


def _paper_ratio_text(tables: Tables, paper_ratio: Callable[[Table2Row], float], what: str = "") -> str:
    """The paper's ratio per backbone (its first DRNet row of each), e.g. 'Tesla P40: resnet50 18.0x, ...'."""
    first: dict[str, Table2Row] = {}
    for r in tables.table2:
        if r.arch == "drnet":
            first.setdefault(r.backbone, r)
    text = ", ".join(f"{b} {paper_ratio(r):.1f}x" for b, r in first.items() if not math.isnan(paper_ratio(r)))
    return f"{PAPER_TABLE2_DEVICE}: {text}{what}"


def _device(r: Table2Row) -> str:
    return f"{r.device_name} ({r.device_kind})"


# ----------------------------------------------------------------------------------------------- real time


def _real_time(tables: Tables) -> list[Claim]:
    """The summary's "Real-Time fps rate": DRNet-R50 fps at batch 1 >= REAL_TIME_FPS on the measured device."""
    arch, backbone = REAL_TIME_MODEL
    claim = f"Real-time fps rate: DRNet {backbone} at batch 1 >= {REAL_TIME_FPS:g} images/s (summary)"
    model_rows = [r for r in tables.table2 if (r.arch, r.backbone) == (arch, backbone)]
    paper_fps = float(model_rows[0].fps_b1_paper) if model_rows else math.nan
    paper_text = f"{PAPER_TABLE2_DEVICE}: {paper_fps:g} images/s at batch 1"
    rows = [
        r
        for r in model_rows
        if r.status in (MEASURED, NO_PAPER) and not _isnan(r.fps_b1_measured) and r.mode == "inference"
    ]
    if not rows:
        measured = f"no inference-mode sweep of DRNet {backbone}"
        return [Claim(claim, f"{backbone} · inference", paper_text, measured, NOT_MEASURED)]
    return [_real_time_row(claim, backbone, paper_text, r) for r in rows]


def _real_time_row(claim: str, backbone: str, paper_text: str, r: Table2Row) -> Claim:
    fps = float(r.fps_b1_measured)
    outcome = REPRODUCED if fps >= REAL_TIME_FPS else NOT_REPRODUCED
    sign = ">=" if fps >= REAL_TIME_FPS else "<"
    verdict = f"{outcome} on {_device(r)}: {fps:.2f} {sign} {REAL_TIME_FPS:g}"
    if outcome == NOT_REPRODUCED:  # other work only slows it: a pass stands
        outcome, verdict = _on_a_quiet_cpu(r, outcome, verdict)
    measured = (
        f"{fps:.2f} images/s at batch 1 on {r.device_kind} {r.device_name} (sweep {r.sweep}, {r.dtype}, "
        f"input {r.input})"
    )
    return Claim(claim, f"{backbone} · {_device(r)} · inference", paper_text, measured, verdict, outcome)


# ------------------------------------------------------------------------------------ Table 3 findings

ABLATION_CLAIMS = {  # Table 3 switch -> the paper's finding about it
    "second_branch": "Table 3: the second upsampling branch gives the largest improvement",
    "aux_losses": "Table 3: auxiliary losses improve the result a bit",
    "diagonal": "Table 3: diagonal connections may be useless",
}


@dataclass(frozen=True)
class _AblationEvidence:
    """What the Table 3 findings are judged on: one backbone's ablations, each against its full model."""

    rows: dict[str, Table3Row]  # switch turned off -> its row, where it has a paired change vs the full model
    scope: str  # the backbone (and the paper's, when it is another) and what the verdicts are about
    paper_rows: list[Table3Row]  # the paper's backbone's rows: the paper's values
    full_seeds: int = 0  # seeds of the full model the changes are taken against


def _ablations(tables: Tables, purpose: str | None) -> list[Claim]:
    """The three Table 3 findings, judged on the backbone with the most ablations (the paper's on a tie)."""
    evidence = _ablation_evidence(tables.table3, purpose)
    return [_ablation_claim(switch, claim, evidence, purpose) for switch, claim in ABLATION_CLAIMS.items()]


def _ablation_evidence(t3: Sequence[Table3Row], purpose: str | None) -> _AblationEvidence:
    by_backbone: dict[str, dict[str, Table3Row]] = {r.backbone: {} for r in t3}  # first-appearance order
    for backbone, got in by_backbone.items():
        for switch in ABLATIONS:
            rows = (r for r in t3 if r.backbone == backbone and r.switches == ablated(switch))
            hit = next((r for r in rows if not _isnan(r.rmse_vs_full_rel)), None)
            if hit is not None:
                got[switch] = hit
    backbone = max(by_backbone, key=lambda b: (len(by_backbone[b]), b == PAPER_ABLATION_BACKBONE), default=None)
    if backbone is None:
        return _AblationEvidence({}, PAPER_ABLATION_BACKBONE, [])
    scope = backbone if backbone == PAPER_ABLATION_BACKBONE else f"{backbone} (paper: {PAPER_ABLATION_BACKBONE})"
    full = [r for r in t3 if r.backbone == backbone and r.switches == FULL_SWITCHES]
    if full:
        scope = f"{scope} · {scope_label(purpose, str(full[0].paper_regime))}"
    paper_rows = [r for r in t3 if r.backbone == PAPER_ABLATION_BACKBONE]
    return _AblationEvidence(by_backbone[backbone], scope, paper_rows, int(full[0].seeds) if full else 0)


def _ablation_claim(switch: str, claim: str, evidence: _AblationEvidence, purpose: str | None) -> Claim:
    """One finding: 'not measured' without its rows, else the gate (comparable, converged, seeds), else its rule."""
    paper_text = _paper_ablation(evidence.paper_rows, ablated(switch))
    rows = evidence.rows
    r = rows.get(switch)
    if r is None or (switch == "second_branch" and len(rows) < 3):
        need = (
            "all three ablations and the full model"
            if switch == "second_branch"
            else f"the full DRNet and the {switch} ablation"
        )
        return Claim(claim, evidence.scope, paper_text, f"needs {need} in this suite", NOT_MEASURED)
    involved = list(rows.values()) if switch == "second_branch" else [r]
    text = (
        f"RMSE change {r.rmse_vs_full_rel:+.1%} [{r.rmse_vs_full_rel_ci_low:+.1%}, {r.rmse_vs_full_rel_ci_high:+.1%}], "
        f"{_p(r.rmse_vs_full_p)}; {_seeds(r.vs_full_seeds)} per model (fewest); regime {r.regime}"
    )
    if switch == "second_branch":
        text += "; others: " + ", ".join(f"{k} {rows[k].rmse_vs_full_rel:+.1%}" for k in ("aux_losses", "diagonal"))
        text += "; RMSE(no second branch) - RMSE(other), paired: " + ", ".join(
            _gap_text(k, rows[k]) for k in ("aux_losses", "diagonal")
        )
    gate = _ablation_gate(involved, purpose)
    if gate is None:
        outcome = ABLATION_RULES[switch](r, rows)
        gate = (outcome, outcome)
    decide = ""
    if gate[1] == INCONCLUSIVE and switch in CHANGE_RULES:
        seeds = (int(r.seeds), evidence.full_seeds)
        decide = to_decide(
            r.rmse_vs_full_rel, r.vs_full_spread, seeds, r.rmse_vs_full_frames, CHANGE_RULES[switch], _ABLATED_MODELS
        )
    notes = _joined(involved, "vs_full_notes")
    verdict = with_notes(with_notes(gate[0], decide), notes)
    return Claim(claim, evidence.scope, paper_text, text, verdict, gate[1], notes=notes, to_decide=decide)


def _ablation_gate(involved: Sequence[Table3Row], purpose: str | None) -> tuple[str, str] | None:
    """``accuracy_gate`` over every ablation a finding rests on, each against its full model."""
    return accuracy_gate(
        "; ".join(f"{x.variant}: {x.vs_full_not_comparable}" for x in involved if _text(x.vs_full_not_comparable)),
        purpose,
        min(int(x.vs_full_seeds) for x in involved),
        _joined(involved, "vs_full_not_converged"),
        test_selected=_joined(involved, "vs_full_test_selected"),
        convergence_unknown=_joined(involved, "vs_full_convergence_unknown"),
    )


def _joined(rows: Sequence[Table3Row], column: str) -> str:
    """The '; '-separated lines of ``column`` over ``rows``, each once (several ablations share the full model)."""
    return "; ".join(dict.fromkeys(p for x in rows for p in _text(getattr(x, column)).split("; ") if p))


def _second_branch_outcome(r: Table3Row, rows: dict[str, Table3Row]) -> str:
    """Largest improvement, on intervals: reproduced if removing the second branch hurts (its change's CI above
    zero) and hurts more than removing either other element (each paired CI of RMSE('no second branch') -
    RMSE(other) above zero); not reproduced if removing it helps or another removal hurts more (a CI below
    zero); inconclusive otherwise. Without a paired CI the two changes' CIs stand in (conservative: the gap
    is taken to lie between the differences of their ends)."""
    gaps = [_second_branch_gap(r, rows[k]) for k in ("aux_losses", "diagonal")]
    if r.rmse_vs_full_rel_ci_high < 0 or any(high < 0 for _, high in gaps):
        return NOT_REPRODUCED
    if r.rmse_vs_full_rel_ci_low > 0 and all(low > 0 for low, _ in gaps):
        return REPRODUCED
    return INCONCLUSIVE


def _gap_text(switch: str, other: Table3Row) -> str:
    d, lo, hi = other.second_branch_gap_measured, other.second_branch_gap_ci_low, other.second_branch_gap_ci_high
    if _isnan(d):
        return f"{switch} not measured (the change CIs stand in)"
    return f"{switch} {d:+.4f} m [{lo:+.4f}, {hi:+.4f}], {_p(other.second_branch_gap_p)}"


def _second_branch_gap(second: Table3Row, other: Table3Row) -> tuple[float, float]:
    """(low, high) of how much more removing the second branch hurts than removing ``other``'s element: the
    paired CI of the RMSE difference, else the change CIs' opposite ends."""
    low, high = other.second_branch_gap_ci_low, other.second_branch_gap_ci_high
    if not (_isnan(low) or _isnan(high)):
        return float(low), float(high)
    return (
        second.rmse_vs_full_rel_ci_low - other.rmse_vs_full_rel_ci_high,
        second.rmse_vs_full_rel_ci_high - other.rmse_vs_full_rel_ci_low,
    )


CHANGE_RULES: dict[str, Callable[[float, float], str]] = {  # a finding judged on one change's CI -> its rule
    "aux_losses": improvement_outcome,
    "diagonal": equivalence_outcome,
}
_ABLATED_MODELS = ("ablated DRNet", "full DRNet")  # how "what would decide it" names the two models
ABLATION_RULES: dict[str, Callable[[Table3Row, dict[str, Table3Row]], str]] = {  # switch -> its finding's rule
    "second_branch": _second_branch_outcome,
    **{
        switch: (lambda r, _, rule=rule: rule(r.rmse_vs_full_rel_ci_low, r.rmse_vs_full_rel_ci_high))
        for switch, rule in CHANGE_RULES.items()
    },
}


def _paper_ablation(rows: Sequence[Table3Row], sw: tuple[bool, bool, bool]) -> str:
    def pick(s):
        return next((r.rmse.paper for r in rows if r.switches == s), math.nan)

    v, f = pick(sw), pick(FULL_SWITCHES)
    if math.isnan(v) or math.isnan(f):
        return "—"
    return f"RMSE {v:.3f} vs {f:.3f} m ({(v - f) / f:+.1%}, no CI given)"


# ------------------------------------------------------------------------------------------------ helpers


def _isnan(value) -> bool:
    """A missing number: NaN, or None."""
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return value is None


def _text(value) -> str:
    """A text cell; "" for an empty one (NaN where a CSV was read back)."""
    return value if isinstance(value, str) else ""


def _runs(n: int) -> str:
    return "run" if n == 1 else "runs"


def _seeds(n) -> str:
    n = int(n)
    return f"{n} seed{'s' if n != 1 else ''}"


def _p(p: float) -> str:
    """``p = 0.012``, ``p < 0.001`` or ``p n/a``."""
    return "p n/a" if p is None or math.isnan(p) else ("p < 0.001" if p < 0.001 else f"p = {p:.3f}")
