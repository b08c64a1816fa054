"""Suites as data: ``bench/suites/<name>.toml`` -> a list of ``RunConfig`` (one per run and seed).

A suite file has a top-level ``description``, a ``[defaults]`` table of RunConfig fields, ``[[runs]]``
entries (each a ``name`` plus overrides; ``options`` tables are merged over the defaults' options),
``[[speed]]`` entries (Table 2 speed sweeps: ``name``, ``arch``, ``backbone``, ``options``, optional
``batch_sizes`` and ``modes``; run by ``bench.speed``, which takes them from here), an optional
``purpose`` (what its accuracy verdicts are about: ``pipeline`` checks that every stage runs,
``miniature`` trains to convergence on small synthetic data, ``paper`` judges the paper; default
``paper``) and optional ``seeds`` (training seeds every run is repeated with, e.g. ``[0, 1, 2]``;
``bench run --seeds`` overrides; default: each run's own ``seed``).
Anything else is an error naming the file and the key.
"""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import ConfigError, RunConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "PURPOSES",
    "SPEED_KEYS",
    "SUITES_DIR",
    "Suite",
    "available_suites",
    "load_suite",
    "matches",
    "select_runs",
    "with_overrides",
    "with_seeds",
]

SUITES_DIR = Path(__file__).resolve().parent / "suites"
SUITE_KEYS = ("description", "purpose", "seeds", "defaults", "runs", "speed")
PURPOSES = ("pipeline", "miniature", "paper")  # bench.report.claims judges accuracy claims by these
SPEED_KEYS = {
    "name": str,
    "arch": str,
    "backbone": str,
    "options": dict,
    "batch_sizes": list,
    "modes": list,
    "pairs": int,
}  # [[speed]] key -> its type
SPEED_MODES = ("inference", "autograd", "train")  # the values of a [[speed]] entry's modes (bench.speed.MODES)
SPEED_REQUIRED = ("name", "arch", "backbone")


@dataclass(frozen=True)
class Suite:
    """A loaded suite: its training runs (defaults applied) and its speed entries (validated, as written)."""

    name: str
    description: str
    path: Path
    defaults: RunConfig
    runs: tuple[RunConfig, ...]
    speed: tuple[dict[str, Any], ...]
    purpose: str = "paper"  # one of PURPOSES
    seeds: tuple[int, ...] | None = None  # suite-level seeds; None: each run's own seed

    def run_names(self) -> list[str]:
        return [r.name for r in self.runs]


def available_suites(directory: Path = SUITES_DIR) -> list[str]:
    """Names of the suites shipped in ``bench/suites``."""
    return sorted(p.stem for p in directory.glob("*.toml"))


def load_suite(name_or_path: str | Path) -> Suite:
    """Load a shipped suite by name (``smoke``) or any suite file by path (``my/suite.toml``)."""
    path = _resolve(name_or_path)
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    unknown = [k for k in doc if k not in SUITE_KEYS]
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {', '.join(map(repr, unknown))}; a suite has {', '.join(SUITE_KEYS)}"
        )
    name = path.stem
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{path}: description must be a string")
    defaults_table = doc.get("defaults", {})
    if not isinstance(defaults_table, dict):
        raise ConfigError(f"{path}: [defaults] must be a table")
    for key in ("suite", "name"):
        if key in defaults_table:
            raise ConfigError(
                f"{path}: [defaults] may not set {key!r} (the suite name is the file name; "
                f"each [[runs]] entry names itself)"
            )
    defaults = RunConfig.from_dict({**defaults_table, "suite": name}, where=f"{path} [defaults]")
    runs = tuple(_parse_runs(path, name, defaults_table, doc.get("runs", [])))
    speed = tuple(_parse_speed(path, doc.get("speed")))
    if not runs and not speed:
        raise ConfigError(f"{path}: no [[runs]] and no [[speed]] entries (a suite needs at least one)")
    purpose = doc.get("purpose", "paper")
    if purpose not in PURPOSES:
        raise ConfigError(f"{path}: purpose must be one of {', '.join(map(repr, PURPOSES))}, got {purpose!r}")
    return Suite(
        name=name,
        description=description,
        path=path,
        defaults=defaults,
        runs=runs,
        speed=speed,
        purpose=purpose,
        seeds=_parse_seeds(path, doc.get("seeds")),
    )


def _parse_seeds(path: Path, seeds: Any) -> tuple[int, ...] | None:
    if seeds is None:
        return None
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise ConfigError(
            f"{path}: seeds must be a non-empty list of distinct non-negative integers, "
            f"e.g. seeds = [0, 1, 2]; got {seeds!r}"
        )
    return tuple(seeds)


def select_runs(runs: list[RunConfig] | tuple[RunConfig, ...], only: str | None) -> list[RunConfig]:
    """Runs whose name matches any of the comma-separated shell patterns in ``only`` (all when None)."""
    runs = list(runs)
    if not only:
        return runs
    chosen = [r for r in runs if matches(r.name, only)]
    if not chosen:
        raise ConfigError(f"--only {only!r} matches no run; runs: {', '.join(r.name for r in runs) or 'none'}")
    return chosen


