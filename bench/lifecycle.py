"""One run's life, and the only code of ``bench run`` that writes a run directory ``runs/<run-id>/``.

``execute_run`` first takes the run's lock (``runs/.locks/<run-id>.lock``, ``bench.runlock``: one writer per
run, whoever launched it); a run another process holds is skipped and its holder named. Holding the lock, it
moves an old directory aside (``--rerun``), looks at the directory (``RunDir.state``) and does one of three
things: reuse a complete run whose settings are the planned ones and whose final.pt is intact (``reuse_run``),
evaluate weights written by ``bench import``, or train (from the start, or from checkpoints/last.pt with
``resume``) and evaluate. Whichever launcher runs the plan (inline, a local job, a SLURM job) calls
``execute_run``. A finished run keeps its evaluated weights (checkpoints/final.pt, whose sha256 metrics.json
records) and drops the training state unless ``keep_checkpoints`` is set. Format of the files: runs/README.md.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from torch import nn
from torch.utils.data import Dataset

from bench import datasets
from bench.checks import check_train_variant, is_imported, stored_diff
from bench.config import ConfigError, RunConfig, config_diff
from bench.datasets import DEFAULT_INPUT_SIZE
from bench.distributed import DistInfo, barrier, on_rank0
from bench.evaluate import EvalResult, prediction_frames, write_evaluation
from bench.io import torch_save_atomic
from bench.outcomes import RunOutcome, diff_message, headline_text, reuse_notice, reuse_refusal
from bench.progress import SuiteProgress
from bench.provenance import collect_provenance, model_options_change, resolved_model_options, utc_now
from bench.rundir import DEFAULT_RUNS_DIR, FINAL_WEIGHTS_KEY, RunDir, RunState
from bench.runlock import LockedBy, held_here
from bench.runmodel import build_run_model, depth_size, evaluate_run
from bench.runtime import resolve_device, say
from bench.train import CHECKPOINT_FORMAT, RunCheckpointError, TrainState, fit, load_checkpoint

__all__ = ["drop_training_state", "execute_run", "locked_message", "reuse_run", "save_final_weights"]


def execute_run(
    config: RunConfig,
    runs_dir: Path = DEFAULT_RUNS_DIR,
    resume: bool = False,
    info: DistInfo | None = None,
    stream: TextIO | None = None,
    suite: SuiteProgress | None = None,
    rerun: bool = False,
) -> RunOutcome:
    """Train (or, for an imported directory, only evaluate) one run and write its directory, holding its lock;
    a ``locked`` outcome, with nothing touched, while another process holds it. ``rerun`` moves an existing
    directory (not an imported one) aside first. ``suite`` (the runs after this one and the pace so far)
    gives the progress lines a suite ETA."""
    info = info or DistInfo()
    stream = stream if stream is not None else sys.stdout
    rd = RunDir.for_config(config, runs_dir)
    with _run_lock(rd, info) as holder:
        if holder is not None:
            say(info, None, stream, locked_message(config, rd, holder))
            return RunOutcome.locked(config, holder.describe())
        if rerun:
            on_rank0(info, lambda: _move_aside(rd, info, stream))
        state = rd.state()  # read under the lock: nobody else changes it now
        if state == RunState.COMPLETE:
            return reuse_run(config, rd, info, stream)
        if state == RunState.IMPORTED:
            return _evaluate_imported(config, rd, info, stream)
        if state == RunState.STARTED and not resume:
            raise ConfigError(f"{rd.root} exists (an interrupted run); pass --resume to continue it")
        return _train_and_evaluate_run(config, rd, resume and state == RunState.STARTED, info, stream, suite)


def locked_message(config: RunConfig, rd: RunDir, holder: LockedBy) -> str:
    """``skipping <run>: <dir> is being written by another runner (locked by host:pid since ...)``."""
    return f"skipping {config.run_id}: {rd.root} is being written by another runner ({holder.describe()})"


@contextmanager
def _run_lock(rd: RunDir, info: DistInfo) -> Iterator[LockedBy | None]:
    """Hold the run's lock for the block (rank 0 takes it; every rank learns the answer): yields None, or who
    holds it elsewhere. A lock this process already holds (a job that took it before writing launch.json) is
    kept as it is."""
    taken: list[Any] = []

    def take() -> LockedBy | None:
        if held_here(rd.lock_path):
            return None
        got = rd.try_lock()
        if isinstance(got, LockedBy):
            return got
        taken.append(got)
        return None

    holder = on_rank0(info, take)
    try:
        yield holder
    finally:
        for lock in taken:
            lock.release()


def reuse_run(config: RunConfig, rd: RunDir, info: DistInfo | None = None, stream: TextIO | None = None) -> RunOutcome:
    """The complete run in ``rd`` as the planned ``config``'s outcome; ConfigError if their settings differ or
    its checkpoints/final.pt is not the file metrics.json recorded (naming the way out)."""
    info = info or DistInfo()
    diff = stored_diff(rd, config)
    if diff:
        raise ConfigError(reuse_refusal(rd, diff))
    damaged = rd.final_weights_problem()
    if damaged:
        raise ConfigError(f"cannot reuse the finished run: {damaged}")
    outcome = RunOutcome.reused(rd, config)
    say(info, None, stream, reuse_notice(rd))
    _, provenance = rd.read_config()
    if changed := model_options_change(provenance, config.arch, config.options):
        say(
            info,
            None,
            stream,
            f"  note: its model was built with other options ({changed}); the report "
            "keeps it apart from runs built now",
        )
    return outcome


def _move_aside(rd: RunDir, info: DistInfo, stream: TextIO) -> None:
    """``--rerun``: move the run's existing directory (not an imported one) to runs/.old/, under its lock."""
    if not rd.root.exists():
        return
    try:
        if is_imported(rd):
            return
    except Exception:  # damaged config.json: nothing to keep using, move it aside as well
        pass
    old = rd.root
    say(info, None, stream, f"moved {old} aside to {rd.move_aside()} (--rerun)")


