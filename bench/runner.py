"""Suite runs end to end: check the plan, then for each RunConfig build data and model, train, evaluate and
write ``runs/<run-id>/`` (format: runs/README.md).

Existing run directories are never clobbered: without ``resume`` any existing run is an error (before
anything starts); with ``resume`` complete runs are skipped, started ones continue from checkpoints/last.pt
(refused if their config differs), and directories written by ``bench import`` are evaluated without
training (``source = "imported"`` in their config.json).
"""

from __future__ import annotations

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

from bench.config import ConfigError, RunConfig, config_diff
from bench.distributed import DistInfo, barrier, on_rank0
from bench.evaluate import EvalResult, evaluate, headline_summary, prediction_frames, write_evaluation
from bench.provenance import collect_provenance, file_fingerprint, utc_now
from bench.rundir import DEFAULT_RUNS_DIR, RunDir, RunState
from bench.train import CheckpointError, fit, load_checkpoint, resolve_device, say, seed_everything

__all__ = [
    "DEFAULT_INPUT_SIZE",
    "FrameSubset",
    "RunOutcome",
    "check_data",
    "execute_run",
    "format_duration",
    "load_datasets",
    "preflight",
    "resolve_protocol",
    "run_plan",
    "summary_table",
]

DEFAULT_INPUT_SIZE = (228, 304)  # the data layer's training crop (RSIDE's 304x228), rows x cols
NYU_LABELED_URL = "http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat"
NYU_LABELED_BYTES = 2_972_037_809


@dataclass
class RunOutcome:
    """What happened to one planned run, for the summary table."""

    run_id: str
    status: str  # "trained" | "evaluated" (imported weights) | "skipped" (already complete) | "failed"
    config: RunConfig
    metrics: dict[str, Any] | None = None
    wall_time_s: float | None = None
    epochs: float | None = None
    steps: int | None = None
    message: str = ""


class FrameSubset(Dataset):
    """``positions`` of a dataset, keeping the data contract (``frame_indices``, ``identity``)."""

    def __init__(self, dataset: Dataset, positions: Sequence[int], how: str):
        self.dataset, self.positions = dataset, list(positions)
        self.frame_indices = [dataset.frame_indices[p] for p in self.positions]
        self.identity = {**getattr(dataset, "identity", {}), "frames": len(self.positions),
                         "subset": {"frames": len(self.positions), "of": len(dataset), "how": how}}

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.positions[index]]


# --- data, model ------------------------------------------------------------------------------------------

def load_datasets(config: RunConfig, depth_size: tuple[int, int], train: bool = True) -> tuple[Dataset | None,
                                                                                               Dataset]:
    """(training set or None, test set) per config, through ``architectures.data.build_dataset``."""
    from architectures.data import build_dataset

    train_set = None
    if train:
        train_set = build_dataset(config.data, config.data_path, config.train_split, train=True,
                                  protocol=config.protocol, depth_size=tuple(depth_size))
        if config.train_frames is not None and config.train_frames < len(train_set):
            train_set = FrameSubset(train_set, range(config.train_frames), "first")
    test_set = build_dataset(config.data, config.data_path, config.test_split, train=False,
                             protocol=config.protocol)
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
    out: dict[str, Any] = {"source": config.data, "path": config.data_path, "test": test_identity,
                           "train": dict(getattr(train_set, "identity", {})) if train_set is not None else None}
    path = Path(test_identity.get("path") or config.data_path or "")
    if path.is_file():
        out["fingerprint"] = file_fingerprint(path)
    elif path.is_dir():
        out["fingerprint"] = {p.name: file_fingerprint(p) for p in sorted(path.glob("*.csv"))}
    return out


# --- checks before anything runs ---------------------------------------------------------------------------

def preflight(configs: Sequence[RunConfig], runs_dir: Path, resume: bool, with_data: bool = True,
              devices: bool = True) -> list[str]:
    """Every problem visible before the first run starts, as messages (empty list: good to go).

    ``devices=False`` skips the check that this process sees the planned devices (jobs sent to other
    machines, e.g. ``--launcher slurm`` from a login node without a GPU).
    """
    states = _run_dir_states(configs, runs_dir)
    problems: list[str] = []
    problems += _check_models(configs)
    problems += _check_run_dirs(configs, states, runs_dir, resume)
    problems += _check_devices(configs) if devices else []
    problems += _check_weights(configs, states)
    if with_data:
        problems += check_data(configs)
    return problems


