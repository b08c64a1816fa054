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
from dataclasses import dataclass

import pandas as pd

from bench.report.curves import STILL_MOVING_REL
from bench.report.paper import PAPER_TABLE2_DEVICE, paper_table1
from bench.report.tables import (
    FULL_SWITCHES,
    MEASURED,
    MEMORY_DEFINITIONS,
    NO_PAPER,
    PAPER_ABLATION_BACKBONE,
    Tables,
)

__all__ = [
    "BETTER_THAN_MARGIN",
    "DEPENDS_ON_DEFINITION",
    "EQUIVALENCE_MARGIN_REL",
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
    "accuracy_gate",
    "evaluate_claims",
    "parity_outcome",
    "scope_label",
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
# A suite's purpose (bench.suite): what its accuracy verdicts are about.
PIPELINE, MINIATURE, PAPER = "pipeline", "miniature", "paper"
PURPOSES = (PIPELINE, MINIATURE, PAPER)
PIPELINE_VERDICT = f"{NOT_JUDGED}: pipeline check"
CHECK_RSIDE_HINT = "check the RSIDE run (under-trained or broken?)"

TOLERANCES = (
    "Like with like: a paired comparison (DRNet vs RSIDE; each ablation vs the full model) is judged only when "
    "the runs' regimes match except for the model: data source and fingerprint, training-set variant, "
    "optimiser steps taken, epochs, batch, input size, encoder init, lr schedule, amsgrad, trained or imported, "
    f"protocol and evaluated frames. Otherwise the numbers are shown and the verdict is '{NOT_COMPARABLE}: "
    "<fields>'.",
    f"Seeds: with at least 2 seeds per model the 95 % interval is a t-interval whose variance adds the "
    f"seed-to-seed variance of each model's mean to the frame-bootstrap variance (Welch-Satterthwaite df); with "
    f"one seed it is the frame bootstrap only. Accuracy verdicts (parity and the three Table 3 findings) need "
    f">= {MIN_SEEDS} seeds per compared model, else '{INCONCLUSIVE}: n seed(s), {MIN_SEEDS} needed'.",
    f"Convergence (a heuristic): an accuracy verdict is '{NOT_JUDGED}: not converged' when any run it rests on "
    f"either ends with a test RMSE more than {STILL_MOVING_REL:.0%} from the median of the last quarter of its "
    "evaluations (history.csv; the curves figure shows them; the median ignores one noisy evaluation), or "
    "scores a pooled RMSE no better than one constant depth everywhere (the test pixels' own mean: "
    "metrics.json reference.constant_rmse), i.e. has "
    "learned nothing of the scene. A comparison with such a run measures how far training got, not the "
    "architecture.",
    f"Accuracy parity (per backbone, two-sided): reproduced if the 95 % CI of (RMSE_DRNet - RMSE_RSIDE) / "
    f"RMSE_RSIDE lies inside [-{PARITY_MARGIN_REL:.0%}, +{PARITY_MARGIN_REL:.0%}]; not reproduced if it lies "
    f"entirely above +{PARITY_MARGIN_REL:.0%}; '{BETTER_THAN_MARGIN}' if it lies entirely below "
    f"-{PARITY_MARGIN_REL:.0%} (the paper claims equality, so {CHECK_RSIDE_HINT}); inconclusive otherwise. "
    "log10 and delta1 differences are shown with their paired CIs.",
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
    f"Speed at batch 1: measured fps_b1(DRNet X) / fps_b1(RSIDE X) in one sweep on one device, with its range "
    f"between the quartiles of the two timings (DRNet's lower / RSIDE's upper quartile to the reverse, each "
    f"median -+ IQR/2 over the timed repeats). The headline 'up to {SPEED_CLAIM_RATIO_B1:g}x' (per sweep and "
    f"mode) is reproduced if that range for the largest ratio over the paper's backbones lies at or above "
    f"{SPEED_CLAIM_RATIO_B1:g} x (1 - {RATIO_REL_TOL:.0%}), not reproduced if it lies below, inconclusive if "
    f"it straddles it; per backbone, likewise against the paper's own ratio. Each setup is judged on its "
    f"latest sweep.",
    "Memory per image has three definitions here, because the paper's 'RAM / img' cannot be one quantity: "
    "DRNet-R50's 2 GB/img with its best fps at batch 36 on a 24 GB P40 would need 72 GB (so it is not a "
    "per-image share of a batch's memory), while RSIDE's 21 GB/img with a largest batch of 1 reads like a "
    "total at batch 1. (1) peak at batch 1 above the pre-model baseline (weights included); (2) the marginal "
    "slope of peak memory against batch size, with its R^2 (weights excluded); (3) the peak at the largest "
    "measured batch divided by that batch. Peaks: NVML device memory on CUDA, process RSS on CPU (each CPU "
    "model in a fresh process, so that the models' order cannot change a number). Net RAM likewise two "
    "ways: weights + buffers, and the increase from the pre-model baseline to the model loaded.",
    f"Memory verdicts: RSIDE X / DRNet X in one sweep and mode, per definition; headline "
    f"'{MEMORY_CLAIM_RATIO:g}x less' reproduced by a definition if its largest ratio is >= "
    f"{MEMORY_CLAIM_RATIO:g} x (1 - {RATIO_REL_TOL:.0%}); per backbone against the paper's ratio. The row over "
    f"all three says which definitions reproduce it ('{DEPENDS_ON_DEFINITION}' when they disagree).",
    f"Real-time fps rate (summary: 'gives Real-Time fps rate'): DRNet {REAL_TIME_MODEL[1]} at batch 1, "
    f"inference mode, reaches {REAL_TIME_FPS:g} images/s on the measured device; the verdict names the device "
    "(a CPU is not the paper's GPU: a CPU verdict says what this machine does, not what a P40 did).",
    "Table 3, relative RMSE change when an element is removed, (RMSE_variant - RMSE_full) / RMSE_full, "
    "paired "
    "bootstrap 95 % CI. Second branch matters most: reproduced if its CI lies above zero and above the other "
    "two CIs; not reproduced if its change is not the largest. Auxiliary losses help: reproduced if the CI "
    f"lies above zero; not reproduced if it lies below zero or within +-{EQUIVALENCE_MARGIN_REL:.0%}. "
    f"Diagonal connections useless: reproduced if the CI lies within +-{EQUIVALENCE_MARGIN_REL:.0%}; "
    f"not reproduced if it lies entirely outside.",
    f"Backbones the paper did not run (e.g. resnet18 in the smoke suite) are shown as '{NOT_JUDGED}' for the "
    "speed and memory claims, whose numbers are backbone-specific.",
)


@dataclass(frozen=True)
class Claim:
    """One row of the reproducibility summary."""

    claim: str  # the paper's statement
    scope: str  # backbone / device / data the evidence is about
    paper: str  # the paper's evidence
    measured: str  # what was measured here
    verdict: str  # the verdict's text, e.g. "not comparable: steps 2000 vs 126700"
    outcome: str = ""  # its category (REPRODUCED, NOT_COMPARABLE, ...); defaults to the verdict

    def __post_init__(self) -> None:
        if not self.outcome:
            object.__setattr__(self, "outcome", self.verdict)


def evaluate_claims(tables: Tables, purpose: str | None = None) -> list[Claim]:
    """All claims, in the order of the summary; ``purpose`` is the suite's (None: judged by regime only)."""
    if purpose is not None and purpose not in PURPOSES:
        raise ValueError(f"unknown suite purpose {purpose!r}; expected one of {', '.join(PURPOSES)}")
    return [
        *_parity(tables, purpose),
        *_speed_claims(tables),
        *_memory_claims(tables),
        *_real_time(tables),
        *_ablations(tables, purpose),
    ]


def accuracy_gate(
    not_comparable: str, purpose: str | None, n_seeds: int, not_converged: str = ""
) -> tuple[str, str] | None:
    """(verdict, outcome) when an accuracy comparison may not be judged on its numbers, else None: runs trained
    differently, a pipeline check, a run that has not converged (bench.report.curves), too few seeds."""
    if not_comparable:
        return f"{NOT_COMPARABLE}: {not_comparable}", NOT_COMPARABLE
    if purpose == PIPELINE:
        return PIPELINE_VERDICT, NOT_JUDGED
    if not_converged:
        return f"{NOT_JUDGED}: not converged: {not_converged}", NOT_JUDGED
    if n_seeds < MIN_SEEDS:
        return f"{INCONCLUSIVE}: {n_seeds} seed(s), {MIN_SEEDS} needed", INCONCLUSIVE
    return None


def parity_outcome(lo: float, hi: float, margin: float = PARITY_MARGIN_REL) -> str:
    """Two-sided parity from the CI [lo, hi] of the relative RMSE difference (DRNet - RSIDE) / RSIDE."""
    if -margin <= lo and hi <= margin:
        return REPRODUCED
    if lo > margin:
        return NOT_REPRODUCED
    if hi < -margin:
        return BETTER_THAN_MARGIN
    return INCONCLUSIVE


def scope_label(purpose: str | None, paper_regime: str) -> str:
    """What an accuracy verdict is about: the pipeline, a miniature, the paper, or another regime."""
    if purpose == PIPELINE:
        return "pipeline check"
    if purpose == MINIATURE:
        return "in miniature"
    if paper_regime == "matches":
        return "the paper's regime"
    return "not the paper's regime (" + paper_regime.removeprefix("differs: ") + ")"


def _parity(tables: Tables, purpose: str | None) -> list[Claim]:
    claim = "Accuracy parity: DRNet matches RSIDE (Table 1)"
    paper = paper_table1().set_index(["arch", "backbone", "source"])["rmse"]
    if tables.paired.empty:
        return [
            Claim(
                claim,
                "any backbone",
                _paper_parity(paper, None),
                "no backbone with both an RSIDE and a DRNet run in this suite",
                NOT_MEASURED,
            )
        ]
    out = []
    for r in tables.paired.itertuples(index=False):
        if r.frames_common == 0:
            out.append(
                Claim(
                    claim,
                    r.backbone,
                    _paper_parity(paper, r.backbone),
                    "the two runs share no evaluated frame",
                    NOT_MEASURED,
                )
            )
            continue
        lo, hi = r.rmse_rel_ci_low, r.rmse_rel_ci_high
        seeds = min(int(r.seeds_drnet), int(r.seeds_rside))
        gate = accuracy_gate(r.not_comparable, purpose, seeds, _text(getattr(r, "not_converged", "")))
        if gate is not None:
            verdict, outcome = gate
        else:
            outcome = parity_outcome(lo, hi)
            verdict = f"{outcome}: {CHECK_RSIDE_HINT}" if outcome == BETTER_THAN_MARGIN else outcome
        frames = f"{r.frames_common} common frames" + (
            "" if r.same_frames else f" (DRNet {r.frames_drnet}, RSIDE {r.frames_rside})"
        )
        measured = (
            f"RMSE {r.rmse_drnet:.3f} vs {r.rmse_rside:.3f} m: {r.rmse_rel_diff:+.1%} "
            f"[{lo:+.1%}, {hi:+.1%}], {_p(r.rmse_p)}; log10 {r.log10_diff:+.4f} "
            f"[{r.log10_ci_low:+.4f}, {r.log10_ci_high:+.4f}]; delta1 {r.delta1_diff:+.4f} "
            f"[{r.delta1_ci_low:+.4f}, {r.delta1_ci_high:+.4f}]; {frames}; seeds DRNet {r.seeds_drnet}, "
            f"RSIDE {r.seeds_rside} (CI covers {r.ci_covers}); regimes: DRNet {r.drnet_regime}, "
            f"RSIDE {r.rside_regime}"
        )
        scope = f"{r.backbone} · {r.data} · {scope_label(purpose, r.paper_regime)}"
        out.append(Claim(claim, scope, _paper_parity(paper, r.backbone), measured, verdict, outcome))
    return out


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


def _mode_order(modes) -> list[str]:
    """Modes in MODE_ORDER first (inference, autograd, train), any other after, each once."""
    seen = list(dict.fromkeys(str(m) for m in modes))
    return [m for m in MODE_ORDER if m in seen] + [m for m in seen if m not in MODE_ORDER]


def _by_mode_and_sweep(measured: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(mode, rows) per sweep mode and sweep: a headline ("up to 15x") is the largest ratio over the backbones
    of one sweep in one mode, never the best of several sweeps (of one device under other suite names, or of
    a CPU and a GPU)."""
    out = []
    for mode in _mode_order(measured["mode"]):
        rows = measured[measured["mode"] == mode]
        for _, sweep_rows in rows.groupby("sweep", sort=False):
            out.append((mode, sweep_rows))
    return out


def _device(r) -> str:
    return f"{r['device_name']} ({r['device_kind']})"


def _measured_drnet(tables: Tables, col: str) -> pd.DataFrame:
    t2 = tables.table2
    drnet = t2[t2["arch"] == "drnet"]
    return drnet[drnet["status"].isin([MEASURED, NO_PAPER]) & drnet[col].notna()]


def _paper_ratio_text(tables: Tables, paper_col: str, what: str = "") -> str:
    t2 = tables.table2
    rows = t2[t2["arch"] == "drnet"].drop_duplicates("backbone")
    text = ", ".join(
        f"{r[0]} {r[1]:.1f}x" for r in zip(rows["backbone"], rows[paper_col], strict=True) if not math.isnan(r[1])
    )
    return f"{PAPER_TABLE2_DEVICE}: {text}{what}"


def _ratio_verdict(value: float, target: float, low: float = math.nan, high: float = math.nan) -> str:
    """Reproduced when the ratio reaches (1 - RATIO_REL_TOL) of ``target``; with a range [low, high] (fps at
    batch 1: between the quartiles of the two timings) the whole range must reach it, and a range that
    straddles it is inconclusive."""
    need = target * (1 - RATIO_REL_TOL)
    if math.isnan(low) or math.isnan(high):
        return REPRODUCED if value >= need else NOT_REPRODUCED
    if low >= need:
        return REPRODUCED
    return NOT_REPRODUCED if high < need else INCONCLUSIVE


def _range(r: dict, range_cols: tuple[str, str] | None) -> tuple[float, float]:
    if range_cols is None:
        return math.nan, math.nan
    low, high = (float(r.get(c, math.nan)) for c in range_cols)
    return low, high


def _range_text(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return ""
    return f", {low:.1f}-{high:.1f}x between the quartiles of the two timings"


def _ratio_rows(
    claim: str,
    rows: pd.DataFrame,
    col: str,
    paper_col: str,
    target: float,
    paper_text: str,
    what: str,
    mode: str,
    range_cols: tuple[str, str] | None = None,
) -> list[Claim]:
    """Headline (largest ratio over the paper's backbones against ``target``) and one row per measurement,
    all of one sweep mode; every scope names the backbone, the device (and that it is a CPU) and the mode.
    ``range_cols``: table2 columns of the ratio's low and high end, judged as ``_ratio_verdict`` says."""
    in_paper = rows[rows[paper_col].notna()]
    if in_paper.empty:
        out = [
            Claim(
                claim,
                f"paper backbones · {mode}",
                paper_text,
                "only backbones the paper did not run were measured (see the rows below)",
                NOT_MEASURED,
            )
        ]
    else:
        best = in_paper.loc[in_paper[col].idxmax()].to_dict()
        value = best[col]
        low, high = _range(best, range_cols)
        out = [
            Claim(
                claim,
                f"{best['backbone']} · {_device(best)} · {mode}",
                paper_text,
                f"largest ratio {value:.1f}x ({what}{_range_text(low, high)}; {best['backbone']}, sweep "
                f"{best['sweep']}, {best['device_kind']} {best['device_name']}, {best['dtype']}, input "
                f"{best['input']}, {mode} mode)",
                _ratio_verdict(value, target, low, high),
            )
        ]
    for r in rows.to_dict("records"):
        value, paper_ratio = r[col], r[paper_col]
        low, high = _range(r, range_cols)
        text = (
            f"{value:.2f}x ({what}{_range_text(low, high)}, sweep {r['sweep']}, {r['device_kind']} "
            f"{r['device_name']}, {mode} mode)"
        )
        if math.isnan(paper_ratio):
            out.append(Claim(claim, f"{r['backbone']} (not in paper) · {mode}", "—", text, NOT_JUDGED))
        else:
            out.append(
                Claim(
                    claim,
                    f"{r['backbone']} · {_device(r)} · {mode}",
                    f"{paper_ratio:.1f}x ({PAPER_TABLE2_DEVICE})",
                    text,
                    _ratio_verdict(value, paper_ratio, low, high),
                )
            )
    return out


def _no_pair_measured(claim: str, paper_text: str) -> Claim:
    """The Table 2 claim row when no sweep measured both networks on one backbone and device."""
    return Claim(
        claim,
        "paper backbones",
        paper_text,
        "no sweep measured a DRNet and an RSIDE model with the same backbone on the same device",
        NOT_MEASURED,
    )


def _speed_claims(tables: Tables) -> list[Claim]:
    claim = f"Up to {SPEED_CLAIM_RATIO_B1:g}x faster per image at batch 1 (Table 2)"
    paper_text = _paper_ratio_text(tables, "speedup_b1_paper")
    measured = _measured_drnet(tables, "speedup_b1_measured")
    if measured.empty:
        return [_no_pair_measured(claim, paper_text)]
    out = []
    for mode, rows in _by_mode_and_sweep(measured):
        out += _ratio_rows(
            claim,
            rows,
            "speedup_b1_measured",
            "speedup_b1_paper",
            SPEED_CLAIM_RATIO_B1,
            paper_text,
            "fps_b1",
            mode,
            ("speedup_b1_low", "speedup_b1_high"),
        )
    return out


def _memory_claims(tables: Tables) -> list[Claim]:
    """Per sweep mode: one row over the three memory definitions ("reproduced by peak at batch 1, not by
    marginal slope"), then each definition's headline and per-backbone rows."""
    claim = f"{MEMORY_CLAIM_RATIO:g}x less memory per image (Table 2)"
    paper_text = _paper_ratio_text(tables, "mem_ratio_paper", " ('RAM / img', never defined)")
    ratio_cols = [ratio for ratio, _ in MEMORY_DEFINITIONS.values()]
    t2 = tables.table2
    measured = t2[
        (t2["arch"] == "drnet") & t2["status"].isin([MEASURED, NO_PAPER]) & t2[ratio_cols].notna().any(axis=1)
    ]
    if measured.empty:
        return [_no_pair_measured(claim, paper_text)]
    out = []
    for mode, rows in _by_mode_and_sweep(measured):
        per_definition: list[tuple[str, list[Claim]]] = []
        for ratio_col, label in MEMORY_DEFINITIONS.values():
            with_ratio = rows[rows[ratio_col].notna()]
            if with_ratio.empty:
                per_definition.append(
                    (
                        label,
                        [
                            Claim(
                                f"{claim}: {label}",
                                f"paper backbones · {mode}",
                                paper_text,
                                f"{label} not measured in these sweeps",
                                NOT_MEASURED,
                            )
                        ],
                    )
                )
                continue
            per_definition.append(
                (
                    label,
                    _ratio_rows(
                        f"{claim}: {label}",
                        with_ratio,
                        ratio_col,
                        "mem_ratio_paper",
                        MEMORY_CLAIM_RATIO,
                        paper_text,
                        label,
                        mode,
                    ),
                )
            )
        out.append(_memory_overall(claim, paper_text, mode, per_definition))
        out += [c for _, claims in per_definition for c in claims]
    return out


def _memory_overall(claim: str, paper_text: str, mode: str, per_definition: list[tuple[str, list[Claim]]]) -> Claim:
    """The memory claim over all three definitions of one mode, from each definition's headline."""
    by_outcome: dict[str, list[str]] = {}
    measured = []
    for label, claims in per_definition:
        headline = claims[0]
        by_outcome.setdefault(headline.outcome, []).append(label)
        if headline.outcome in (REPRODUCED, NOT_REPRODUCED):
            measured.append(f"{label}: {headline.measured.split(' (')[0].removeprefix('largest ratio ')}")
    yes, no = by_outcome.get(REPRODUCED, []), by_outcome.get(NOT_REPRODUCED, [])
    if yes and no:
        verdict = f"reproduced by {', '.join(yes)}; not by {', '.join(no)}"
        outcome = DEPENDS_ON_DEFINITION
    elif yes:
        outcome, verdict = REPRODUCED, f"reproduced by every measured definition ({', '.join(yes)})"
    elif no:
        outcome, verdict = NOT_REPRODUCED, f"not reproduced by any measured definition ({', '.join(no)})"
    else:
        return Claim(claim, f"all three definitions · {mode}", paper_text, "no definition measured", NOT_MEASURED)
    rest = [label for o, labels in by_outcome.items() if o not in (REPRODUCED, NOT_REPRODUCED) for label in labels]
    if rest:
        verdict += f" ({', '.join(rest)}: not judged)"
    return Claim(
        claim,
        f"all three definitions · {mode}",
        paper_text,
        "largest RSIDE / DRNet ratio per definition: " + "; ".join(measured),
        verdict,
        outcome,
    )


def _real_time(tables: Tables) -> list[Claim]:
    """The summary's "Real-Time fps rate": DRNet-R50 fps at batch 1 >= REAL_TIME_FPS on the measured device."""
    arch, backbone = REAL_TIME_MODEL
    claim = f"Real-time fps rate: DRNet {backbone} at batch 1 >= {REAL_TIME_FPS:g} images/s (summary)"
    t2 = tables.table2
    paper_row = t2[(t2["arch"] == arch) & (t2["backbone"] == backbone)]
    paper_fps = float(paper_row["fps_b1_paper"].iloc[0]) if len(paper_row) else math.nan
    paper_text = f"{PAPER_TABLE2_DEVICE}: {paper_fps:g} images/s at batch 1"
    rows = paper_row[
        paper_row["status"].isin([MEASURED, NO_PAPER])
        & paper_row["fps_b1_measured"].notna()
        & (paper_row["mode"] == "inference")
    ]
    if rows.empty:
        return [
            Claim(
                claim,
                f"{backbone} · inference",
                paper_text,
                f"no inference-mode sweep of DRNet {backbone}",
                NOT_MEASURED,
            )
        ]
    out = []
    for r in rows.to_dict("records"):
        fps = float(r["fps_b1_measured"])
        outcome = REPRODUCED if fps >= REAL_TIME_FPS else NOT_REPRODUCED
        sign = ">=" if fps >= REAL_TIME_FPS else "<"
        out.append(
            Claim(
                claim,
                f"{backbone} · {_device(r)} · inference",
                paper_text,
                f"{fps:.2f} images/s at batch 1 on {r['device_kind']} {r['device_name']} (sweep "
                f"{r['sweep']}, {r['dtype']}, input {r['input']})",
                f"{outcome} on {_device(r)}: {fps:.2f} {sign} {REAL_TIME_FPS:g}",
                outcome,
            )
        )
    return out


ABLATION_CLAIMS = {
    "second_branch": "Table 3: the second upsampling branch gives the largest improvement",
    "aux_losses": "Table 3: auxiliary losses improve the result a bit",
    "diagonal": "Table 3: diagonal connections may be useless",
}


def _ablations(tables: Tables, purpose: str | None) -> list[Claim]:
    t3 = tables.table3
    variants = {
        "diagonal": (False, True, True),
        "aux_losses": (True, False, True),
        "second_branch": (True, True, False),
    }
    by_backbone = {}
    for backbone, rows in t3.groupby("backbone", sort=False):
        got = {}
        for name, sw in variants.items():
            hit = _with_switches(rows, sw)
            hit = hit[hit["rmse_vs_full_rel"].notna()]
            if len(hit):
                got[name] = hit.iloc[0]
        by_backbone[backbone] = got
    backbone = max(by_backbone, key=lambda b: (len(by_backbone[b]), b == PAPER_ABLATION_BACKBONE), default=None)
    got = by_backbone.get(backbone, {})
    paper_rows = t3[t3["backbone"] == PAPER_ABLATION_BACKBONE]
    scope = backbone if backbone == PAPER_ABLATION_BACKBONE else f"{backbone} (paper: {PAPER_ABLATION_BACKBONE})"
    full = _with_switches(t3[t3["backbone"] == backbone], FULL_SWITCHES) if backbone is not None else t3.iloc[:0]
    paper_regime = str(full.iloc[0]["paper_regime"]) if len(full) else ""
    scope = f"{scope} · {scope_label(purpose, paper_regime)}" if len(full) else scope
    out = []
    for name, claim in ABLATION_CLAIMS.items():
        paper_text = _paper_ablation(paper_rows, variants[name])
        if name not in got or (name == "second_branch" and len(got) < 3):
            need = (
                "all three ablations and the full model"
                if name == "second_branch"
                else f"the full DRNet and the {name} ablation"
            )
            out.append(
                Claim(
                    claim,
                    scope or PAPER_ABLATION_BACKBONE,
                    paper_text,
                    f"needs {need} in this suite",
                    NOT_MEASURED,
                )
            )
            continue
        r = got[name]
        lo, hi, d = r.rmse_vs_full_rel_ci_low, r.rmse_vs_full_rel_ci_high, r.rmse_vs_full_rel
        text = (
            f"RMSE change {d:+.1%} [{lo:+.1%}, {hi:+.1%}], {_p(r.rmse_vs_full_p)}; "
            f"{_seeds(r.vs_full_seeds)} per model (fewest); regime {r.regime}"
        )
        m = EQUIVALENCE_MARGIN_REL
        involved = [got[k] for k in got] if name == "second_branch" else [r]
        gate = accuracy_gate(
            "; ".join(f"{x.variant}: {x.vs_full_not_comparable}" for x in involved if x.vs_full_not_comparable),
            purpose,
            min(int(x.vs_full_seeds) for x in involved),
            "; ".join(
                dict.fromkeys(
                    p for x in involved for p in _text(getattr(x, "vs_full_not_converged", "")).split("; ") if p
                )
            ),
        )
        if gate is not None:
            if name == "second_branch":
                text += "; others: " + ", ".join(
                    f"{k} {got[k].rmse_vs_full_rel:+.1%}" for k in ("aux_losses", "diagonal")
                )
            out.append(Claim(claim, scope, paper_text, text, *gate))
            continue
        if name == "second_branch":
            others = [got[k] for k in ("aux_losses", "diagonal")]
            if lo > 0 and all(lo > o.rmse_vs_full_rel_ci_high for o in others):
                verdict = REPRODUCED
            elif d <= max(o.rmse_vs_full_rel for o in others):
                verdict = NOT_REPRODUCED
            else:
                verdict = INCONCLUSIVE
            text += "; others: " + ", ".join(f"{k} {got[k].rmse_vs_full_rel:+.1%}" for k in ("aux_losses", "diagonal"))
        elif name == "aux_losses":
            verdict = REPRODUCED if lo > 0 else NOT_REPRODUCED if (hi < 0 or (lo >= -m and hi <= m)) else INCONCLUSIVE
        else:
            verdict = REPRODUCED if (lo >= -m and hi <= m) else NOT_REPRODUCED if (lo > m or hi < -m) else INCONCLUSIVE
        out.append(Claim(claim, scope, paper_text, text, verdict))
    return out


def _paper_ablation(rows: pd.DataFrame, sw: tuple[bool, bool, bool]) -> str:
    def pick(s):
        hit = _with_switches(rows, s)
        return hit.iloc[0]["rmse_paper"] if len(hit) else math.nan

    v, f = pick(sw), pick(FULL_SWITCHES)
    if math.isnan(v) or math.isnan(f):
        return "—"
    return f"RMSE {v:.3f} vs {f:.3f} m ({(v - f) / f:+.1%}, no CI given)"


def _with_switches(rows: pd.DataFrame, sw: tuple[bool, bool, bool]) -> pd.DataFrame:
    """The Table 3 rows whose (diagonal, aux_losses, second_branch) equal ``sw``."""
    return rows[(rows["diagonal"] == sw[0]) & (rows["aux_losses"] == sw[1]) & (rows["second_branch"] == sw[2])]


def _text(value) -> str:
    """A text cell of a table read back from CSV: NaN (an empty cell) is ''."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _seeds(n) -> str:
    n = int(n)
    return f"{n} seed{'s' if n != 1 else ''}"


def _p(p: float) -> str:
    """``p = 0.012``, ``p < 0.001`` or ``p n/a``."""
    return "p n/a" if p is None or math.isnan(p) else ("p < 0.001" if p < 0.001 else f"p = {p:.3f}")
