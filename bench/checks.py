"""Everything ``bench run`` checks before the first run starts: models, run directories, devices, weights, data.

``preflight`` returns every problem as a message (empty list: good to go), so a plan is refused whole, with
every problem listed, before anything is written. The run directories' rule: a complete run is reused only
when its stored config (and data fingerprint) equals the planned one up to operational fields and its
checkpoints/final.pt is the file metrics.json recorded (sha256); a started one continues only with
``--resume`` (same check); ``--rerun`` moves them aside (``bench.lifecycle``). A run another process holds
(its lock, ``bench.runlock``) is no problem: it is skipped when its turn comes, and ``preflight_notes`` says
so, with a warning when the disk has less free space than the planned runs will write. Missing data is
explained by ``architectures.data.downloads`` (where to get it, where to put it).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from architectures.data.downloads import missing_data_message
from bench import datasets
from bench.config import ConfigError, RunConfig, config_diff, model_problem
from bench.datasets import DEFAULT_INPUT_SIZE
from bench.outcomes import diff_message, reuse_refusal
from bench.provenance import file_fingerprint
from bench.rundir import RunDir, RunState, disk_space_warning

__all__ = ["check_data", "check_train_variant", "is_imported", "preflight", "preflight_notes", "stored_diff"]


def preflight(
    configs: Sequence[RunConfig],
    runs_dir: Path,
    resume: bool,
    with_data: bool = True,
    rerun: bool = False,
    devices: bool = True,
) -> list[str]:
    """Every problem visible before the first run starts, as messages (empty list: good to go).

    ``rerun``: existing run directories (except imported ones) will be moved aside, so they are no problem.
    ``devices=False`` skips the check that this process sees the planned devices (jobs sent to other
    machines, e.g. ``--launcher slurm`` from a login node without a GPU).
    """
    data_problems = check_data(configs) if with_data else []  # first: it may generate the default data file
    states = _run_dir_states(configs, runs_dir)
    problems: list[str] = []
    problems += _check_models(configs)
    problems += _check_run_dirs(configs, states, runs_dir, resume, rerun)
    problems += _check_devices(configs) if devices else []
    problems += _check_weights(configs, states)
    return problems + data_problems


def _check_models(configs: Sequence[RunConfig]) -> list[str]:
    grouped: dict[str, list[str]] = {}
    for c in configs:
        problem = model_problem(c.arch, c.backbone, c.options)
        if problem is not None:
            grouped.setdefault(problem, []).append(c.run_id)
    return [_for_runs(runs, problem) for problem, runs in grouped.items()]


def _for_runs(run_ids: list[str], problem: str) -> str:
    """``run: problem`` for one run, ``problem (runs: a, b, c)`` for several."""
    return f"{run_ids[0]}: {problem}" if len(run_ids) == 1 else f"{problem} (runs: {', '.join(run_ids)})"


def _run_dir_states(configs: Sequence[RunConfig], runs_dir: Path) -> list[str | Exception]:
    """Each run's directory state (RunState), or the error reading a damaged config.json, read once."""
    states: list[str | Exception] = []
    for c in configs:
        try:
            states.append(RunDir.for_config(c, runs_dir).state())
        except Exception as exc:  # damaged config.json: _check_run_dirs reports it
            states.append(exc)
    return states


def _check_run_dirs(
    configs: Sequence[RunConfig], states: Sequence[str | Exception], runs_dir: Path, resume: bool, rerun: bool = False
) -> list[str]:
    out = []
    ids = [c.run_id for c in configs]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        out.append(f"run id {dup} is planned more than once")
    for c, state in zip(configs, states, strict=True):
        rd = RunDir.for_config(c, runs_dir)
        if rd.lock_holder() is not None:
            continue  # another runner is writing it: skipped, whatever its state (preflight_notes says so)
        if isinstance(state, Exception):
            if not rerun:
                out.append(f"{rd.root}: {state} (pass --rerun to move it aside and train again)")
            continue
        if state == RunState.IMPORTED:
            out += _check_import_matches(c, rd)
        elif state == RunState.ABSENT or (rerun and not is_imported(rd)):
            continue  # nothing there, or it is moved aside before training
        elif state == RunState.COMPLETE:
            diff = stored_diff(rd, c)
            damaged = None if diff else rd.final_weights_problem()
            if diff:
                out.append(reuse_refusal(rd, diff))
            elif damaged:
                out.append(f"cannot reuse the finished run: {damaged}")
        elif not resume:
            out.append(
                f"{rd.root} already exists (an interrupted run); pass --resume to continue it, or "
                f"--rerun to move it aside and start over (runs are never overwritten)"
            )
        else:
            diff = stored_diff(rd, c)
            if diff:
                out.append(diff_message(rd, diff, hint="pass --rerun to move it aside and start over"))
    return out


