"""``RunConfig``: everything that defines one training + evaluation run, saved as ``config.json``.

A suite (``bench/suites/*.toml``) holds only overrides of these defaults. The dataclass is frozen; every
field is type-checked and range-checked on construction, and ``RunConfig.from_dict`` rejects unknown or
mistyped keys (with a "did you mean" hint) instead of ignoring them, so a typo in a suite never silently
trains the wrong thing.

Every field has one declared role (``FIELD_ROLES``), with the reason next to it: model identity (which run
this is), regime (can change the numbers: two runs are compared only when all of these match,
``bench.report.regime``) or operational (cannot change the numbers: a resumed or reused run may differ
here, ``config_diff``). A field without a role is an error at import.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MIN_EVALS_FOR_CHECK",
    "AMP_MODES",
    "CHECKPOINT_SELECT",
    "ConfigError",
    "FIELD_ROLES",
    "IDENTITY_FIELDS",
    "LR_SCHEDULES",
    "OPERATIONAL_FIELDS",
    "REGIME_CONFIG_FIELDS",
    "RUN_SOURCES",
    "Role",
    "RunConfig",
    "config_diff",
    "model_problem",
]

AMP_MODES = ("none", "bf16", "fp16")
LR_SCHEDULES = ("step", "constant")
CHECKPOINT_SELECT = ("last", "best")
RUN_SOURCES = ("train", "imported")
DEVICES = ("cpu", "cuda")
# Keys older config.json files hold that are no longer fields, with the one value they could have had; reading
# such a file drops them (any other value is an error).
RETIRED_KEYS = {"optimizer": "adam"}  # only Adam was ever implemented (bench.train.build_optimizer)


# bench.report.curves judges a trained run's convergence from history.csv; the dry run warns about runs that will
# have fewer evaluations.
MIN_EVALS_FOR_CHECK = 4  # fewer test evaluations than this: no convergence check (a quarter would be < 1 point)


class ConfigError(ValueError):
    """A run configuration (or a suite entry) has an unknown key, a wrong type or an invalid value."""


@dataclass(frozen=True)
class RunConfig:
    """One run: model, data, protocol, optimisation and execution settings. Defaults follow RSIDE + DRNet.

    Units: lr per step, weight_decay as Adam's L2 coefficient, sizes in pixels (H, W).
    """

    # --- identity -------------------------------------------------------------------------------------
    suite: str = "adhoc"  # the suite this run belongs to (the run id is <suite>-<name>-s<seed>)
    name: str = "run"  # the run's name inside its suite, e.g. "drnet-resnet152-no-diagonal"
    tables: tuple[str, ...] = ()  # paper tables this run feeds, e.g. ("table1", "table3")

    # --- model ----------------------------------------------------------------------------------------
    arch: str = "rside"
    backbone: str = "resnet50"
    options: dict[str, Any] = field(default_factory=dict)  # architecture switches (model_options(arch))
    weights: str | None = None  # encoder init: None (random), "imagenet" (local hub cache) or a file path
    source: str = "train"  # "train": trained here; "imported": weights from `bench import`, evaluated only

    # --- data -----------------------------------------------------------------------------------------
    data: str = "synthetic"  # one of architectures.data.DATA_SOURCES
    data_path: str | None = None  # None = the source's default file
    train_split: str = "train"
    test_split: str = "test"
    # the training set, e.g. "rside-50688", "nyu-labeled-795": a suite may demand one (a shell pattern such as
    # "rside-*"; another training set is then an error); replaced by the actual one at run start
    train_variant: str | None = None
    train_frames: int | None = None  # train on the first N frames only (smoke runs, tests); None = all
    eval_frames: int | None = None  # evaluate N evenly spaced test frames (smoke runs, tests); None = all
    input_size: tuple[int, int] | None = None  # network input (H, W); None = the data's own size (228x304)
    protocol: str = "rside"  # evaluation protocol, architectures.data.get_protocol(name)

    # --- optimisation (DRNet paper: Adam with amsgrad, lr 1e-4, wd 1e-4; RSIDE train.py: plain Adam, same lr and
    # wd, lr x0.1 every 5 epochs, 20 epochs). One recipe per paired comparison: each suite sets amsgrad.
    epochs: int = 20
    max_steps: int | None = None  # stop after this many optimiser steps in all (smoke runs); None = no cap
    batch_size: int = 8  # global batch: split evenly across DDP processes
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-4
    amsgrad: bool = True  # True: the DRNet paper's Adam variant; False: RSIDE train.py's plain Adam
    lr_schedule: str = "step"  # "step": lr * lr_gamma^(epoch // lr_step_epochs); "constant"
    lr_step_epochs: int = 5
    lr_gamma: float = 0.1
    grad_clip_norm: float | None = None  # clip the global gradient norm; None = no clipping (as RSIDE)
    amp: str = "none"  # "none" | "bf16" (autocast on CUDA or the CPU) | "fp16" (CUDA only, with a grad scaler)

    # --- execution ------------------------------------------------------------------------------------
    seed: int = 0
    device: str = "cpu"  # "cpu" | "cuda"
    deterministic: bool = False  # torch.use_deterministic_algorithms and no cudnn.benchmark
    num_workers: int = 0  # DataLoader worker processes
    eval_batch_size: int = 8
    eval_every_epochs: int = 1  # evaluate on the test split every N epochs (history.csv); 0 = only at the end
    checkpoint_every_steps: int = 0  # also checkpoint every N optimiser steps; 0 = only at epoch ends
    checkpoint_select: str = "last"  # weights evaluated at the end: "last" epoch or "best" test rmse
    log_every_steps: int = 10  # progress line every N steps
    keep_checkpoints: bool = False  # keep last.pt / best.pt (weights + optimiser state) after the run; the
    # evaluated weights are kept in checkpoints/final.pt either way (a quarter of last.pt's size with amsgrad)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _check_type(f.name, getattr(self, f.name), _HINTS[f.name]))
        self._check_values()

    # ------------------------------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        """``<suite>-<name>-s<seed>``, the run directory's name (runs/README.md)."""
        return f"{self.suite}-{self.name}-s{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> RunConfig:
        """Build from a dict; unknown keys, wrong types and bad values raise ``ConfigError`` naming ``where``."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a table of RunConfig fields, got {type(data).__name__}")
        data = _drop_retired(data, where)
        unknown = [k for k in data if k not in _HINTS]
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(_with_hint(k) for k in unknown)}; valid keys: {', '.join(_HINTS)}"
            )
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied (validated like any other construction)."""
        unknown = [k for k in changes if k not in _HINTS]
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(_with_hint(k) for k in unknown)}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_json_file(cls, path: str | Path) -> RunConfig:
        """Read the ``config`` member of a run directory's config.json (or a bare RunConfig JSON object)."""
        path = Path(path)
        try:
            obj = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        if isinstance(obj, dict) and isinstance(obj.get("config"), dict):
            obj = obj["config"]
        return cls.from_dict(obj, where=str(path))

    # ------------------------------------------------------------------------------------------------
    def _check_values(self) -> None:
        choices = {
            "amp": AMP_MODES,
            "lr_schedule": LR_SCHEDULES,
            "checkpoint_select": CHECKPOINT_SELECT,
            "source": RUN_SOURCES,
            "device": DEVICES,
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key} = {getattr(self, key)!r}; expected one of {', '.join(allowed)}")
        positive = ["batch_size", "eval_batch_size", "lr_step_epochs", "log_every_steps"]
        for key in positive:
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} = {getattr(self, key)} must be positive")
        non_negative = ["epochs", "seed", "num_workers", "eval_every_epochs", "checkpoint_every_steps"]
        for key in non_negative:
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} = {getattr(self, key)} must be >= 0")
        for key in ("max_steps", "train_frames", "eval_frames", "grad_clip_norm"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"{key} = {value} must be positive (or absent)")
        if self.epochs == 0 and self.source == "train":
            raise ConfigError("epochs = 0 only makes sense for an imported run (source = 'imported')")
        if not (self.lr > 0 and self.weight_decay >= 0 and 0 < self.lr_gamma <= 1):
            raise ConfigError(
                f"need lr > 0, weight_decay >= 0, 0 < lr_gamma <= 1; got lr={self.lr}, "
                f"weight_decay={self.weight_decay}, lr_gamma={self.lr_gamma}"
            )
        if not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas = {self.betas}: each must be in [0, 1)")
        if self.input_size is not None and min(self.input_size) < 32:
            raise ConfigError(f"input_size = {self.input_size}: both sides must be >= 32 pixels")
        if self.amp == "fp16" and self.device != "cuda":
            raise ConfigError("amp = 'fp16' needs device = 'cuda' (its grad scaler is CUDA-only; bf16 runs on both)")
        for key in ("suite", "name"):
            value = getattr(self, key)
            if not value or any(c in value for c in "/\\ \t\n") or value.startswith("."):
                raise ConfigError(f"{key} = {value!r} must be a non-empty name without spaces or slashes")
        for key in self.options:
            if not isinstance(key, str):
                raise ConfigError(f"options keys must be strings, got {key!r}")