class _TestEvaluations:
    """A run's evaluations on its test set: after each epoch (``fit`` calls it) and the final one, which
    reuses the last epoch's when it evaluated the same weights."""

    def __init__(self, config: RunConfig, test_set: Dataset, device: str):
        self.config, self.test_set, self.device = config, test_set, device
        self.keep = prediction_frames(test_set.frame_indices)  # frames whose predictions are stored
        self.last_step: int | None = None
        self.last: EvalResult | None = None

    def __call__(self, model: nn.Module, state: TrainState) -> dict[str, float]:
        self.last, self.last_step = self.run(model), state.global_step
        return self.last.headline()

    def run(self, model: nn.Module) -> EvalResult:
        return evaluate_run(model, self.test_set, self.config, self.device, self.keep)

    def final(self, model: nn.Module, checkpoint: str, step: int) -> EvalResult:
        if checkpoint == "last" and self.last_step == step:
            return self.last
        return self.run(model)


# --- training ---------------------------------------------------------------------------------------------


def _train_and_evaluate_run(
    config: RunConfig, rd: RunDir, resume: bool, info: DistInfo, stream: TextIO, suite: SuiteProgress | None = None
) -> RunOutcome:
    """Train into ``rd`` (from checkpoints/last.pt with ``resume``), then evaluate the selected checkpoint."""
    t0 = time.perf_counter()
    device = resolve_device(config, info)
    model = build_run_model(config, config.weights)
    train_set, test_set = datasets.load_datasets(config, depth_size(config, model))
    check_train_variant(config, train_set.identity.get("train_variant"))
    config = config.replace(train_variant=train_set.identity.get("train_variant"))
    if resume:
        _continue_run(config, rd, device, info, stream)
    else:
        _start_run(config, rd, device, train_set, test_set, info, stream)
    barrier(info)
    tests = _TestEvaluations(config, test_set, device)
    state = fit(
        config,
        model,
        train_set,
        rd,
        tests,
        info=info,
        resume=resume,
        device=device,
        stream=stream,
        session_start=t0,
        suite=suite,
    )
    t_trained = time.perf_counter()
    checkpoint = _select_checkpoint(config, rd, model)
    done = on_rank0(info, lambda: _finish(config, rd, model, state, checkpoint, tests, t_trained))
    say(info, rd, stream, f"finished {config.run_id}: {_headline_text(done['metrics'])}")
    epochs = state.history[-1]["epoch"] if state.history else None
    return RunOutcome.trained(config, done["metrics"], done["wall"], epochs, state.global_step)


def _start_run(
    config: RunConfig,
    rd: RunDir,
    device: str,
    train_set: Dataset,
    test_set: Dataset,
    info: DistInfo,
    stream: TextIO,
) -> None:
    """config.json with the provenance of a new run (rank 0 alone writes: the others need no git or data
    fingerprints)."""
    if info.is_main:
        provenance = collect_provenance(
            device,
            config.seed,
            datasets.data_provenance(config, train_set, test_set),
            resolved_model_options(config.arch, config.options),
        )
        rd.root.mkdir(parents=True, exist_ok=True)
        rd.write_config(config, provenance)
    say(info, rd, stream, f"started {config.run_id} in {rd.root}")


def _continue_run(config: RunConfig, rd: RunDir, device: str, info: DistInfo, stream: TextIO) -> None:
    """Check that the started run in ``rd`` is the planned one, and record who continues it, where, with
    which code."""
    stored, provenance = rd.read_config()
    diff = config_diff(stored, config)
    if diff:
        raise ConfigError(diff_message(rd, diff))
    if changed := model_options_change(provenance, config.arch, config.options):
        raise ConfigError(
            f"{rd.root} was started with other model options than this code builds ({changed}); "
            "resuming would mix two models: pass --rerun to train it again from the start"
        )
    if info.is_main:
        session = collect_provenance(device, config.seed, None)
        resumes = [*provenance.get("resumes", []), {k: session[k] for k in ("created_utc", "git", "device", "code")}]
        rd.update_provenance(resumes=resumes)
        if changed := _code_changes(provenance.get("code"), session["code"]):
            say(
                info,
                rd,
                stream,
                f"note: {config.run_id} continues under other code than it started with ({changed}); the report "
                "counts it as trained by mixed code, not comparable unless `bench report --accept-code-drift`",
            )
    where = rd.last_checkpoint if rd.last_checkpoint.is_file() else "the start (no checkpoint was written)"
    say(info, rd, stream, f"resuming {config.run_id} from {where}")


