"""The training and evaluation regime of a run, read from its directory: what makes two runs comparable.

A regime is everything that can change a run's numbers except the model (arch, backbone, options) and the
seed: every RunConfig field whose role is REGIME (``bench.config.FIELD_ROLES``; a field added there is
compared here without a change), the number of training processes, and the code that computed the numbers
(``bench.codeprint``). Most fields are compared as configured; some by what the run records it actually did
(``COMPARED_AS``): the data file by its content fingerprint (the same file at another path matches), epochs
and max_steps by the epochs trained and the optimiser steps taken, eval_frames by the set of frames
evaluated, the protocol by all its settings, weights as the encoder init. A config.json without a field
(written before the field existed) has it "unrecorded", which differs from every recorded value: nobody can
say which value an older version used.

A paired comparison is judged only between runs whose regimes match (``compare_groups``,
``group_regime_differences``, ``regime_differences``): every difference is named, "lr 0.001 vs 0.0001".
Code: runs whose fingerprints differ are "code <digest> vs <digest> (<files that differ>)"; a run without a
fingerprint (older runs) is identified by its git commit and torch version when its tree was clean, and is
otherwise "unrecorded", which matches nothing, not even another unrecorded run. ``accept_code_drift`` turns a
code difference into a note that every verdict resting on the pair must carry ("code drift accepted: ...").

``paper_differences`` says how a regime departs from the paper's (RSIDE's ~50k frames of ``rside-csv``, 20
epochs, batch 8, ImageNet init, RSIDE's protocol on the 654 NYU test frames). Sources: config.json
(``config``; ``provenance.data``, ``.code``, ``.processes``, ``.git``, ``.versions``, ``.resumes``),
metrics.json (``steps``, ``epoch``, ``checkpoint``, ``source``, ``protocol``, ``data``), history.csv (last
``step`` and ``epoch``, where metrics.json lacks them) and per_image.csv (frames).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from bench.codeprint import fingerprint_changes
from bench.config import REGIME_CONFIG_FIELDS
from bench.report.identity import model_option_differences, options_label
from bench.report.runs import EvalRun, RunGroup

__all__ = [
    "COMPARED_AS",
    "CODE_DRIFT_ACCEPTED",
    "Comparability",
    "PAPER_EPOCHS",
    "PAPER_BATCH",
    "PAPER_DATA",
    "PAPER_EVAL_FRAMES",
    "PAPER_INIT",
    "PAPER_PROTOCOL",
    "PAPER_TRAIN_FRAMES_MIN",
    "RECIPE_FIELDS",
    "REGIME_FIELDS",
    "Regime",
    "UNRECORDED",
    "compare_groups",
    "compare_regimes",
    "group_regime_differences",
    "paper_differences",
    "regime_of",
    "regime_differences",
    "short_regime",
    "test_set_selection",
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
CODE_DRIFT_ACCEPTED = "code drift accepted"  # how a note about accepted code differences begins
UNRECORDED = "unrecorded"

# Regime fields of RunConfig compared by what the run records rather than as configured -> the Regime field
# that carries them; every other regime field is compared as configured, under its own name (RECIPE_FIELDS).
_RECORDED_AS = {
    "weights": "init",
    "source": "source",
    "data": "data",
    "data_path": "data_fingerprint",
    "train_variant": "train_variant",
    "train_frames": "train_frames",
    "eval_frames": "eval_frames",
    "input_size": "input_size",
    "protocol": "protocol",
    "epochs": "epochs",
    "max_steps": "steps",
    "batch_size": "batch",
}
if set(_RECORDED_AS) - set(REGIME_CONFIG_FIELDS):
    raise TypeError(
        f"regime._RECORDED_AS names non-regime fields: {sorted(set(_RECORDED_AS) - set(REGIME_CONFIG_FIELDS))}"
    )
RECIPE_FIELDS = tuple(f for f in REGIME_CONFIG_FIELDS if f not in _RECORDED_AS)
# Every regime field of RunConfig -> the name a difference in it is reported under.
COMPARED_AS: dict[str, str] = {f: _RECORDED_AS.get(f, f) for f in REGIME_CONFIG_FIELDS}
_NONE_MEANS = {"train_frames": "all", "grad_clip_norm": "none", "max_steps": "none", "eval_frames": "all"}


@dataclass(frozen=True)
class Regime:
    """One run's regime; two runs are comparable when every field is equal (``code``: and recorded)."""

    data: str  # data source: synthetic, nyu-labeled, rside-csv
    data_fingerprint: str  # sha256 (12 hex) of the data file header(s); "path <p>" when not recorded
    train_variant: str  # e.g. nyu-labeled-795, rside-50688, rside-official
    train_frames: int | None  # config train_frames cap (None = all of the variant)
    source: str  # train | imported
    steps: int | None  # optimiser steps actually taken (metrics.json, else history.csv)
    epochs: float | None  # epochs trained (metrics.json epoch; history.csv or config epochs when absent)
    batch: int | None
    input_size: str  # "HxW" or "data default"
    init: str  # random | imagenet | official checkpoint | file <name>
    protocol: str  # protocol name and a hash of its knobs
    eval_frames: str  # "<n> frames #<hash of the frame list>"
    recipe: tuple[tuple[str, Any], ...] = ()  # (field, value) of each of RECIPE_FIELDS, as configured
    processes: int | None = None  # training processes (DDP); None: not recorded (compared only when both are)
    code: str = UNRECORDED  # code fingerprint digest (12 hex), "git <commit>, torch <v>", or "unrecorded ..."
    code_record: Mapping[str, Any] | None = field(default=None, compare=False)  # provenance["code"]

    def value(self, name: str) -> Any:
        """A field's value, recipe fields included."""
        recipe = dict(self.recipe)
        return recipe[name] if name in recipe else getattr(self, name)