_HINTS: dict[str, Any] = typing.get_type_hints(RunConfig)


class Role(enum.Enum):
    """What a RunConfig field is to a comparison of two runs."""

    IDENTITY = "identity"  # which run: the model compared (arch, backbone, options), its seed, its labels
    REGIME = "regime"  # how it was trained and evaluated: can change the numbers, must match for a comparison
    OPERATIONAL = "operational"  # how it was executed or shown: cannot change the numbers


IDENTITY, REGIME, OPERATIONAL = Role.IDENTITY, Role.REGIME, Role.OPERATIONAL

# Every RunConfig field, in declaration order, with its role and why. "Rounding" below means results that differ
# only in the last bits of floating-point sums, as they do between two CPU thread counts (not a regime either).
FIELD_ROLES: dict[str, Role] = {
    "suite": IDENTITY,  # a label: the run id's first part; the recipe is compared field by field, not by suite
    "name": IDENTITY,  # a label inside the suite
    "tables": IDENTITY,  # which paper tables the run feeds: a label
    "arch": IDENTITY,  # the model compared
    "backbone": IDENTITY,  # the model compared
    "options": IDENTITY,  # the model compared (same-architecture pairs also compare options: report.identity)
    "weights": REGIME,  # encoder initialisation (random, ImageNet, a file)
    "source": REGIME,  # trained here, or official weights imported and only evaluated
    "data": REGIME,  # the data source
    "data_path": REGIME,  # which file of the source; compared by its recorded content fingerprint, not the path
    "train_split": REGIME,  # the frames trained on
    "test_split": REGIME,  # the frames evaluated
    "train_variant": REGIME,  # the training set actually used (recorded at run start)
    "train_frames": REGIME,  # a cut of the training set
    "eval_frames": REGIME,  # a subset of the test frames; compared as the set of frames evaluated
    "input_size": REGIME,  # the network's input resolution
    "protocol": REGIME,  # crop, depth caps, reduction; compared with all its settings (metrics.json)
    "epochs": REGIME,  # training length; compared as the epochs actually trained
    "max_steps": REGIME,  # training length; compared as the optimiser steps actually taken
    "batch_size": REGIME,  # the optimiser's batch and BatchNorm's training statistics
    "lr": REGIME,  # optimiser
    "betas": REGIME,  # optimiser
    "weight_decay": REGIME,  # optimiser
    "amsgrad": REGIME,  # optimiser
    "lr_schedule": REGIME,  # schedule
    "lr_step_epochs": REGIME,  # schedule
    "lr_gamma": REGIME,  # schedule
    "grad_clip_norm": REGIME,  # changes every update it clips
    "amp": REGIME,  # forward precision (bf16/fp16 autocast)
    "seed": IDENTITY,  # which draw of the training noise: a seed counts once, the intervals span seeds
    # the kernels: CUDA runs cuDNN convolutions in TF32 by default (Ampere and newer), and only CUDA has AMP
    "device": REGIME,
    # cuDNN autotuning (off when deterministic) may pick FFT/Winograd convolutions of lower precision
    "deterministic": REGIME,
    # augmentations are drawn per item from (seed, epoch, index) (train.SeededItems) and the loaders have their
    # own generators, so the worker count changes no random draw and no order; 0 vs >= 1 workers only moves the
    # augmentation's CPU reductions (the contrast jitter's grey mean) between the main process's threads and
    # one worker thread: rounding (measured: 9 of 48 augmented frames differ by <= 1e-6; 1 vs 2 identical)
    "num_workers": OPERATIONAL,
    # eval mode: BatchNorm uses running statistics and every frame is predicted on its own (no padding, no
    # sampler): the batch shape only changes which kernel runs, rounding (~1e-7 m on RSIDE's outputs, 1 vs 4)
    "eval_batch_size": OPERATIONAL,
    # the test curve of history.csv (the report's convergence gate reads it) and, with checkpoint_select
    # "best", the epochs that compete; evaluation itself leaves the weights and the global RNG alone
    "eval_every_epochs": REGIME,
    # saving reads the RNG states without drawing; resuming from any step is bit-identical (tests/bench/test_train)
    "checkpoint_every_steps": OPERATIONAL,
    "checkpoint_select": REGIME,  # which weights are evaluated: the last epoch's, or the best on the test set
    "log_every_steps": OPERATIONAL,  # progress lines only (the loss is read back every step either way)
    "keep_checkpoints": OPERATIONAL,  # whether last.pt / best.pt stay on disk after the run
}