def preflight_notes(configs: Sequence[RunConfig], runs_dir: Path, parallel: int = 1) -> list[str]:
    """What the plan should know that does not stop it: each run another process holds (``note: ... will be
    skipped: locked by host:pid since ...``; never "pass --resume", which would make two writers), and a
    ``warning:`` when the filesystem of ``runs_dir`` has less free space than the runs will write, ``parallel``
    of them at once (``bench.rundir.disk_space_warning``)."""
    notes = []
    for c in configs:
        rd = RunDir.for_config(c, runs_dir)
        holder = rd.lock_holder()
        if holder is not None:
            notes.append(f"note: {rd.root} will be skipped: {holder.describe()} (another runner is writing it)")
    try:
        warning = disk_space_warning(configs, runs_dir, parallel=parallel)
    except Exception:  # a model that cannot be built is the model check's problem; this is only an estimate
        warning = None
    return notes + ([f"warning: {warning}"] if warning else [])


def stored_diff(rd: RunDir, config: RunConfig) -> list[tuple[str, Any, Any]]:
    """How the run stored in ``rd`` differs from the planned ``config``: config fields (operational ones
    ignored; ``train_variant`` is filled in at run start) and the data file's fingerprint."""
    stored, provenance = rd.read_config()
    wanted = config.replace(train_variant=stored.train_variant)
    if stored.source == "imported":  # as bench.lifecycle records an evaluated import
        wanted = wanted.replace(source="imported", weights=stored.weights, epochs=0, max_steps=None)
    return config_diff(stored, wanted) + _fingerprint_diff(provenance, config)


def _fingerprint_diff(provenance: dict[str, Any], config: RunConfig) -> list[tuple[str, Any, Any]]:
    """The data file(s) the run used vs the file(s) ``config`` names now: another file, or changed content.
    A file that no longer exists is not compared (the data check reports it, or it is generated first)."""
    stored = (provenance.get("data") or {}).get("fingerprint")
    if not isinstance(stored, dict) or not stored:
        return []
    entries = [stored] if "header_sha256" in stored else [v for v in stored.values() if isinstance(v, dict)]
    out: list[tuple[str, Any, Any]] = []
    now_file = _data_file(config)
    if now_file is not None and "header_sha256" in stored and str(now_file) != stored.get("path"):
        out.append(("data file", stored.get("path"), str(now_file)))
    for fp in entries:
        path = Path(fp.get("path", ""))
        if not path.is_file():
            continue
        now = file_fingerprint(path)
        if (now["bytes"], now["header_sha256"]) != (fp.get("bytes"), fp.get("header_sha256")):
            out.append((f"data fingerprint of {path}", _fp_text(fp), _fp_text(now)))
    return out


def _data_file(config: RunConfig) -> Path | None:
    """The single data file ``config`` reads (resolved), or None for a directory source."""
    if config.data == "synthetic" and config.data_path is None:
        from architectures.data import default_synthetic_path

        return default_synthetic_path().resolve()
    if config.data_path is None or config.data == "rside-csv":
        return None
    return Path(config.data_path).resolve()


def _fp_text(fp: dict[str, Any]) -> str:
    return f"{fp.get('bytes', 0):,} bytes, sha256 of the first MiB {str(fp.get('header_sha256', '?'))[:12]}"


def _check_import_matches(config: RunConfig, rd: RunDir) -> list[str]:
    stored, _ = rd.read_config()
    diff = [
        (k, getattr(stored, k), getattr(config, k))
        for k in ("arch", "backbone", "options")
        if getattr(stored, k) != getattr(config, k)
    ]
    return [diff_message(rd, diff, "imported weights do not fit the planned run")] if diff else []


