"""The training and evaluation regime of a run, read from its directory: what makes two runs comparable.

A regime is everything that shapes a run's numbers except the model (arch, backbone, options) and the seed:
data source and file fingerprint, training-set variant and size, optimiser steps actually taken, epochs,
batch, input size, encoder initialisation, lr schedule, amsgrad, trained or imported, evaluation protocol and
the evaluated frame set. A paired comparison is judged only between runs whose regimes match
(``regime_differences``); ``paper_differences`` says how a regime departs from the paper's (RSIDE's ~50k
frames of ``rside-csv``, 20 epochs, batch 8, ImageNet init, RSIDE's protocol on the 654 NYU test frames).
Sources: config.json (``config``, ``provenance.data``), metrics.json (``steps``, ``source``, ``protocol``,
``data``), history.csv (last ``step``, when metrics.json lacks ``steps``) and per_image.csv (frames).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from bench.report.identity import model_option_differences, options_label
from bench.report.runs import EvalRun, RunGroup

__all__ = [
    "PAPER_EPOCHS",
    "PAPER_BATCH",
    "PAPER_DATA",
    "PAPER_EVAL_FRAMES",
    "PAPER_INIT",
    "PAPER_PROTOCOL",
    "PAPER_TRAIN_FRAMES_MIN",
    "REGIME_FIELDS",
    "Regime",
    "group_regime_differences",
    "paper_differences",
    "regime_of",
    "regime_differences",
    "short_regime",
]

# The paper's regime (DRNet sec. 4, following RSIDE): RSIDE's training CSV of ~50k raw NYU frames.
PAPER_DATA = "rside-csv"
PAPER_TRAIN_FRAMES_MIN = 40_000  # RSIDE's nyu2_train.csv lists 50,688 frames; any CSV this large counts
PAPER_EPOCHS = 20
PAPER_BATCH = 8
PAPER_INIT = "imagenet"
PAPER_PROTOCOL = "rside"
PAPER_EVAL_FRAMES = 654  # the official NYU Depth v2 test split
IMPORTED_OFFICIAL = "rside-official"  # bench.importing.OFFICIAL_TRAIN_VARIANT (not imported: torch-free here)


@dataclass(frozen=True)
class Regime:
    """One run's regime; two runs are comparable when every field is equal."""

    data: str  # data source: synthetic, nyu-labeled, rside-csv
    data_fingerprint: str  # sha256 (12 hex) of the data file header(s); "" when not recorded
    train_variant: str  # e.g. nyu-labeled-795, rside-50688, rside-official
    train_frames: int | None  # config train_frames cap (None = all of the variant)
    source: str  # train | imported
    steps: int | None  # optimiser steps actually taken (metrics.json, else history.csv)
    epochs: float | None  # epochs trained (metrics.json epoch; config epochs when absent)
    batch: int | None
    input_size: str  # "HxW" or "data default"
    init: str  # random | imagenet | official checkpoint | file <name>
    lr_schedule: str
    amsgrad: bool | None
    protocol: str  # protocol name and a hash of its knobs
    eval_frames: str  # "<n> frames #<hash of the frame list>"


REGIME_FIELDS = tuple(f.name for f in fields(Regime))


def regime_of(run: EvalRun) -> Regime:
    """The regime of one run from what its directory records."""
    cfg = run.config.get("config", {}) if isinstance(run.config, Mapping) else {}
    m = run.metrics
    data = m.get("data") if isinstance(m.get("data"), Mapping) else {}
    source = str(m.get("source") or cfg.get("source") or "train")
    cfg_data = cfg.get("data")
    data_source = str(
        data.get("source") or (cfg_data.get("source") if isinstance(cfg_data, Mapping) else cfg_data) or "?"
    )
    weights = cfg.get("weights")
    if source == "imported":
        init = "official checkpoint"
    elif weights in (None, "", "none"):
        init = "random"
    elif weights == "imagenet":
        init = "imagenet"
    else:
        init = f"file {str(weights).rsplit('/', 1)[-1]}"
    size = cfg.get("input_size")
    protocol = m.get("protocol")
    if isinstance(protocol, Mapping):
        knobs = json.dumps(dict(protocol), sort_keys=True, default=str)
        protocol_key = f"{protocol.get('name', '?')} #{_hash(knobs)}"
    else:
        protocol_key = str(protocol or cfg.get("protocol") or "?")
    frames = sorted(int(f) for f in run.per_image["frame"])
    epoch = m.get("epoch", cfg.get("epochs"))
    return Regime(
        data=data_source,
        data_fingerprint=_fingerprint(run),
        train_variant=str(data.get("train_variant") or cfg.get("train_variant") or "?"),
        train_frames=cfg.get("train_frames"),
        source=source,
        steps=_steps(run),
        epochs=float(epoch) if isinstance(epoch, int | float) else None,
        batch=cfg.get("batch_size"),
        input_size="x".join(map(str, size)) if isinstance(size, list | tuple) else "data default",
        init=init,
        lr_schedule=str(cfg.get("lr_schedule", "?")),
        amsgrad=cfg.get("amsgrad"),
        protocol=protocol_key,
        eval_frames=f"{len(frames)} frames #{_hash(','.join(map(str, frames)))}",
    )


