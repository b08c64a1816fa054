"""Suite runs end to end: check the plan, then for each RunConfig build data and model, train, evaluate and
write ``runs/<run-id>/`` (format: runs/README.md).

Existing run directories are never clobbered, and a result is never reused for other settings: a complete
run whose config (and data fingerprint) equals the planned one up to operational fields is reused, one that
differs is an error listing the differences (before anything starts); started runs continue from
checkpoints/last.pt only with ``resume`` (same check); ``rerun`` moves existing directories aside
(runs/.old/) and trains again; directories written by ``bench import`` are evaluated without training
(``source = "imported"`` in their config.json). A finished run keeps its evaluated weights
(checkpoints/final.pt) and drops the training state unless ``keep_checkpoints`` is set.
"""

from __future__ import annotations

import fnmatch
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn
from torch.utils.data import Dataset

from architectures.data.downloads import missing_data_message
from architectures.data.transforms import RSIDE_CROP_HW
from bench.config import ConfigError, RunConfig, config_diff, model_problem
from bench.distributed import DistInfo, barrier, on_rank0
from bench.evaluate import EvalResult, evaluate, headline_summary, prediction_frames, write_evaluation
from bench.progress import SuiteProgress
from bench.provenance import collect_provenance, file_fingerprint, model_options_change, resolved_model_options, utc_now
from bench.rundir import DEFAULT_RUNS_DIR, RunDir, RunState
from bench.runtime import resolve_device, say
from bench.train import RunCheckpointError, fit, load_checkpoint, seed_everything

__all__ = [
    "DEFAULT_INPUT_SIZE",
    "FrameSubset",
    "RunOutcome",
    "check_data",
    "check_train_variant",
    "drop_training_state",
    "execute_run",
    "format_duration",
    "format_size",
    "load_datasets",
    "move_aside",
    "preflight",
    "resolve_protocol",
    "run_plan",
    "runs_to_train",
    "save_final_weights",
    "stored_diff",
    "summary_table",
]

DEFAULT_INPUT_SIZE = RSIDE_CROP_HW  # the data layer's training crop (RSIDE's 304x228), rows x cols


@dataclass
class RunOutcome:
    """What happened to one planned run, for the summary table."""

    run_id: str
    status: str  # "trained" | "evaluated" (imported weights) | "reused" (complete, same config) | "failed"
    config: RunConfig
    metrics: dict[str, Any] | None = None
    wall_time_s: float | None = None
    epochs: float | None = None
    steps: int | None = None
    message: str = ""
    size_bytes: int | None = None  # the run directory on disk after the run


class FrameSubset(Dataset):
    """``positions`` of a dataset, keeping the data contract (``frame_indices``, ``identity``)."""

    def __init__(self, dataset: Dataset, positions: Sequence[int], how: str):
        self.dataset, self.positions = dataset, list(positions)
        self.frame_indices = [dataset.frame_indices[p] for p in self.positions]
        self.identity = {
            **getattr(dataset, "identity", {}),
            "frames": len(self.positions),
            "subset": {"frames": len(self.positions), "of": len(dataset), "how": how},
        }

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.positions[index]]


# --- data, model ------------------------------------------------------------------------------------------


def load_datasets(config: RunConfig, depth_size: tuple[int, int], train: bool = True) -> tuple[Dataset | None, Dataset]:
    """(training set or None, test set) per config, through ``architectures.data.build_dataset``."""
    from architectures.data import build_dataset

    train_set = None
    if train:
        train_set = build_dataset(
            config.data,
            config.data_path,
            config.train_split,
            train=True,
            protocol=config.protocol,
            depth_size=tuple(depth_size),
        )
        if config.train_frames is not None and config.train_frames < len(train_set):
            train_set = FrameSubset(train_set, range(config.train_frames), "first")
            variant = train_set.identity.get("train_variant")
            if variant:  # say that only part of the variant was used: "synthetic-96-first-48"
                train_set.identity["train_variant"] = f"{variant}-first-{config.train_frames}"
    test_set = build_dataset(config.data, config.data_path, config.test_split, train=False, protocol=config.protocol)
    if config.eval_frames is not None and config.eval_frames < len(test_set):
        positions = prediction_frames(range(len(test_set)), config.eval_frames)
        test_set = FrameSubset(test_set, positions, "evenly spaced")
    return train_set, test_set