def _check_roles() -> None:
    names = [f.name for f in dataclasses.fields(RunConfig)]
    missing, extra = [n for n in names if n not in FIELD_ROLES], [n for n in FIELD_ROLES if n not in names]
    if missing or extra:
        raise TypeError(
            f"bench.config.FIELD_ROLES must give every RunConfig field one role: "
            f"no role for {missing or 'none'}, roles for non-fields {extra or 'none'}"
        )


_check_roles()
IDENTITY_FIELDS = tuple(k for k, r in FIELD_ROLES.items() if r is IDENTITY)
REGIME_CONFIG_FIELDS = tuple(k for k, r in FIELD_ROLES.items() if r is REGIME)  # what a comparison must match
# Fields that change how a run is executed or displayed but not its numbers: a resumed run may differ here.
OPERATIONAL_FIELDS = frozenset(k for k, r in FIELD_ROLES.items() if r is OPERATIONAL)


def config_diff(a: RunConfig, b: RunConfig, ignore: frozenset[str] = OPERATIONAL_FIELDS) -> list[tuple[str, Any, Any]]:
    """Fields where ``a`` and ``b`` differ, as (field, a's value, b's value), ignoring ``ignore``."""
    da, db = a.to_dict(), b.to_dict()
    return [(k, da[k], db[k]) for k in da if k not in ignore and da[k] != db[k]]