def regime_differences(a: Regime, b: Regime) -> list[str]:
    """Fields where two regimes differ, as 'field a vs b' (empty: comparable)."""
    return [
        f"{f} {_show(getattr(a, f))} vs {_show(getattr(b, f))}" for f in REGIME_FIELDS if getattr(a, f) != getattr(b, f)
    ]


def group_regime_differences(*groups: RunGroup) -> list[str]:
    """Fields on which the runs of the given groups (every seed of every model) do not all agree; for groups of
    one architecture (an ablation vs the full model) also the model options besides the Table 3 switches
    (bench.report.identity), so that e.g. a different ``up2_init`` is never judged as like with like."""
    regimes = [regime_of(r) for g in groups for r in g.runs]
    out = []
    for f in REGIME_FIELDS:
        values = list(dict.fromkeys(getattr(r, f) for r in regimes))
        if len(values) > 1:
            out.append(f"{f} {' vs '.join(_show(v) for v in values)}")
    return out + model_option_differences(*groups)


def paper_differences(regime: Regime, eval_n_frames: int) -> list[str]:
    """How a regime departs from the paper's; empty when it matches (imported official weights match)."""
    out = []
    if regime.source == "imported":
        if regime.train_variant != IMPORTED_OFFICIAL:
            out.append(f"imported weights of {regime.train_variant} (paper: {IMPORTED_OFFICIAL})")
    else:
        rows = _variant_rows(regime.train_variant)
        if regime.data != PAPER_DATA or rows is None or rows < PAPER_TRAIN_FRAMES_MIN:
            out.append(f"trained on {_data_label(regime)} (paper: {PAPER_DATA} ~50k frames)")
        elif regime.train_frames is not None:
            out.append(f"first {regime.train_frames} training frames only (paper: all)")
        if regime.epochs is None or regime.epochs < PAPER_EPOCHS:
            out.append(f"{_show(regime.epochs)} epochs (paper: {PAPER_EPOCHS})")
        if regime.batch != PAPER_BATCH:
            out.append(f"batch {_show(regime.batch)} (paper: {PAPER_BATCH})")
        if regime.init != PAPER_INIT:
            out.append(f"{regime.init} init (paper: {PAPER_INIT})")
        if regime.input_size != "data default":
            out.append(f"input {regime.input_size} (paper: 228x304)")
    if not regime.protocol.startswith(PAPER_PROTOCOL + " ") and regime.protocol != PAPER_PROTOCOL:
        out.append(f"protocol {regime.protocol.split(' #')[0]} (paper: {PAPER_PROTOCOL})")
    if eval_n_frames != PAPER_EVAL_FRAMES or regime.data == "synthetic":
        what = "synthetic test frames" if regime.data == "synthetic" else "test frames"
        out.append(f"{eval_n_frames} {what} (paper: NYU {PAPER_EVAL_FRAMES})")
    return out


def short_regime(group: RunGroup) -> str:
    """'rside-50k, 126.7k steps, 3 seeds' / 'labeled-795, 2.0k steps, 1 seed' / 'imported official', followed by
    the model options that are not today's defaults or were not recorded (identity.options_label), if any."""
    label = options_label(group)
    return _short_regime(group) + (f", {label}" if label else "")


def _short_regime(group: RunGroup) -> str:
    r = regime_of(group.first)
    n = len(group.runs)
    seeds = f"{n} seed{'s' if n != 1 else ''}"
    if r.source == "imported":
        base = "imported official" if r.train_variant == IMPORTED_OFFICIAL else f"imported {r.train_variant}"
        return base if n == 1 else f"{base}, {seeds}"
    steps = (
        "? steps" if r.steps is None else (f"{r.steps / 1000:.1f}k steps" if r.steps >= 1000 else f"{r.steps} steps")
    )
    return f"{_data_label(r)}, {steps}, {seeds}"


def _data_label(r: Regime) -> str:
    variant = r.train_variant
    rows = _variant_rows(variant)
    if variant.startswith("rside-") and rows is not None:
        label = f"rside-{rows // 1000}k" if rows >= 1000 else variant
    elif variant.startswith("nyu-labeled-"):
        label = variant.replace("nyu-labeled-", "labeled-")
    else:
        label = variant if variant != "?" else r.data
    return label + (f" (first {r.train_frames})" if r.train_frames else "")


def _variant_rows(variant: str) -> int | None:
    tail = variant.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _steps(run: EvalRun) -> int | None:
    steps = run.metrics.get("steps")
    if isinstance(steps, int | float):
        return int(steps)
    history = run.path / "history.csv"
    if history.is_file():
        try:
            with open(history, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step")]
            return int(float(rows[-1]["step"])) if rows else None
        except (OSError, ValueError, KeyError):
            return None
    return None


def _fingerprint(run: EvalRun) -> str:
    data = run.provenance.get("data") if isinstance(run.provenance, Mapping) else None
    fp = data.get("fingerprint") if isinstance(data, Mapping) else None
    shas = list(_find_all(fp, "header_sha256"))
    return _hash(",".join(sorted(shas))) if shas else ""


def _find_all(obj: Any, key: str) -> Iterable[str]:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if k == key:
                yield str(v)
            else:
                yield from _find_all(v, key)
    elif isinstance(obj, Sequence) and not isinstance(obj, str):
        for v in obj:
            yield from _find_all(v, key)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _show(v: Any) -> str:
    if v is None:
        return "unrecorded"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