def matches(name: str, only: str) -> bool:
    """Whether ``name`` matches any of the comma-separated shell patterns in ``only`` (case-sensitive)."""
    return any(fnmatch.fnmatchcase(name, p.strip()) for p in only.split(",") if p.strip())


def with_seeds(runs: list[RunConfig], seeds: list[int] | None) -> list[RunConfig]:
    """One run per (run, seed); ``None`` keeps each run's own seed."""
    if not seeds:
        return list(runs)
    return [r.replace(seed=s) for r in runs for s in seeds]


def with_overrides(runs: list[RunConfig], **overrides: Any) -> list[RunConfig]:
    """Apply command-line overrides (only those not None) to every run; imported runs keep epochs = 0."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    out = []
    for r in runs:
        c = dict(changes)
        if r.source == "imported":
            c.pop("epochs", None)
            c.pop("max_steps", None)
        out.append(r.replace(**c) if c else r)
    return out


def _resolve(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.parent != Path("."):
        if not candidate.is_file():
            raise ConfigError(f"suite file not found: {candidate}")
        return candidate.resolve()
    path = SUITES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ConfigError(
            f"unknown suite {str(name_or_path)!r}; available: {', '.join(available_suites())} "
            f"(or give a path to a .toml file)"
        )
    return path


def _parse_runs(path: Path, suite: str, defaults: dict[str, Any], entries: Any) -> list[RunConfig]:
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: 'runs' must be an array of tables ([[runs]])")
    runs, seen = [], set()
    for i, entry in enumerate(entries, start=1):
        where = f"{path} [[runs]] #{i}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{where}: each run needs a name (string)")
        where = f"{path} [[runs]] {entry['name']!r}"
        if "suite" in entry:
            raise ConfigError(f"{where}: may not set 'suite' (it is the file name)")
        if entry["name"] in seen:
            raise ConfigError(f"{where}: duplicate run name")
        seen.add(entry["name"])
        merged = {**defaults, **entry, "suite": suite}
        options = entry.get("options", {})
        if not isinstance(options, dict):
            raise ConfigError(f"{where}: options must be a table, e.g. options = {{diagonal = false}}")
        merged["options"] = {**defaults.get("options", {}), **options}
        runs.append(RunConfig.from_dict(merged, where=where))
    return runs


def _parse_speed(path: Path, entries: Any) -> list[dict[str, Any]]:
    """The ``[[speed]]`` entries (Table 2 sweeps, run by ``bench.speed``): name, arch, backbone (strings), an
    optional options table, optional batch_sizes (distinct positive integers) and modes (distinct names of
    SPEED_MODES); names unique. The one parser of them: ``bench speed --suite`` uses it too."""
    if entries is None:
        return []
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{path}: 'speed' must be a non-empty array of tables ([[speed]])")
    out, seen = [], set()
    for i, entry in enumerate(entries, start=1):
        where = f"{path}: [[speed]] entry {i}"
        if isinstance(entry.get("name"), str):
            where += f" ({entry['name']!r})"
        unknown = sorted(set(entry) - set(SPEED_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(SPEED_KEYS)}")
        for key in SPEED_REQUIRED:
            if key not in entry:
                raise ConfigError(f"{where}: missing required key {key!r}")
        for key, kind in SPEED_KEYS.items():
            if key in entry and not isinstance(entry[key], kind):
                what = {dict: "a table", list: "a list", str: "a string", int: "an integer"}[kind]
                raise ConfigError(f"{where}: {key!r} must be {what}, got {type(entry[key]).__name__} {entry[key]!r}")
        _check_speed_lists(where, entry)
        if entry["name"] in seen:
            raise ConfigError(f"{where}: duplicate name {entry['name']!r}")
        seen.add(entry["name"])
        out.append(dict(entry))
    return out


def _check_speed_lists(where: str, entry: dict[str, Any]) -> None:
    """A [[speed]] entry's optional batch_sizes and modes (non-empty lists of distinct valid values) and pairs
    (timing sessions per model, >= 1)."""
    pairs = entry.get("pairs")
    if pairs is not None and (isinstance(pairs, bool) or pairs < 1):
        raise ConfigError(f"{where}: pairs must be a positive integer (timing sessions per model), got {pairs!r}")
    sizes = entry.get("batch_sizes")
    if sizes is not None and (
        not sizes
        or len(set(map(repr, sizes))) != len(sizes)
        or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in sizes)
    ):
        raise ConfigError(
            f"{where}: batch_sizes must be a non-empty list of distinct positive integers, "
            f"e.g. batch_sizes = [1, 2]; got {sizes!r}"
        )
    modes = entry.get("modes")
    if modes is not None and (
        not modes or len(set(map(repr, modes))) != len(modes) or not all(m in SPEED_MODES for m in modes)
    ):
        raise ConfigError(
            f"{where}: modes must be a non-empty list of distinct names from "
            f'{", ".join(SPEED_MODES)}, e.g. modes = ["inference"]; got {modes!r}'
        )
