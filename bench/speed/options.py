"""``bench speed``'s command line as a checked ``SpeedConfig``: which models (a suite's ``[[speed]]`` entries,
or ``--arch`` x ``--backbone`` with JSON ``--option`` values), and the settings. Batch sizes, modes and
pairs given on the command line win over a suite entry's own. Every error names the option at fault
(``SpeedOptionError``) before anything is measured."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from architectures.data.transforms import RSIDE_CROP_HW
from bench.speed.records import (
    SpeedConfig,
    SpeedTarget,
    parse_batch_sizes,
    parse_input_size,
    parse_modes,
    speed_targets,
)
from bench.speed.run import preflight

__all__ = ["SpeedOptionError", "parse_model_options", "speed_config_from_options"]

T = TypeVar("T")


class SpeedOptionError(ValueError):
    """A ``bench speed`` option that cannot be used; ``option`` names it (None: the options together)."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option


def speed_config_from_options(
    suite: str | None = None,
    arch: str | None = None,
    backbone: str | None = None,
    options: Sequence[str] = (),
    input_size: str | None = None,
    batch_sizes: str | None = None,
    modes: str | None = None,
    pairs: int | None = None,
    in_process: bool = False,
    **settings: Any,
) -> SpeedConfig:
    """The sweep ``bench speed`` was asked for, checked as far as it can be before measuring (models,
    device, dtype). ``settings`` are SpeedConfig fields taken as given (device, dtype, warmup, seed, ...)."""
    targets = _targets(suite, arch, backbone, options)
    config = SpeedConfig(
        targets=tuple(  # what the command line says wins over a suite entry's own batch sizes, modes, pairs
            replace(
                t,
                batch_sizes=None if batch_sizes is not None else t.batch_sizes,
                modes=None if modes is not None else t.modes,
                pairs=None if pairs is not None else t.pairs,
            )
            for t in targets
        ),
        input_hw=RSIDE_CROP_HW if input_size is None else _parsed(parse_input_size, input_size, "--input"),
        batch_sizes=_parsed(parse_batch_sizes, batch_sizes, "--batch-sizes") if batch_sizes is not None else None,
        modes=_parsed(parse_modes, modes, "--mode") if modes is not None else ("inference",),
        isolate_models=False if in_process else None,
        pairs=pairs,
        suite=Path(suite).stem if suite else None,
        **settings,
    )
    try:
        preflight(config.resolved())  # models, device, dtype: checked again by run_sweep
    except (ValueError, RuntimeError) as e:  # torch.device("cuda:x") raises RuntimeError
        raise SpeedOptionError(str(e)) from None
    return config


def _targets(
    suite: str | None, arch: str | None, backbone: str | None, options: Sequence[str]
) -> tuple[SpeedTarget, ...]:
    """A suite's [[speed]] models, or every --arch x --backbone pair with the --option values."""
    if bool(suite) == bool(arch):
        raise SpeedOptionError("give either --suite or --arch with --backbone")
    if arch and not backbone:
        raise SpeedOptionError("--arch needs --backbone")
    if suite and (backbone or options):
        raise SpeedOptionError("--backbone and --option go with --arch, not --suite")
    if suite:
        return _parsed(speed_targets, suite, "--suite")  # SpeedSuiteError is a ValueError
    parsed = parse_model_options(options)
    return tuple(SpeedTarget(a.strip(), b.strip(), parsed) for a in arch.split(",") for b in backbone.split(","))


def parse_model_options(items: Sequence[str]) -> dict[str, Any]:
    """["fit=3", "diagonal=false", "name=x"] -> {"fit": 3, "diagonal": False, "name": "x"} (JSON, else a string)."""
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpeedOptionError(f"expected KEY=VALUE, got {item!r}", "--option")
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


def _parsed(parse: Callable[[str], T], text: str, option: str) -> T:
    try:
        return parse(text)
    except ValueError as e:
        raise SpeedOptionError(str(e), option) from None