@dataclass(frozen=True)
class Comparability:
    """Whether runs may be judged against each other: ``differences`` (empty: comparable), each 'field a vs b',
    and ``notes`` that every verdict resting on them must carry (accepted code drift)."""

    differences: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def comparable(self) -> bool:
        return not self.differences


REGIME_FIELDS = (
    *(f.name for f in fields(Regime) if f.name not in ("recipe", "processes", "code", "code_record")),
    *RECIPE_FIELDS,
    "processes",
    "code",
)


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
    provenance = run.provenance if isinstance(run.provenance, Mapping) else {}
    processes = provenance.get("processes")
    code, code_record = _code_identity(provenance)
    return Regime(
        data=data_source,
        data_fingerprint=_fingerprint(run, cfg, data),
        train_variant=str(data.get("train_variant") or cfg.get("train_variant") or "?"),
        train_frames=cfg.get("train_frames"),
        source=source,
        steps=_steps(run),
        epochs=_epochs(run, cfg),
        batch=cfg.get("batch_size"),
        input_size="x".join(map(str, size)) if isinstance(size, list | tuple) else "data default",
        init=init,
        protocol=protocol_key,
        eval_frames=f"{len(frames)} frames #{_hash(','.join(map(str, frames)))}",
        recipe=tuple((f, _hashable(cfg.get(f, UNRECORDED))) for f in RECIPE_FIELDS),
        processes=int(processes) if isinstance(processes, int | float) else None,
        code=code,
        code_record=code_record,
    )


def regime_differences(a: Regime, b: Regime, accept_code_drift: bool = False) -> list[str]:
    """Fields where two regimes differ, as 'field a vs b' (empty: comparable); with ``accept_code_drift`` a
    code difference is left out (``compare_regimes`` returns it as a note)."""
    return list(compare_regimes([a, b], accept_code_drift).differences)


def compare_regimes(regimes: Sequence[Regime], accept_code_drift: bool = False) -> Comparability:
    """The fields on which ``regimes`` do not all agree, and the notes a verdict on them must carry."""
    out: list[str] = []
    for name in REGIME_FIELDS:
        if name == "code":
            continue
        values = [r.value(name) for r in regimes]
        if name == "processes":  # older runs did not record it: compared where recorded
            values = [v for v in values if v is not None]
        distinct = list(dict.fromkeys(values))
        if len(distinct) > 1:
            out.append(f"{name} {' vs '.join(_show(v, name) for v in distinct)}")
    code = _code_difference(regimes)
    if code is None:
        return Comparability(tuple(out))
    if accept_code_drift:
        return Comparability(tuple(out), (f"{CODE_DRIFT_ACCEPTED}: {code.removeprefix('code ')}",))
    return Comparability((*out, code))


def compare_groups(*groups: RunGroup, accept_code_drift: bool = False) -> Comparability:
    """Whether the runs of the given groups (every seed of every model) may be judged against each other: the
    regime fields on which they do not all agree, and for groups of one architecture (an ablation vs the full
    model) also the model options besides the Table 3 switches (bench.report.identity), so that e.g. a
    different ``up2_init`` is never judged as like with like. With ``accept_code_drift`` (``bench report
    --accept-code-drift``) differing code is a note to carry instead of a difference."""
    result = compare_regimes([regime_of(r) for g in groups for r in g.runs], accept_code_drift)
    return Comparability((*result.differences, *model_option_differences(*groups)), result.notes)


def group_regime_differences(*groups: RunGroup, accept_code_drift: bool = False) -> list[str]:
    """``compare_groups(...).differences`` as a list (empty: comparable)."""
    return list(compare_groups(*groups, accept_code_drift=accept_code_drift).differences)