def _check_models(configs: Sequence[RunConfig]) -> list[str]:
    from architectures import available_models, model_options

    models = available_models()
    grouped: dict[str, list[str]] = {}
    for c in configs:
        if c.arch not in models:
            problem = f"unknown architecture {c.arch!r}; registered: {', '.join(sorted(models))}"
        elif c.backbone not in models[c.arch]:
            problem = f"{c.arch} has no backbone {c.backbone!r}; available: {', '.join(models[c.arch])}"
        else:
            unknown = sorted(set(c.options) - set(model_options(c.arch)))
            if not unknown:
                continue
            problem = (f"{c.arch} has no option(s) {', '.join(unknown)}; valid: "
                       f"{', '.join(model_options(c.arch)) or 'none'}")
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


def _check_run_dirs(configs: Sequence[RunConfig], states: Sequence[str | Exception], runs_dir: Path,
                    resume: bool) -> list[str]:
    out = []
    ids = [c.run_id for c in configs]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        out.append(f"run id {dup} is planned more than once")
    for c, state in zip(configs, states, strict=True):
        rd = RunDir.for_config(c, runs_dir)
        if isinstance(state, Exception):
            out.append(f"{rd.root}: {state}")
            continue
        if state in (RunState.ABSENT, RunState.IMPORTED):
            if state == RunState.IMPORTED:
                out += _check_import_matches(c, rd)
            continue
        if not resume:
            out.append(f"{rd.root} already exists ({state}); pass --resume to continue or skip it, or move "
                       f"it away to start over (runs are never overwritten)")
            continue
        if state == RunState.STARTED:
            stored, _ = rd.read_config()
            diff = config_diff(stored, c.replace(train_variant=stored.train_variant))
            if diff:
                out.append(_diff_message(rd, diff))
    return out


def _check_import_matches(config: RunConfig, rd: RunDir) -> list[str]:
    stored, _ = rd.read_config()
    diff = [(k, getattr(stored, k), getattr(config, k)) for k in ("arch", "backbone", "options")
            if getattr(stored, k) != getattr(config, k)]
    return [_diff_message(rd, diff, "imported weights do not fit the planned run")] if diff else []


def _diff_message(rd: RunDir, diff: list[tuple[str, Any, Any]], what: str = "") -> str:
    fields = "; ".join(f"{k}: {a!r} in the run directory, {b!r} now" for k, a, b in diff)
    what = what or "cannot resume: the configuration differs"
    return f"{rd.root}: {what} ({fields}). Run with the original settings, or move the directory away."


def _check_devices(configs: Sequence[RunConfig]) -> list[str]:
    if any(c.device == "cuda" for c in configs) and not torch.cuda.is_available():
        return ["device 'cuda' is planned but torch sees no CUDA device here; pass --device cpu "
                "(slow for the paper suite) or run on a GPU machine"]
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
            problem = (f"ImageNet weights for {c.backbone} are not in the local cache and are never downloaded: "
                       f"place {spec.weight_files[0]} in {cache}/ (set TORCH_HOME for another cache), or pass "
                       f"--weights none to train from random weights")
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
        config = next(c for c in configs if (c.data, c.data_path, c.protocol) == (source, path, protocol))
        try:
            load_datasets(config.replace(train_frames=None, eval_frames=None), DEFAULT_INPUT_SIZE, train=True)
        except Exception as exc:
            out.append(missing_data_message(source, path, exc))
    return out


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


def missing_data_message(source: str, path: str | None, exc: BaseException) -> str:
    """What to provide, and how, when a data source cannot be opened."""
    msg = f"data {source}:{path or '(default)'} cannot be used: {exc}"
    if source == "nyu-labeled":
        where = path or "data/nyu_depth_v2_labeled.mat"
        msg += (f"\n  -> provide the official labeled NYU Depth v2 file ({NYU_LABELED_BYTES:,} bytes, MATLAB v7.3)"
                f" at {where}:\n       mkdir -p {Path(where).parent} && curl -L -o {where} {NYU_LABELED_URL}\n"
                f"     or pass --data nyu-labeled:/path/to/nyu_depth_v2_labeled.mat; "
                f"or run on the embedded synthetic rooms with --data synthetic")
    elif source == "rside-csv":
        msg += ("\n  -> give the directory of RSIDE's data (data/nyu2_train.csv, data/nyu2_test.csv and the "
                "PNGs they list) as --data rside-csv:/path/to/Revisiting_Single_Depth_Estimation; "
                "or run on the embedded synthetic rooms with --data synthetic")
    return msg