def build_run_model(config: RunConfig, weights: str | None = None) -> nn.Module:
    """The config's network, initialised from the run's seed (so every process builds the same one)."""
    from architectures import build_model

    seed_everything(config.seed)
    return build_model(config.arch, config.backbone, weights=weights, **config.options)


def _depth_size(config: RunConfig, model: nn.Module) -> tuple[int, int]:
    h, w = config.input_size or DEFAULT_INPUT_SIZE
    stride = getattr(model, "output_stride", 1)
    return (h // stride, w // stride)


def _data_provenance(config: RunConfig, train_set: Dataset | None, test_set: Dataset) -> dict[str, Any]:
    """Source, paths, the datasets' identity and a fingerprint of the data file(s)' header."""
    test_identity = dict(getattr(test_set, "identity", {}))
    out: dict[str, Any] = {
        "source": config.data,
        "path": config.data_path,
        "test": test_identity,
        "train": dict(getattr(train_set, "identity", {})) if train_set is not None else None,
    }
    path = Path(test_identity.get("path") or config.data_path or "")
    if path.is_file():
        out["fingerprint"] = file_fingerprint(path)
    elif path.is_dir():
        out["fingerprint"] = {p.name: file_fingerprint(p) for p in sorted(path.glob("*.csv"))}
    return out


# --- checks before anything runs ---------------------------------------------------------------------------


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


def move_aside(configs: Sequence[RunConfig], runs_dir: Path) -> list[tuple[Path, Path]]:
    """``--rerun``: move each planned run's existing directory (not imported ones) to runs/.old/; (from, to)."""
    moved = []
    for c in configs:
        rd = RunDir.for_config(c, runs_dir)
        if not rd.root.exists():
            continue
        try:
            if _is_imported(rd):
                continue
        except Exception:  # damaged config.json: nothing to keep using, move it aside as well
            pass
        moved.append((rd.root, rd.move_aside()))
    return moved


def _is_imported(rd: RunDir) -> bool:
    return rd.config_path.is_file() and rd.read_config()[0].source == "imported"


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
        if isinstance(state, Exception):
            if not rerun:
                out.append(f"{rd.root}: {state} (pass --rerun to move it aside and train again)")
            continue
        if state == RunState.IMPORTED:
            out += _check_import_matches(c, rd)
        elif state == RunState.ABSENT or (rerun and not _is_imported(rd)):
            continue  # nothing there, or it is moved aside before training
        elif state == RunState.COMPLETE:
            diff = stored_diff(rd, c)
            if diff:
                out.append(
                    _diff_message(
                        rd,
                        diff,
                        "cannot reuse the finished run: the configuration differs",
                        "pass --rerun to move it aside and train again",
                    )
                )
        elif not resume:
            out.append(
                f"{rd.root} already exists (an interrupted run); pass --resume to continue it, or "
                f"--rerun to move it aside and start over (runs are never overwritten)"
            )
        else:
            diff = stored_diff(rd, c)
            if diff:
                out.append(_diff_message(rd, diff, hint="pass --rerun to move it aside and start over"))
    return out


def stored_diff(rd: RunDir, config: RunConfig) -> list[tuple[str, Any, Any]]:
    """How the run stored in ``rd`` differs from the planned ``config``: config fields (operational ones
    ignored; ``train_variant`` is filled in at run start) and the data file's fingerprint."""
    stored, provenance = rd.read_config()
    wanted = config.replace(train_variant=stored.train_variant)
    if stored.source == "imported":  # as _evaluate_imported records it
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
    return [_diff_message(rd, diff, "imported weights do not fit the planned run")] if diff else []


def _diff_message(rd: RunDir, diff: list[tuple[str, Any, Any]], what: str = "", hint: str = "") -> str:
    fields = "; ".join(f"{k}: {a!r} in the run directory, {b!r} now" for k, a, b in diff)
    what = what or "cannot resume: the configuration differs"
    hint = hint or "move the directory away"
    return f"{rd.root}: {what} ({fields}). Run with the original settings, or {hint}."


def _check_devices(configs: Sequence[RunConfig]) -> list[str]:
    if any(c.device == "cuda" for c in configs) and not torch.cuda.is_available():
        return [
            "device 'cuda' is planned but torch sees no CUDA device here; pass --device cpu "
            "(slow for the paper suite) or run on a GPU machine"
        ]
    return []


def _check_weights(configs: Sequence[RunConfig], states: Sequence[str | Exception]) -> list[str]:
    from architectures.backbones import backbone_spec, imagenet_cache_dir

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
            problem = (
                f"ImageNet weights for {c.backbone} are not in the local cache and are never downloaded: "
                f"place {spec.weight_files[0]} in {cache}/ (set TORCH_HOME for another cache), or pass "
                f"--weights none to train from random weights"
            )
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
        if source == "synthetic" and path is None:
            if not generate:
                continue
            _generate_default_synthetic()
        group = [c for c in configs if (c.data, c.data_path, c.protocol) == (source, path, protocol)]
        try:
            train_set, _ = load_datasets(
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


def _generate_default_synthetic() -> None:
    """Write the embedded default synthetic file now (with progress) rather than silently inside a run."""
    from architectures.data import default_synthetic_path, ensure_synthetic

    target = default_synthetic_path()
    if target.exists():
        return
    print(f"generating the default synthetic rooms at {target} (once)", flush=True)
    step = {"next": 0.25}

    def progress(done: int, total: int) -> None:
        if done >= step["next"] * total:
            print(f"  {done}/{total} frames", flush=True)
            step["next"] += 0.25

    ensure_synthetic(progress=progress)


# --- one run ----------------------------------------------------------------------------------------------


def execute_run(
    config: RunConfig,
    runs_dir: Path = DEFAULT_RUNS_DIR,
    resume: bool = False,
    info: DistInfo | None = None,
    stream: TextIO | None = None,
    suite: SuiteProgress | None = None,
) -> RunOutcome:
    """Train (or, for an imported directory, only evaluate) one run and write its directory. ``suite`` (the
    runs after this one and the pace so far) gives the progress lines a suite ETA."""
    info = info or DistInfo()
    stream = stream if stream is not None else sys.stdout
    rd = RunDir.for_config(config, runs_dir)
    state = rd.state()
    if state == RunState.COMPLETE:
        diff = stored_diff(rd, config)
        if diff:
            raise ConfigError(
                _diff_message(
                    rd,
                    diff,
                    "cannot reuse the finished run: the configuration differs",
                    "pass --rerun to move it aside and train again",
                )
            )
        metrics = rd.read_metrics()
        _, prov = rd.read_config()
        say(info, None, stream, f"reusing {rd.root}: complete, same configuration (--rerun trains it again)")
        if changed := model_options_change(prov, config.arch, config.options):
            say(
                info,
                None,
                stream,
                f"  note: its model was built with other options ({changed}); the report "
                "keeps it apart from runs built now",
            )
        return RunOutcome(
            config.run_id,
            "reused",
            config,
            metrics,
            prov.get("wall_time_s"),
            metrics.get("epoch"),
            metrics.get("steps"),
            "already complete",
        )
    if state == RunState.IMPORTED:
        return _evaluate_imported(config, rd, info, stream)
    if state == RunState.STARTED and not resume:
        raise ConfigError(f"{rd.root} exists (an interrupted run); pass --resume to continue it")
    return _train_and_evaluate(config, rd, resume and state == RunState.STARTED, info, stream, suite)


def _train_and_evaluate(
    config: RunConfig, rd: RunDir, resume: bool, info: DistInfo, stream: TextIO, suite: SuiteProgress | None = None
) -> RunOutcome:
    t0 = time.perf_counter()
    device = resolve_device(config, info)
    model = build_run_model(config, config.weights)
    train_set, test_set = load_datasets(config, _depth_size(config, model))
    check_train_variant(config, train_set.identity.get("train_variant"))
    config = config.replace(train_variant=train_set.identity.get("train_variant"))
    if resume:
        stored, provenance = rd.read_config()
        diff = config_diff(stored, config)
        if diff:
            raise ConfigError(_diff_message(rd, diff))
        if changed := model_options_change(provenance, config.arch, config.options):
            raise ConfigError(
                f"{rd.root} was started with other model options than this code builds ({changed}); "
                "resuming would mix two models: pass --rerun to train it again from the start"
            )
        if info.is_main:  # who continued the run, where, with which code
            session = collect_provenance(device, config.seed, None)
            resumes = [*provenance.get("resumes", []), {k: session[k] for k in ("created_utc", "git", "device")}]
            rd.update_provenance(resumes=resumes)
        where = rd.last_checkpoint if rd.last_checkpoint.is_file() else "the start (no checkpoint was written)"
        say(info, rd, stream, f"resuming {config.run_id} from {where}")
    else:
        if info.is_main:  # only rank 0 writes: the others need no provenance (git, data fingerprints)
            provenance = collect_provenance(
                device,
                config.seed,
                _data_provenance(config, train_set, test_set),
                resolved_model_options(config.arch, config.options),
            )
            rd.root.mkdir(parents=True, exist_ok=True)
            rd.write_config(config, provenance)
        say(info, rd, stream, f"started {config.run_id} in {rd.root}")
    barrier(info)

    keep = prediction_frames(test_set.frame_indices)
    last_eval: dict[str, Any] = {}

    def evaluate_epoch(net: nn.Module, state) -> dict[str, float]:
        result = _evaluate(net, test_set, config, device, keep)
        last_eval.update(step=state.global_step, result=result)
        return result.headline()

    state = fit(
        config,
        model,
        train_set,
        rd,
        evaluate_epoch,
        info=info,
        resume=resume,
        device=device,
        stream=stream,
        session_start=t0,
        suite=suite,
    )
    t_trained = time.perf_counter()
    checkpoint_name = "last"
    if config.checkpoint_select == "best" and rd.best_checkpoint.is_file():
        model.load_state_dict(load_checkpoint(rd.best_checkpoint)["model"])
        checkpoint_name = "best"

    def final() -> dict[str, Any]:
        reuse = checkpoint_name == "last" and last_eval.get("step") == state.global_step
        result = last_eval["result"] if reuse else _evaluate(model, test_set, config, device, keep)
        epoch = state.best_epoch if checkpoint_name == "best" else state.history[-1]["epoch"]
        save_final_weights(rd, config, model, checkpoint_name, epoch, state.global_step)
        metrics = write_evaluation(
            rd, result, _metrics_meta(config, checkpoint_name, epoch, state.global_step, test_set)
        )
        if not config.keep_checkpoints:
            drop_training_state(rd)
        wall = round(state.elapsed_s + time.perf_counter() - t_trained, 3)
        rd.update_provenance(wall_time_s=wall, sessions=state.sessions, finished_utc=utc_now())
        return {"metrics": metrics, "wall": wall}

    done = on_rank0(info, final)
    say(info, rd, stream, f"finished {config.run_id}: {_headline_text(done['metrics'])}")
    return RunOutcome(
        config.run_id,
        "trained",
        config,
        done["metrics"],
        done["wall"],
        state.history[-1]["epoch"] if state.history else None,
        state.global_step,
    )


def save_final_weights(
    rd: RunDir, config: RunConfig, model: nn.Module, checkpoint: str, epoch: float | None, steps: int
) -> None:
    """checkpoints/final.pt: the evaluated weights only (no optimiser state), for re-evaluation; atomic."""
    from bench.io import atomic_path
    from bench.train import CHECKPOINT_FORMAT

    payload = {
        "format": CHECKPOINT_FORMAT,
        "kind": "final",
        "config": config.to_dict(),
        "model": model.state_dict(),
        "checkpoint": checkpoint,
        "epoch": epoch,
        "steps": steps,
    }
    with atomic_path(rd.final_weights) as tmp:
        torch.save(payload, tmp)


def drop_training_state(rd: RunDir) -> None:
    """Delete last.pt and best.pt (weights + optimiser state, only needed to continue training) once the run
    is complete and final.pt holds the evaluated weights."""
    if not (rd.metrics_path.is_file() and rd.final_weights.is_file()):
        return  # never drop the only copy of the weights
    for path in (rd.last_checkpoint, rd.best_checkpoint):
        path.unlink(missing_ok=True)


def _evaluate_imported(config: RunConfig, rd: RunDir, info: DistInfo, stream: TextIO) -> RunOutcome:
    """Evaluate the weights `bench import` put in ``rd`` under this run's data and protocol."""
    t0 = time.perf_counter()
    device = resolve_device(config, info)
    stored, provenance = rd.read_config()
    config = config.replace(
        source="imported", weights=stored.weights, epochs=0, max_steps=None, train_variant=stored.train_variant
    )

    def work() -> dict[str, Any]:  # rank 0 alone evaluates, so only it loads the weights and the test set
        payload = load_checkpoint(rd.last_checkpoint)
        if payload.get("kind") != "imported":
            raise RunCheckpointError(
                f"{rd.last_checkpoint}: expected imported weights, found a {payload.get('kind')} checkpoint"
            )
        model = build_run_model(config, None)
        model.load_state_dict(payload["model"])
        model.to(device)
        _, test_set = load_datasets(config, DEFAULT_INPUT_SIZE, train=False)
        say(info, rd, stream, f"evaluating imported weights in {rd.root} ({stored.weights})")
        prov = {
            **collect_provenance(
                device,
                config.seed,
                _data_provenance(config, None, test_set),
                resolved_model_options(config.arch, config.options),
            ),
            "imported": provenance.get("imported"),
        }
        rd.write_config(config, prov)
        result = _evaluate(model, test_set, config, device, prediction_frames(test_set.frame_indices))
        metrics = write_evaluation(rd, result, _metrics_meta(config, "imported", None, 0, test_set))
        wall = round(time.perf_counter() - t0, 3)
        rd.update_provenance(wall_time_s=wall, sessions=1, finished_utc=utc_now())
        return {"metrics": metrics, "wall": wall}

    done = on_rank0(info, work)
    return RunOutcome(config.run_id, "evaluated", config, done["metrics"], done["wall"], None, 0)


def resolve_protocol(name: str) -> Any:
    """The registered evaluation protocol ``name`` (architectures.data.get_protocol)."""
    from architectures.data import get_protocol

    return get_protocol(name)


def run_geometry(config: RunConfig, test_set: Dataset) -> Any:
    """The input geometry the run's network was trained on (RSIDE's Scale(240) + 228x304 crop, resized to
    ``input_size``), for data built by ``architectures.data.build_dataset`` (its identity names its transform);
    None for datasets that declare no preprocessing (test doubles), whose images are fed as they are."""
    from architectures.data.geometry import train_geometry

    if "transform" not in getattr(test_set, "identity", {}):
        return None
    return train_geometry(config.input_size)


def _evaluate(model: nn.Module, test_set: Dataset, config: RunConfig, device: str, keep: Sequence[int]) -> EvalResult:
    geometry = run_geometry(config, test_set)
    return evaluate(
        model,
        test_set,
        resolve_protocol(config.protocol),
        device=device,
        batch_size=config.eval_batch_size,
        input_size=None if geometry else config.input_size,
        amp=config.amp,
        keep_frames=keep,
        num_workers=config.num_workers,
        geometry=geometry,
    )


def _metrics_meta(
    config: RunConfig, checkpoint: str, epoch: float | None, steps: int, test_set: Dataset
) -> dict[str, Any]:
    identity = getattr(test_set, "identity", {})
    return {
        "run_id": config.run_id,
        "suite": config.suite,
        "name": config.name,
        "arch": config.arch,
        "backbone": config.backbone,
        "options": dict(config.options),
        "seed": config.seed,
        "source": config.source,
        "tables": list(config.tables),
        "checkpoint": checkpoint,
        "epoch": epoch,
        "steps": steps,
        "data": {
            "source": config.data,
            "path": identity.get("path", config.data_path),
            "split": config.test_split,
            "train_variant": config.train_variant,
            "frames": len(test_set),
            "subset": identity.get("subset"),
        },
    }


def _headline_text(metrics: dict[str, Any]) -> str:
    h = headline_summary(metrics)
    return (
        f"rmse {h['rmse']:.4f} m, abs_rel {h['abs_rel']:.4f}, delta1 {h['delta1']:.4f} "
        f"({metrics.get('headline_reduction')} reduction, {metrics.get('n_frames')} frames)"
    )


# --- a whole plan -----------------------------------------------------------------------------------------


def run_plan(
    configs: Sequence[RunConfig],
    runs_dir: Path = DEFAULT_RUNS_DIR,
    resume: bool = False,
    info: DistInfo | None = None,
    stream: TextIO | None = None,
) -> list[RunOutcome]:
    """Execute every run in order; a failing run is recorded (and logged) and the next one starts."""
    info = info or DistInfo()
    stream = stream if stream is not None else sys.stdout
    outcomes = []
    pace = SuiteProgress()
    for i, config in enumerate(configs, start=1):
        say(info, None, stream, f"\n=== [{i}/{len(configs)}] {config.run_id} ===")
        pace.later = runs_to_train(configs[i:], runs_dir)
        try:
            outcome = execute_run(config, runs_dir, resume, info, stream, pace)
            outcome.size_bytes = RunDir.for_config(config, runs_dir).size_bytes() if info.is_main else None
            outcomes.append(outcome)
            if outcome.status == "trained":
                pace.record(outcome.steps, outcome.wall_time_s)
        except Exception as exc:  # keep going: the summary names every failure
            if info.enabled:
                raise  # other ranks may be waiting in a collective: stop them all
            rd = RunDir.for_config(config, runs_dir)
            message = f"{type(exc).__name__}: {exc}"
            say(info, rd if rd.root.is_dir() else None, stream, f"FAILED {config.run_id}: {message}")
            outcomes.append(RunOutcome(config.run_id, "failed", config, message=message))
    return outcomes


def runs_to_train(configs: Sequence[RunConfig], runs_dir: Path) -> list[RunConfig]:
    """The runs among ``configs`` that will train (for the suite ETA): not complete, not imported, readable."""

    def trains(config: RunConfig) -> bool:
        try:
            return RunDir.for_config(config, runs_dir).state() in (RunState.ABSENT, RunState.STARTED)
        except Exception:  # an unreadable directory fails when its turn comes; it costs no training time
            return False

    return [c for c in configs if trains(c)]


def summary_table(outcomes: Sequence[RunOutcome]) -> str:
    """A fixed-width table: run, status, epochs, steps, headline rmse / abs_rel / delta1, wall time, disk."""
    header = ["run", "status", "epochs", "steps", "rmse", "abs_rel", "delta1", "reduction", "wall", "disk"]
    rows = []
    for o in outcomes:
        h = headline_summary(o.metrics) if o.metrics else {}
        rows.append(
            [
                o.run_id,
                o.status,
                _num(o.epochs, "{:g}"),
                _num(o.steps, "{:d}"),
                _num(h.get("rmse"), "{:.4f}"),
                _num(h.get("abs_rel"), "{:.4f}"),
                _num(h.get("delta1"), "{:.4f}"),
                (o.metrics or {}).get("headline_reduction", "-"),
                format_duration(o.wall_time_s),
                format_size(o.size_bytes),
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    out = [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    failures = [o for o in outcomes if o.status == "failed"]
    if failures:
        out.append("")
        out += [f"failed: {o.run_id}: {o.message}" for o in failures]
    return "\n".join(out)


def _num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def format_size(n_bytes: int | None) -> str:
    """``412.3 MiB`` / ``1.2 GiB`` (binary units, as ``du -h``); ``-`` for None."""
    if n_bytes is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


def format_duration(seconds: float | None) -> str:
    """``12m05s`` / ``3h07m``; ``-`` for None."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