def test_set_selection(*groups: RunGroup) -> list[str]:
    """The runs of ``groups`` whose evaluated weights were, or may have been, chosen by their test RMSE, one line
    each: metrics.json says ``"checkpoint": "best"``; or config.json selects "best" and nothing shows that the
    last weights were evaluated instead (metrics.json ``"checkpoint": "last"`` at the last epoch of history.csv,
    as bench run records it when no best.pt was written). Such a number is optimistic (the test set picked it),
    and no verdict rests on it."""
    out = []
    for group in groups:
        for run in group.runs:
            cfg = run.config.get("config", {}) if isinstance(run.config, Mapping) else {}
            checkpoint, epoch = run.metrics.get("checkpoint"), run.metrics.get("epoch")
            at = f" (epoch {_show(epoch)})" if isinstance(epoch, int | float) else ""
            if checkpoint == "best":
                out.append(f"{run.run_id}: the epoch with the best test RMSE{at}")
            elif cfg.get("checkpoint_select") == "best" and not (checkpoint == "last" and _is_last_epoch(run, epoch)):
                out.append(f"{run.run_id}: checkpoint_select best, and nothing shows the last epoch was evaluated{at}")
    return out


def _is_last_epoch(run: EvalRun, epoch: Any) -> bool:
    """Whether ``epoch`` (metrics.json's) is the last epoch of the run's history.csv."""
    last = _last_history_row(run)
    try:
        return last is not None and isinstance(epoch, int | float) and float(last["epoch"]) == float(epoch)
    except (KeyError, TypeError, ValueError):
        return False


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
    last = _last_history_row(run)
    try:
        return int(float(last["step"])) if last else None
    except (ValueError, KeyError):
        return None


def _epochs(run: EvalRun, cfg: Mapping[str, Any]) -> float | None:
    """Epochs trained: metrics.json's epoch (that of the evaluated weights: with checkpoint "best" the best
    epoch, so history.csv's last epoch then), else config epochs."""
    epoch = run.metrics.get("epoch")
    if run.metrics.get("checkpoint") == "best" or not isinstance(epoch, int | float):
        last = _last_history_row(run)
        try:
            epoch = float(last["epoch"]) if last else cfg.get("epochs")
        except (ValueError, KeyError):
            epoch = cfg.get("epochs")
    return float(epoch) if isinstance(epoch, int | float) else None


def _last_history_row(run: EvalRun) -> dict[str, str] | None:
    history = run.path / "history.csv"
    if not history.is_file():
        return None
    try:
        with open(history, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r.get("step")]
    except OSError:
        return None
    return rows[-1] if rows else None


def _fingerprint(run: EvalRun, cfg: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """The data file(s) by content (sha256 of their headers) when recorded, else by path (older runs)."""
    recorded = run.provenance.get("data") if isinstance(run.provenance, Mapping) else None
    fp = recorded.get("fingerprint") if isinstance(recorded, Mapping) else None
    shas = list(_find_all(fp, "header_sha256"))
    if shas:
        return _hash(",".join(sorted(shas)))
    cfg_data = cfg.get("data")
    path = cfg.get("data_path") or (cfg_data.get("path") if isinstance(cfg_data, Mapping) else None)
    path = path or data.get("path")
    return f"path {path}" if path else ""


def _code_identity(provenance: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None]:
    """(label, fingerprint record) of the code a run ran: the fingerprint's digest (12 hex), else "git <commit>,
    torch <version>" for a clean git tree, else "unrecorded ..."; "mixed a+b" when a resumed session ran other
    code (provenance.resumes[].code). Labels starting "unrecorded" or "mixed" match nothing."""
    record = provenance.get("code")
    if isinstance(record, Mapping) and record.get("digest"):
        digests = [str(record["digest"])]
        for session in provenance.get("resumes") or []:
            other = session.get("code") if isinstance(session, Mapping) else None
            if isinstance(other, Mapping) and other.get("digest"):
                digests.append(str(other["digest"]))
        distinct = list(dict.fromkeys(d[:12] for d in digests))
        return ("mixed " + "+".join(distinct) if len(distinct) > 1 else distinct[0]), record
    git = provenance.get("git") if isinstance(provenance.get("git"), Mapping) else {}
    versions = provenance.get("versions") if isinstance(provenance.get("versions"), Mapping) else {}
    commit, torch = git.get("commit"), versions.get("torch")
    if commit and git.get("dirty") is False and torch:
        return f"git {str(commit)[:12]}, torch {torch}", None
    if commit:
        return f"{UNRECORDED} (git {str(commit)[:12]}{' with uncommitted changes' if git.get('dirty') else ''})", None
    return UNRECORDED, None


def _code_difference(regimes: Sequence[Regime]) -> str | None:
    """'code a vs b (<files that differ>)' when the runs' code is not known to be the same, else None."""
    labels = list(dict.fromkeys(r.code for r in regimes))
    known = not any(label.startswith((UNRECORDED, "mixed ")) for label in labels)
    if len(labels) == 1 and known:
        return None
    records = list({r.code: r.code_record for r in regimes if r.code_record is not None}.values())
    changes = list(dict.fromkeys(c for other in records[1:] for c in fingerprint_changes(records[0], other)))
    return f"code {' vs '.join(labels)}" + (f" ({', '.join(changes)})" if changes else "")


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


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _show(v: Any, name: str = "") -> str:
    if v is None:
        return _NONE_MEANS.get(name, UNRECORDED)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, tuple):
        return "(" + ", ".join(_show(x) for x in v) + ")"
    return str(v)