# --- one run ----------------------------------------------------------------------------------------------

def execute_run(config: RunConfig, runs_dir: Path = DEFAULT_RUNS_DIR, resume: bool = False,
                info: DistInfo | None = None, stream: TextIO | None = None) -> RunOutcome:
    """Train (or, for an imported directory, only evaluate) one run and write its directory."""
    info = info or DistInfo()
    stream = stream if stream is not None else sys.stdout
    rd = RunDir.for_config(config, runs_dir)
    state = rd.state()
    if state == RunState.COMPLETE:
        if not resume:
            raise ConfigError(f"{rd.root} is complete; pass --resume to skip it, or move it away")
        metrics = rd.read_metrics()
        _, prov = rd.read_config()
        return RunOutcome(config.run_id, "skipped", config, metrics, prov.get("wall_time_s"),
                          metrics.get("epoch"), metrics.get("steps"), "already complete")
    if state == RunState.IMPORTED:
        return _evaluate_imported(config, rd, info, stream)
    if state == RunState.STARTED and not resume:
        raise ConfigError(f"{rd.root} exists (an interrupted run); pass --resume to continue it")
    return _train_and_evaluate(config, rd, resume and state == RunState.STARTED, info, stream)


def _train_and_evaluate(config: RunConfig, rd: RunDir, resume: bool, info: DistInfo,
                        stream: TextIO) -> RunOutcome:
    t0 = time.perf_counter()
    device = resolve_device(config, info)
    model = build_run_model(config, config.weights)
    train_set, test_set = load_datasets(config, _depth_size(config, model))
    config = config.replace(train_variant=train_set.identity.get("train_variant"))
    if resume:
        stored, provenance = rd.read_config()
        diff = config_diff(stored, config)
        if diff:
            raise ConfigError(_diff_message(rd, diff))
        if info.is_main:  # who continued the run, where, with which code
            session = collect_provenance(device, config.seed, None)
            resumes = [*provenance.get("resumes", []), {k: session[k] for k in ("created_utc", "git", "device")}]
            rd.update_provenance(resumes=resumes)
        where = rd.last_checkpoint if rd.last_checkpoint.is_file() else "the start (no checkpoint was written)"
        say(info, rd, stream, f"resuming {config.run_id} from {where}")
    else:
        if info.is_main:  # only rank 0 writes: the others need no provenance (git, data fingerprints)
            provenance = collect_provenance(device, config.seed, _data_provenance(config, train_set, test_set))
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

    state = fit(config, model, train_set, rd, evaluate_epoch, info=info, resume=resume, device=device,
                stream=stream, session_start=t0)
    t_trained = time.perf_counter()
    checkpoint_name = "last"
    if config.checkpoint_select == "best" and rd.best_checkpoint.is_file():
        model.load_state_dict(load_checkpoint(rd.best_checkpoint)["model"])
        checkpoint_name = "best"

    def final() -> dict[str, Any]:
        reuse = checkpoint_name == "last" and last_eval.get("step") == state.global_step
        result = last_eval["result"] if reuse else _evaluate(model, test_set, config, device, keep)
        epoch = state.best_epoch if checkpoint_name == "best" else state.history[-1]["epoch"]
        metrics = write_evaluation(rd, result, _metrics_meta(config, checkpoint_name, epoch, state.global_step,
                                                             test_set))
        wall = round(state.elapsed_s + time.perf_counter() - t_trained, 3)
        rd.update_provenance(wall_time_s=wall, sessions=state.sessions, finished_utc=utc_now())
        return {"metrics": metrics, "wall": wall}

    done = on_rank0(info, final)
    say(info, rd, stream, f"finished {config.run_id}: {_headline_text(done['metrics'])}")
    return RunOutcome(config.run_id, "trained", config, done["metrics"], done["wall"],
                      state.history[-1]["epoch"] if state.history else None, state.global_step)


