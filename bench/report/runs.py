"""Read run directories (format: ``runs/README.md``) into typed records. The report reads nothing else.

A directory with ``metrics.json`` is an evaluated run (it must also hold ``per_image.csv``); a directory with
``speed_summary.csv`` is a speed sweep (``speed.csv`` holds its points). A directory can be both. Anything
else that looks like a run (a ``config.json`` without results) or is malformed becomes a ``RunProblem``: the
report lists it instead of failing or leaving an empty cell without explanation.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.metrics import STAT_COLUMNS
from bench.provenance import UTC_STAMP_SUFFIX

__all__ = [
    "ABLATION_SWITCHES",
    "EvalRun",
    "RunFormatError",
    "RunGroup",
    "RunProblem",
    "RunSet",
    "SPEED_COLUMNS",
    "SPEED_PAIR_COLUMNS",
    "SPEED_SUMMARY_COLUMNS",
    "SWEEP_DEFAULT_MODE",
    "SpeedSweep",
    "SweepSelection",
    "group_runs",
    "is_default_options",
    "load_eval_run",
    "load_runs",
    "load_speed_sweep",
    "select_sweeps",
    "switches_of",
]

METRICS_FIELDS = ("run_id", "suite", "name", "arch", "backbone", "options", "seed", "reductions", "n_frames")
# DRNet's Table 3 switches; a missing switch means the paper's default (on).
ABLATION_SWITCHES = ("diagonal", "aux_losses", "second_branch")
SPEED_COLUMNS = (
    "arch",
    "backbone",
    "options",
    "device_kind",
    "device_name",
    "dtype",
    "input",
    "batch",
    "status",
    "fps_median",
    "fps_iqr",
    "n_repeats",
    "time_median_ms",
    "peak_allocated_mib",
    "peak_reserved_mib",
    "nvml_used_mib",
    "rss_peak_mib",
)
SPEED_SUMMARY_COLUMNS = (
    "arch",
    "backbone",
    "options",
    "device_kind",
    "device_name",
    "dtype",
    "input",
    "fps_b1",
    "fps_max",
    "fps_max_batch",
    "max_batch_fit",
    "net_ram_mib",
    "ram_per_img_mib",
    "ram_per_img_r2",
    "ram_per_img_source",
)

SPEED_PAIR_COLUMNS = (  # speed_pairs.csv (bench.speed.records.SpeedPair): what the report reads of it
    "drnet",
    "rside",
    "backbone",
    "mode",
    "device_name",
    "speedup_b1",
    "mem_ratio_b1",
    "mem_ratio_slope",
    "mem_ratio_max_b",
)


class RunFormatError(ValueError):
    """A run directory does not follow runs/README.md; the message names the file and the field."""


@dataclass(frozen=True)
class RunProblem:
    """A run directory the report could not use, and why (shown in the report's missing/problems list)."""

    path: Path
    problem: str


@dataclass(frozen=True, eq=False)
class EvalRun:
    """One evaluated run: metrics.json, its per-frame sufficient statistics and where its files are."""

    path: Path
    metrics: Mapping[str, Any]  # metrics.json as written
    per_image: pd.DataFrame  # per_image.csv, one row per test frame
    config: Mapping[str, Any] = field(default_factory=dict)  # config.json {"config", "provenance"} or {}

    @property
    def run_id(self) -> str:
        return str(self.metrics["run_id"])

    @property
    def suite(self) -> str:
        return str(self.metrics["suite"])

    @property
    def name(self) -> str:
        return str(self.metrics["name"])

    @property
    def arch(self) -> str:
        return str(self.metrics["arch"])

    @property
    def backbone(self) -> str:
        return str(self.metrics["backbone"])

    @property
    def seed(self) -> int:
        return int(self.metrics["seed"])

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.metrics.get("options") or {})

    @property
    def predictions(self) -> Path | None:
        p = self.path / "predictions.h5"
        return p if p.is_file() else None

    @property
    def provenance(self) -> Mapping[str, Any]:
        """config.json's "provenance" object ({} without one)."""
        return self.config.get("provenance", {}) if isinstance(self.config, dict) else {}