def _code_changes(started: dict[str, Any] | None, now: dict[str, Any]) -> str:
    """The code fingerprint differences between a run's start and this session, as one phrase ('' if none or
    if the start recorded no fingerprint)."""
    from bench.codeprint import fingerprint_changes

    if not isinstance(started, dict) or started.get("digest") == now.get("digest"):
        return ""
    changes = fingerprint_changes(started, now)
    return ", ".join(changes[:5]) + (f" and {len(changes) - 5} more" if len(changes) > 5 else "")


def _select_checkpoint(config: RunConfig, rd: RunDir, model: nn.Module) -> str:
    """The checkpoint to evaluate: best.pt (loaded into ``model``) when the config selects it and it exists,
    else the last weights (already in ``model``)."""
    if config.checkpoint_select == "best" and rd.best_checkpoint.is_file():
        model.load_state_dict(load_checkpoint(rd.best_checkpoint)["model"])
        return "best"
    return "last"


def _finish(
    config: RunConfig,
    rd: RunDir,
    model: nn.Module,
    state: TrainState,
    checkpoint: str,
    tests: _TestEvaluations,
    t_trained: float,
) -> dict[str, Any]:
    """Rank 0, after training: evaluate, write final.pt and metrics, drop the training state, record the time."""
    result = tests.final(model, checkpoint, state.global_step)
    epoch = state.best_epoch if checkpoint == "best" else state.history[-1]["epoch"]
    save_final_weights(rd, config, model, checkpoint, epoch, state.global_step)
    meta = _metrics_meta(config, checkpoint, epoch, state.global_step, tests.test_set)
    meta[FINAL_WEIGHTS_KEY] = rd.final_weights_record()  # its sha256: a damaged copy is found before reuse
    metrics = write_evaluation(rd, result, meta)
    if not config.keep_checkpoints:
        drop_training_state(rd)
    wall = round(state.elapsed_s + time.perf_counter() - t_trained, 3)
    rd.update_provenance(wall_time_s=wall, sessions=state.sessions, finished_utc=utc_now())
    return {"metrics": metrics, "wall": wall}


def save_final_weights(
    rd: RunDir, config: RunConfig, model: nn.Module, checkpoint: str, epoch: float | None, steps: int
) -> None:
    """checkpoints/final.pt: the evaluated weights only (no optimiser state), for re-evaluation; atomic, and a
    DiskFullError (one line) when it does not fit."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "kind": "final",
        # fresh objects from JSON: pickle stores a string once per object, so a config unpickled in a job (its
        # strings not shared with the literals here) would otherwise give other bytes, and another sha256
        "config": json.loads(json.dumps(config.to_dict())),
        "model": model.state_dict(),
        "checkpoint": checkpoint,
        "epoch": epoch,
        "steps": steps,
    }
    torch_save_atomic(payload, rd.final_weights)


def drop_training_state(rd: RunDir) -> None:
    """Delete last.pt and best.pt (weights + optimiser state, only needed to continue training) once the run
    is complete and final.pt holds the evaluated weights."""
    if not (rd.metrics_path.is_file() and rd.final_weights.is_file()):
        return  # never drop the only copy of the weights
    for path in (rd.last_checkpoint, rd.best_checkpoint):
        path.unlink(missing_ok=True)


# --- imported weights -------------------------------------------------------------------------------------


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
        _, test_set = datasets.load_datasets(config, DEFAULT_INPUT_SIZE, train=False)
        say(info, rd, stream, f"evaluating imported weights in {rd.root} ({stored.weights})")
        prov = {
            **collect_provenance(
                device,
                config.seed,
                datasets.data_provenance(config, None, test_set),
                resolved_model_options(config.arch, config.options),
            ),
            "imported": provenance.get("imported"),
        }
        rd.write_config(config, prov)
        result = evaluate_run(model, test_set, config, device, prediction_frames(test_set.frame_indices))
        metrics = write_evaluation(rd, result, _metrics_meta(config, "imported", None, 0, test_set))
        wall = round(time.perf_counter() - t0, 3)
        rd.update_provenance(wall_time_s=wall, sessions=1, finished_utc=utc_now())
        return {"metrics": metrics, "wall": wall}

    done = on_rank0(info, work)
    return RunOutcome.evaluated(config, done["metrics"], done["wall"])


# --- metrics.json -----------------------------------------------------------------------------------------


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
    return f"{headline_text(metrics)} ({metrics.get('headline_reduction')} reduction, {metrics.get('n_frames')} frames)"