def _evaluate_imported(config: RunConfig, rd: RunDir, info: DistInfo, stream: TextIO) -> RunOutcome:
    """Evaluate the weights `bench import` put in ``rd`` under this run's data and protocol."""
    t0 = time.perf_counter()
    device = resolve_device(config, info)
    stored, provenance = rd.read_config()
    config = config.replace(source="imported", weights=stored.weights, epochs=0, max_steps=None,
                            train_variant=stored.train_variant)

    def work() -> dict[str, Any]:  # rank 0 alone evaluates, so only it loads the weights and the test set
        payload = load_checkpoint(rd.last_checkpoint)
        if payload.get("kind") != "imported":
            raise CheckpointError(f"{rd.last_checkpoint}: expected imported weights, found a "
                                  f"{payload.get('kind')} checkpoint")
        model = build_run_model(config, None)
        model.load_state_dict(payload["model"])
        model.to(device)
        _, test_set = load_datasets(config, DEFAULT_INPUT_SIZE, train=False)
        say(info, rd, stream, f"evaluating imported weights in {rd.root} ({stored.weights})")
        prov = {**collect_provenance(device, config.seed, _data_provenance(config, None, test_set)),
                "imported": provenance.get("imported")}
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


def _evaluate(model: nn.Module, test_set: Dataset, config: RunConfig, device: str,
              keep: Sequence[int]) -> EvalResult:
    return evaluate(model, test_set, resolve_protocol(config.protocol), device=device,
                    batch_size=config.eval_batch_size, input_size=config.input_size, amp=config.amp,
                    keep_frames=keep, num_workers=config.num_workers)


def _metrics_meta(config: RunConfig, checkpoint: str, epoch: float | None, steps: int,
                  test_set: Dataset) -> dict[str, Any]:
    identity = getattr(test_set, "identity", {})
    return {
        "run_id": config.run_id, "suite": config.suite, "name": config.name, "arch": config.arch,
        "backbone": config.backbone, "options": dict(config.options), "seed": config.seed,
        "source": config.source, "tables": list(config.tables), "checkpoint": checkpoint, "epoch": epoch,
        "steps": steps,
        "data": {"source": config.data, "path": identity.get("path", config.data_path),
                 "split": config.test_split, "train_variant": config.train_variant,
                 "frames": len(test_set), "subset": identity.get("subset")},
    }


def _headline_text(metrics: dict[str, Any]) -> str:
    h = headline_summary(metrics)
    return (f"rmse {h['rmse']:.4f} m, abs_rel {h['abs_rel']:.4f}, delta1 {h['delta1']:.4f} "
            f"({metrics.get('headline_reduction')} reduction, {metrics.get('n_frames')} frames)")


# --- a whole plan -----------------------------------------------------------------------------------------

def run_plan(configs: Sequence[RunConfig], runs_dir: Path = DEFAULT_RUNS_DIR, resume: bool = False,
             info: DistInfo | None = None, stream: TextIO | None = None) -> list[RunOutcome]:
    """Execute every run in order; a failing run is recorded (and logged) and the next one starts."""
    info = info or DistInfo()
    stream = stream if stream is not None else sys.stdout
    outcomes = []
    for i, config in enumerate(configs, start=1):
        say(info, None, stream, f"\n=== [{i}/{len(configs)}] {config.run_id} ===")
        try:
            outcomes.append(execute_run(config, runs_dir, resume, info, stream))
        except Exception as exc:  # keep going: the summary names every failure
            if info.enabled:
                raise  # other ranks may be waiting in a collective: stop them all
            rd = RunDir.for_config(config, runs_dir)
            message = f"{type(exc).__name__}: {exc}"
            say(info, rd if rd.root.is_dir() else None, stream, f"FAILED {config.run_id}: {message}")
            outcomes.append(RunOutcome(config.run_id, "failed", config, message=message))
    return outcomes


def summary_table(outcomes: Sequence[RunOutcome]) -> str:
    """A fixed-width table: run, status, epochs, steps, headline rmse / abs_rel / delta1, wall time."""
    header = ["run", "status", "epochs", "steps", "rmse", "abs_rel", "delta1", "reduction", "wall"]
    rows = []
    for o in outcomes:
        h = headline_summary(o.metrics) if o.metrics else {}
        rows.append([
            o.run_id, o.status,
            _num(o.epochs, "{:g}"), _num(o.steps, "{:d}"),
            _num(h.get("rmse"), "{:.4f}"), _num(h.get("abs_rel"), "{:.4f}"), _num(h.get("delta1"), "{:.4f}"),
            (o.metrics or {}).get("headline_reduction", "-"), format_duration(o.wall_time_s),
        ])
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


def format_duration(seconds: float | None) -> str:
    """``12m05s`` / ``3h07m``; ``-`` for None."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