@dataclass(frozen=True, eq=False)
class RunGroup:
    """The seeds of one suite entry (same suite and name), sorted by seed."""

    runs: tuple[EvalRun, ...]

    @property
    def first(self) -> EvalRun:
        return self.runs[0]

    @property
    def label(self) -> str:
        """Run id(s) for tables: the single id, or ``suite-name-s{0,1,2}``."""
        if len(self.runs) == 1:
            return self.first.run_id
        return f"{self.first.suite}-{self.first.name}-s{{{','.join(str(r.seed) for r in self.runs)}}}"


@dataclass(frozen=True, eq=False)
class SpeedSweep:
    """One speed sweep (``bench speed``): its summary rows (Table 2), its per-batch points and its pairs of
    timing sessions."""

    path: Path
    summary: pd.DataFrame  # speed_summary.csv
    points: pd.DataFrame | None  # speed.csv, None when absent
    config: Mapping[str, Any] = field(default_factory=dict)
    pairs: pd.DataFrame | None = None  # speed_pairs.csv, None when absent (a sweep written before sessions)

    @property
    def sweep_id(self) -> str:
        return self.path.name

    @property
    def suite(self) -> str | None:
        """The suite whose [[speed]] entries it swept (config.json), None for models named on the command line."""
        suite = (self.config.get("config") or {}).get("suite") if isinstance(self.config, dict) else None
        return str(suite) if suite else None

    @property
    def age_key(self) -> tuple[str, str, str]:
        """Sorts repeated sweeps oldest first: config.json's provenance.created_utc (ISO, UTC), then the UTC time
        at the end of the id, then the id; a missing part sorts first."""
        stamp = UTC_STAMP_SUFFIX.search(self.sweep_id)
        return str(self.provenance.get("created_utc") or ""), stamp.group(0) if stamp else "", self.sweep_id

    @property
    def provenance(self) -> Mapping[str, Any]:
        """config.json's "provenance" object ({} without one)."""
        return self.config.get("provenance", {}) if isinstance(self.config, dict) else {}

    @property
    def cpu_load(self) -> tuple[float, int | None]:
        """(highest 1-minute load average seen, CPU count) of a CPU sweep: at its start and end (config.json's
        environment) and after each point (speed.csv load_1min); (NaN, None) where nothing was recorded."""
        env = self.config.get("environment", {}) if isinstance(self.config, dict) else {}
        loads = [v[0] for v in (env.get("load_average"), env.get("load_average_end")) if v]
        if self.points is not None and "load_1min" in self.points:
            loads += [float(x) for x in self.points["load_1min"].dropna()]
        count = env.get("cpu_count")
        return (max(loads) if loads else math.nan), (int(count) if count else None)


@dataclass
class RunSet:
    """Everything found under a runs/ directory."""

    root: Path
    evals: list[EvalRun] = field(default_factory=list)
    sweeps: list[SpeedSweep] = field(default_factory=list)
    problems: list[RunProblem] = field(default_factory=list)

    @property
    def suites(self) -> list[str]:
        return sorted({r.suite for r in self.evals})

    def in_suite(self, suite: str | None) -> list[EvalRun]:
        return [r for r in self.evals if suite is None or r.suite == suite]