def _check_devices(configs: Sequence[RunConfig]) -> list[str]:
    import torch

    if any(c.device == "cuda" for c in configs) and not torch.cuda.is_available():
        return [
            "device 'cuda' is planned but torch sees no CUDA device here; pass --device cpu "
            "(slow for the paper suite) or run on a GPU machine"
        ]
    return []


def _check_weights(configs: Sequence[RunConfig], states: Sequence[str | Exception]) -> list[str]:
    from architectures.backbones import backbone_spec, imagenet_cache_dir, missing_weights_message

    grouped: dict[str, list[str]] = {}
    for c, state in zip(configs, states, strict=True):
        if c.weights is None or state == RunState.IMPORTED:
            continue
        if c.weights == "imagenet":
            try:
                spec = backbone_spec(c.backbone)
            except KeyError:
                continue  # reported by _check_models
            cache = imagenet_cache_dir()
            if any((cache / name).is_file() for name in spec.weight_files):
                continue
            problem = missing_weights_message(c.backbone)  # names the `bench fetch` command that fills the cache
        elif Path(c.weights).is_file():
            continue
        else:
            problem = f"weights file {c.weights} not found"
        grouped.setdefault(problem, []).append(c.run_id)
    return [_for_runs(runs, problem) for problem, runs in grouped.items()]


def check_data(configs: Sequence[RunConfig], generate: bool = True) -> list[str]:
    """Open every distinct data source once (lazily: no frame is read) and explain what is missing.

    ``generate=False`` leaves the default synthetic file alone (it is generated on first use otherwise).
    """
    out = []
    for source, path, protocol in sorted({(c.data, c.data_path, c.protocol) for c in configs}, key=str):
        if source == "synthetic" and _generated_synthetic(path):
            if not generate:
                continue
            _generate_synthetic(path)
        group = [c for c in configs if (c.data, c.data_path, c.protocol) == (source, path, protocol)]
        try:
            train_set, _ = datasets.load_datasets(
                group[0].replace(train_frames=None, eval_frames=None), DEFAULT_INPUT_SIZE, train=True
            )
        except Exception as exc:
            out.append(missing_data_message(source, path, exc))
            continue
        actual = getattr(train_set, "identity", {}).get("train_variant")
        for problem in sorted({_variant_problem(c, actual) for c in group} - {None}):
            out.append(problem)
    return out


def check_train_variant(config: RunConfig, actual: str | None) -> None:
    """Raise ConfigError if the suite demands a training set (``train_variant``, a shell pattern such as
    ``rside-*``) and the data is another one (e.g. 795 labeled frames for the paper regime)."""
    problem = _variant_problem(config, actual)
    if problem:
        raise ConfigError(problem)


def _variant_problem(config: RunConfig, actual: str | None) -> str | None:
    if config.train_variant is None or fnmatch.fnmatchcase(actual or "", config.train_variant):
        return None
    return (
        f"{config.run_id}: suite {config.suite!r} trains on {config.train_variant!r}, but "
        f"{config.data}:{config.data_path} is training set {actual!r}; give the suite's data, run the "
        f"suite meant for this data, or pass --data to run on it anyway (the run records what it used)"
    )


def _generated_synthetic(path: str | None) -> bool:
    """True for the synthetic files the generator writes on first use: the default one, or one named
    ``synthetic-s{seed}-n{frames}[-HxW].h5``."""
    from architectures.data import settings_from_name

    return path is None or settings_from_name(path) is not None


def _generate_synthetic(path: str | None) -> None:
    """Write a generated synthetic file now (with progress) rather than silently inside a run."""
    from architectures.data import default_synthetic_path, synthetic_file

    target = default_synthetic_path() if path is None else Path(path)
    if target.exists():
        return
    print(f"generating the synthetic rooms at {target} (once)", flush=True)
    step = {"next": 0.25}

    def progress(done: int, total: int) -> None:
        if done >= step["next"] * total:
            print(f"  {done}/{total} frames", flush=True)
            step["next"] += 0.25

    synthetic_file(path, progress=progress)


def is_imported(rd: RunDir) -> bool:
    """True when ``rd`` holds weights written by ``bench import`` (evaluated, never trained or moved aside)."""
    return rd.config_path.is_file() and rd.read_config()[0].source == "imported"