def _drop_retired(data: dict[str, Any], where: str) -> dict[str, Any]:
    """``data`` without the ``RETIRED_KEYS`` (old config.json files), each checked to hold its one old value."""
    for key, value in RETIRED_KEYS.items():
        if key in data and data[key] != value:
            raise ConfigError(
                f"{where}: {key} = {data[key]!r}; {key} is no longer a setting and could only be {value!r}"
            )
    return {k: v for k, v in data.items() if k not in RETIRED_KEYS}


def _with_hint(key: str) -> str:
    close = difflib.get_close_matches(key, list(_HINTS), n=1)
    return f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key)


def _to_plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _check_type(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a field's type hint; coerce list -> tuple and int -> float. Returns the value."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _check_type(name, value, non_none[0])
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(name, value, arg)
            except ConfigError:
                pass
        raise ConfigError(f"{name} = {value!r}: expected {_type_name(hint)}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name} = {value!r}: expected a list ({_type_name(hint)})")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_type(name, v, args[0]) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{name} = {value!r}: expected {len(args)} values ({_type_name(hint)})")
        return tuple(_check_type(name, v, a) for v, a in zip(value, args, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} = {value!r}: expected a table/dict")
        return dict(value)
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{name} = {value!r}: expected a number")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{name} = {value!r}: expected an integer")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name} = {value!r}: expected true or false")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name} = {value!r}: expected a string")
    raise TypeError(f"RunConfig field {name}: unsupported type hint {hint!r}")  # a bug in this module


def model_problem(arch: str, backbone: str, options: Any) -> str | None:
    """Why ``build_model(arch, backbone, **options)`` cannot work (unknown architecture, backbone or option
    names, with the valid ones listed), or None. The one check behind ``bench run``'s and ``bench speed``'s
    preflights."""
    from architectures import available_models, model_options

    models = available_models()
    if arch not in models:
        return f"unknown architecture {arch!r}; registered: {', '.join(sorted(models))}"
    if backbone not in models[arch]:
        return f"{arch} has no backbone {backbone!r}; available: {', '.join(models[arch])}"
    unknown = sorted(set(options) - set(model_options(arch)))
    if unknown:
        return f"{arch} has no option(s) {', '.join(unknown)}; valid: {', '.join(model_options(arch)) or 'none'}"
    return None