def load_runs(root: str | Path) -> RunSet:
    """Scan ``root``'s subdirectories (sorted; hidden ones skipped). Malformed runs become problems."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"runs directory {root} does not exist (run `bench run` first, or pass --runs)")
    found = RunSet(root=root)
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        is_eval, is_speed = (path / "metrics.json").is_file(), (path / "speed_summary.csv").is_file()
        try:
            if is_eval:
                found.evals.append(load_eval_run(path))
            if is_speed:
                found.sweeps.append(load_speed_sweep(path))
        except RunFormatError as err:
            found.problems.append(RunProblem(path, str(err)))
        if not is_eval and not is_speed:
            what = (
                "config.json but no metrics.json or speed_summary.csv (unfinished or still running?)"
                if (path / "config.json").is_file()
                else "no metrics.json, speed_summary.csv or config.json"
            )
            found.problems.append(RunProblem(path, f"{path}: {what}"))
    return found


def load_eval_run(path: str | Path) -> EvalRun:
    """Read metrics.json, per_image.csv (and config.json) of one run; RunFormatError if malformed."""
    path = Path(path)
    metrics = _read_json(path / "metrics.json")
    missing = [k for k in METRICS_FIELDS if k not in metrics]
    if missing:
        raise RunFormatError(
            f"{path / 'metrics.json'}: missing field(s) {', '.join(map(repr, missing))} "
            "(expected the metrics.json format of runs/README.md)"
        )
    if not isinstance(metrics["reductions"], Mapping) or not metrics["reductions"]:
        raise RunFormatError(
            f"{path / 'metrics.json'}: field 'reductions' must be a non-empty object {{reduction: {{metric: value}}}}"
        )
    per_image = _read_per_image(path / "per_image.csv", int(metrics["n_frames"]))
    config = _read_json(path / "config.json") if (path / "config.json").is_file() else {}
    return EvalRun(path=path, metrics=metrics, per_image=per_image, config=config)


def load_speed_sweep(path: str | Path) -> SpeedSweep:
    """Read speed_summary.csv (+ speed.csv, config.json when present) of one sweep directory."""
    path = Path(path)
    summary = read_csv_checked(path / "speed_summary.csv", SPEED_SUMMARY_COLUMNS)
    points = read_csv_checked(path / "speed.csv", SPEED_COLUMNS) if (path / "speed.csv").is_file() else None
    for df, file in ((summary, path / "speed_summary.csv"), (points, path / "speed.csv")):
        if df is not None:
            df["options"] = [_parse_options(v, file) for v in df["options"]]
    pairs_csv = path / "speed_pairs.csv"
    pairs = read_csv_checked(pairs_csv, SPEED_PAIR_COLUMNS) if pairs_csv.is_file() else None
    config = _read_json(path / "config.json") if (path / "config.json").is_file() else {}
    return SpeedSweep(path=path, summary=summary, points=points, config=config, pairs=pairs)


SWEEP_DEFAULT_MODE = "inference"  # sweeps written before modes existed measured under inference_mode


@dataclass
class SweepSelection:
    """The sweeps a report judges (each cut to the rows it is used for) and a note for every one, or part of
    one, it does not use."""

    used: list[SpeedSweep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def select_sweeps(sweeps: Sequence[SpeedSweep], suite: str | None) -> SweepSelection:
    """The speed sweeps the report of ``suite`` judges: one verdict per device, mode and model pair.

    Only sweeps of ``suite`` (the suite recorded in the sweep's config.json) are judged; with ``suite`` None
    (a runs directory without evaluated runs) every sweep may be. Among those, each setup, i.e. the device
    (kind and name), dtype, input size, memory layout, compilation, mode and backbone, is judged on the latest
    sweep (``SpeedSweep.age_key``) that measured it completely: every model the sweep's config asked for on
    that backbone and mode, over all its timing sessions. Repeated sweeps of one setup (the quickstart run
    twice, or the same CPU under other suite names or ``--out`` names) are neither pooled nor searched for their
    best ratio. Every sweep, or part of one, left out gets a note saying why."""
    selection = SweepSelection()
    candidates = []
    for sweep in sweeps:
        if suite is None or sweep.suite == suite:
            candidates.append(sweep)
            continue
        whose = f"suite {sweep.suite}" if sweep.suite else "not from this suite (models named on the command line)"
        selection.notes.append(
            f"speed sweep {sweep.sweep_id} not used: {whose}; this report judges the sweeps of suite {suite}"
        )
    latest: dict[tuple[str, ...], SpeedSweep] = {}
    incomplete: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    for sweep in sorted(candidates, key=lambda sw: sw.age_key):
        for unit, complete in _sweep_units(sweep).items():
            if complete:
                latest[(*_sweep_setup(sweep), *unit)] = sweep
            else:
                incomplete[id(sweep)].append(unit)
    for sweep in candidates:
        units = _sweep_units(sweep)
        used = [u for u in units if latest.get((*_sweep_setup(sweep), *u)) is sweep]
        selection.notes += _unused_notes(sweep, units, used, incomplete[id(sweep)], latest)
        if used:
            selection.used.append(_restricted(sweep, used) if len(used) < len(units) else sweep)
    return selection


def _sweep_setup(sweep: SpeedSweep) -> tuple[str, ...]:
    """What a sweep's rows share: device kind and name(s), dtype, input size, layout, compilation."""
    summary = sweep.summary

    def values(column: str, default: str = "False") -> str:
        return ",".join(sorted({str(v) for v in summary[column]})) if column in summary else default

    return tuple(values(c, "") for c in ("device_kind", "device_name", "dtype", "input")) + (
        values("channels_last"),
        values("compile"),
    )


def _modes(df: pd.DataFrame) -> pd.Series:
    return df["mode"].fillna(SWEEP_DEFAULT_MODE) if "mode" in df else pd.Series(SWEEP_DEFAULT_MODE, index=df.index)


def _sweep_units(sweep: SpeedSweep) -> dict[tuple[str, str, str], bool]:
    """(mode, backbone, models) -> whether the sweep measured it completely (see ``select_sweeps``). ``models``
    is "drnet/rside" where the sweep measured the pair the speed and memory claims compare (default options),
    else the architectures it measured there: a sweep of DRNet alone does not replace one of the pair."""
    summary = sweep.summary
    modes = _modes(summary)
    config = (sweep.config.get("config") or {}) if isinstance(sweep.config, dict) else {}
    units = {}
    for mode, backbone in dict.fromkeys(zip(modes, summary["backbone"].astype(str), strict=True)):
        rows = summary[(modes == mode) & (summary["backbone"].astype(str) == backbone)]
        units[(mode, backbone, _models(rows))] = _complete(rows, config, mode, backbone)
    return units


def _models(rows: pd.DataFrame) -> str:
    default = {str(a) for a, o in zip(rows["arch"], rows["options"], strict=True) if is_default_options(o)}
    if {"drnet", "rside"} <= default:
        return "drnet/rside"
    return ",".join(
        sorted(f"{a}{json.dumps(o, sort_keys=True)}" for a, o in zip(rows["arch"], rows["options"], strict=True))
    )


def _complete(rows: pd.DataFrame, config: Mapping[str, Any], mode: str, backbone: str) -> bool:
    """Every model the sweep's config asked for on ``backbone`` in ``mode`` has its row, over all its sessions
    (True where config.json or speed_summary.csv cannot tell)."""
    targets = config.get("targets")
    if not isinstance(targets, list) or "name" not in rows:
        return True
    unit = [
        t
        for t in targets
        if isinstance(t, Mapping)
        and str(t.get("backbone")) == backbone
        and mode in (t.get("modes") or config.get("modes") or (SWEEP_DEFAULT_MODE,))
    ]
    wanted = {str(t.get("name") or f"{t.get('arch')}-{t.get('backbone')}") for t in unit}
    if not wanted <= set(rows["name"].astype(str)):
        return False
    sessions = max((int(t.get("pairs") or config.get("pairs") or 1) for t in unit), default=1)  # the schedule's
    if "sessions" in rows:
        return bool((pd.to_numeric(rows["sessions"], errors="coerce") >= sessions).all())
    return True


def _unused_notes(
    sweep: SpeedSweep,
    units: Mapping[tuple[str, str, str], bool],
    used: Sequence[tuple[str, str, str]],
    incomplete: Sequence[tuple[str, str, str]],
    latest: Mapping[tuple[str, ...], SpeedSweep],
) -> list[str]:
    """Why a sweep (or each of its unused setups) is not used: measured again later, or incomplete."""
    setup = _sweep_setup(sweep)
    why = {}
    for unit in units:
        if unit in used:
            continue
        newer = latest.get((*setup, *unit))
        why[unit] = (
            f"{newer.sweep_id} measured the same setup later (a verdict rests on the latest complete sweep of "
            "each device, mode and model pair, never on the best of several)"
            if newer is not None and unit not in incomplete
            else "incomplete: not every model or timing session of its config was measured (interrupted?)"
        )
    if not why:
        return []
    if not used and len(set(why.values())) == 1:
        return [f"speed sweep {sweep.sweep_id} not used: {next(iter(why.values()))}"]
    return [f"speed sweep {sweep.sweep_id}: {backbone} {mode} not used: {w}" for (mode, backbone, _), w in why.items()]


def _restricted(sweep: SpeedSweep, units: Sequence[tuple[str, str, str]]) -> SpeedSweep:
    """``sweep`` with only the rows of the (mode, backbone, models) ``units`` in its summary, points and pairs."""
    kept = {(mode, backbone) for mode, backbone, _ in units}

    def keep(df: pd.DataFrame | None) -> pd.DataFrame | None:
        if df is None:
            return None
        mask = [(m, str(b)) in kept for m, b in zip(_modes(df), df["backbone"], strict=True)]
        return df[mask].reset_index(drop=True)

    return SpeedSweep(
        path=sweep.path,
        summary=keep(sweep.summary),
        points=keep(sweep.points),
        config=sweep.config,
        pairs=keep(sweep.pairs),
    )


def group_runs(runs: Iterable[EvalRun]) -> list[RunGroup]:
    """Group seeds of the same suite entry (suite, name) and model (bench.report.identity: seeds built with
    other resolved options form their own group); groups sorted by (suite, name), runs by seed."""
    from bench.report.identity import split_by_model  # it imports this module

    groups: dict[tuple[str, str], list[EvalRun]] = defaultdict(list)
    for run in runs:
        groups[(run.suite, run.name)].append(run)
    return [
        RunGroup(tuple(sorted(part, key=lambda r: r.seed)))
        for k in sorted(groups)
        for part in split_by_model(groups[k])
    ]


def switches_of(options: Mapping[str, Any]) -> tuple[bool, bool, bool]:
    """(diagonal, aux_losses, second_branch) of a DRNet run; unspecified switches are on (paper default)."""
    return tuple(bool(options.get(k, True)) for k in ABLATION_SWITCHES)  # type: ignore[return-value]


def is_default_options(options: Mapping[str, Any]) -> bool:
    """True when no Table 3 switch is turned off (the configuration of Tables 1 and 2)."""
    return all(switches_of(options))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise RunFormatError(f"{path}: file missing") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunFormatError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(obj, dict):
        raise RunFormatError(f"{path}: expected a JSON object at the top level, got {type(obj).__name__}")
    return obj


def read_csv_checked(path: Path, required: Iterable[str]) -> pd.DataFrame:
    """A run directory's CSV with its ``required`` columns; RunFormatError naming the file otherwise."""
    try:
        df = pd.read_csv(path, comment="#")
    except FileNotFoundError as err:
        raise RunFormatError(f"{path}: file missing") from err
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise RunFormatError(f"{path}: not a readable CSV ({err})") from err
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise RunFormatError(f"{path}: missing column(s) {', '.join(missing)} (runs/README.md)")
    return df


def _read_per_image(path: Path, n_frames: int) -> pd.DataFrame:
    df = read_csv_checked(path, ("frame", *STAT_COLUMNS))
    if len(df) != n_frames:
        raise RunFormatError(f"{path}: {len(df)} rows but metrics.json says n_frames = {n_frames}")
    if df["frame"].duplicated().any():
        dup = df.loc[df["frame"].duplicated(), "frame"].tolist()[:5]
        raise RunFormatError(f"{path}: frame(s) {dup} appear more than once; each test frame must appear once")
    # Error sums may be NaN (empty in the CSV): a non-positive prediction makes the log sums NaN, as in RSIDE's
    # code (bench.metrics). Pixel counts may not.
    counts = [c for c in STAT_COLUMNS if c == "n" or c[:2] in ("lt", "le")]
    if df[counts].isna().any().any():
        bad = [c for c in counts if df[c].isna().any()]
        raise RunFormatError(f"{path}: empty value(s) in count column(s) {', '.join(bad)}")
    if (df["n"] <= 0).any():
        raise RunFormatError(f"{path}: column 'n' (valid pixels per frame) must be positive")
    return df


def _parse_options(value: Any, path: Path) -> dict[str, Any]:
    if isinstance(value, float) and math.isnan(value):
        return {}
    try:
        obj = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError as err:
        raise RunFormatError(f"{path}: column 'options' must hold JSON objects, got {value!r}") from err
    if not isinstance(obj, dict):
        raise RunFormatError(f"{path}: column 'options' must hold JSON objects, got {value!r}")
    return obj
