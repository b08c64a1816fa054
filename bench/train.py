"""The training loop: seeded, resumable at any step, AMP on CUDA, DDP-aware, with atomic checkpoints.

Determinism (what makes a killed-and-resumed run end with the same metrics as an uninterrupted one):

- The order of epoch ``e`` is DistributedSampler's permutation for (seed, e): a pure function, so a resumed
  run rebuilds it and skips the ``step_in_epoch`` batches already consumed.
- Item ``i`` of epoch ``e`` draws its augmentation from its own seed f(seed, e, i) (``SeededItems``), so
  the random transforms do not depend on worker count, worker scheduling or where a run was resumed. With
  RSIDE's transform the loader's workers only draw it (and read the frame); the batch is augmented where it
  goes to the device (``architectures.data.augment``), with the same samples.
- Checkpoints hold model, optimiser, scheduler, grad scaler, the python/numpy/torch(/CUDA) RNG states and
  the data position (epoch, step within epoch, running loss), written atomically (temp file + rename).

A non-finite loss (averaged over processes, checked before the backward pass) stops the run with
``NonFiniteLossError``; the weights are not updated and the last good checkpoint stays as it was.

The first SIGTERM or SIGINT (a scheduler's preemption or time limit, Ctrl-C) lets the current optimiser step
finish, writes checkpoints/last.pt with the position inside the epoch and raises ``RunInterrupted`` (a
``SystemExit`` with code ``EXIT_INTERRUPTED`` = 75: interrupted, resumable); a second one stops at once.
Resuming from that checkpoint ends with the same metrics as an uninterrupted run.
"""

from __future__ import annotations

import math
import os
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from architectures.data.augment import augment_batch, collate_frames, defer_augmentation
from architectures.losses import multiscale_loss
from bench.config import RunConfig
from bench.distributed import DistInfo, all_mean, barrier, on_rank0
from bench.io import torch_save_atomic
from bench.progress import Progress, SuiteProgress, planned_steps
from bench.rundir import RunDir
from bench.runtime import amp_autocast, loader_workers, resolve_device, say

__all__ = [
    "CHECKPOINT_FORMAT",
    "EXIT_INTERRUPTED",
    "GracefulStop",
    "NonFiniteLossError",
    "RunCheckpointError",
    "RunInterrupted",
    "SeededItems",
    "TrainLoop",
    "TrainState",
    "build_optimizer",
    "build_scheduler",
    "capture_rng_state",
    "end_epoch",
    "epoch_order",
    "evaluations_due",
    "fit",
    "graceful_stop",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
    "seed_everything",
    "stop_requested",
    "train_one_epoch",
    "training_items",
    "training_loader",
]

CHECKPOINT_FORMAT = 1  # bump when the checkpoint layout changes
EXIT_INTERRUPTED = 75  # exit code of a run stopped by SIGTERM/SIGINT with its checkpoint written: EX_TEMPFAIL
# (sysexits.h, "try again later"), apart from 0 done, 1 a run failed, 2 bad options or plan; resume it
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # a scheduler's preemption or time limit; Ctrl-C
REPEAT_WINDOW_S = 1.0  # the same signal again within this time is the same request (torchrun's agent forwards
# the SIGTERM/SIGINT it got to workers that got it too), not the second one that stops at once (seconds)
EPOCH_LINE_KEYS = ("epoch", "step", "train_loss", "lr", "test_rmse", "test_abs_rel", "test_delta1", "elapsed_s")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run stops and keeps its last good checkpoint."""


class RunCheckpointError(RuntimeError):
    """A run directory's checkpoint (ours: training state or imported weights) is missing, unreadable or of
    the wrong kind. Not ``architectures.rside.CheckpointError``, which is about official RSIDE release files."""


class RunInterrupted(SystemExit):
    """Training stopped on SIGTERM/SIGINT after finishing its current step; checkpoints/last.pt holds every
    finished step, so the run resumes exactly. A ``SystemExit`` with code ``EXIT_INTERRUPTED``, so that
    handlers that go on with the next run on ``Exception`` let it through, and a caller that does not catch
    it still exits 75 (the message was already printed and logged by ``fit``)."""

    def __init__(self, signal_name: str, run_id: str, global_step: int, where: str, checkpoint: Path | None):
        super().__init__(EXIT_INTERRUPTED)
        self.signal_name, self.run_id, self.global_step, self.checkpoint = signal_name, run_id, global_step, checkpoint
        self.where = where
        kept = (
            f"{checkpoint} holds every finished step; continue with `bench run --resume`"
            if checkpoint is not None
            else "no run directory, nothing saved"
        )
        self.message = (
            f"{run_id}: interrupted by {signal_name} after global step {global_step} ({where}); {kept} "
            f"(exit code {EXIT_INTERRUPTED}: interrupted, resumable)"
        )

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # picklable (multiprocessing, job results) despite its own constructor
        return type(self), (self.signal_name, self.run_id, self.global_step, self.where, self.checkpoint)


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint. ``epoch`` counts completed epochs."""

    epoch: int = 0
    step_in_epoch: int = 0  # batches of the current epoch already trained on
    global_step: int = 0  # optimiser steps in all
    loss_sum: float = 0.0  # running sum / count of the current epoch's losses (for history.csv)
    loss_count: int = 0
    finished: bool = False  # training is over (epochs done or max_steps reached); evaluation may remain
    elapsed_s: float = 0.0  # training + per-epoch evaluation time up to this checkpoint, all sessions
    sessions: int = 0  # how many processes worked on this run (1 + number of resumes)
    best_rmse: float | None = None
    best_epoch: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


# --- seeding and RNG state ------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state() -> dict[str, Any]:
    """The global RNG states as checkpoint-safe values (tensors, ints, lists: loadable with weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for (run seed, epoch, item index) (SplitMix64 finaliser)."""
    z = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return (z ^ (z >> 31)) % 2**63


class SeededItems(Dataset):
    """A training set whose item ``i`` in epoch ``epoch`` is augmented from ``item_seed(seed, epoch, i)``.

    Set ``epoch`` before building each epoch's DataLoader (workers are not persistent, so they copy it).

    Only torch's default CPU generator is seeded for the item (and put back after it): the training transforms
    draw from it alone (``architectures.data.transforms``; tested: they leave python's and numpy's generators
    untouched), so the item's draws are those ``torch.manual_seed(item_seed)`` gives. ``torch.manual_seed``
    itself costs ~70 us an item, most of it the lazy seeding of accelerator generators a worker never uses
    (and in a process that does use one, it reseeded that accelerator's generator item by item); python and
    numpy seeding and state saving cost another ~60 us (docs/loader-speed.md).
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        generator = torch.default_generator
        state = generator.get_state()
        generator.manual_seed(item_seed(self.seed, self.epoch, int(index)))
        try:
            return self.dataset[index]
        finally:
            generator.set_state(state)


def epoch_order(n_items: int, seed: int, epoch: int, info: DistInfo) -> list[int]:
    """This process's item order for ``epoch``: DistributedSampler's (seed, epoch) shuffle, padded evenly."""
    sampler = DistributedSampler(
        range(n_items), num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed, drop_last=False
    )
    sampler.set_epoch(epoch)
    return list(sampler)


def _worker_init(worker_id: int) -> None:
    """Seed each worker's numpy/python from torch's per-worker seed (itself from the loader's generator), and
    leave SIGTERM/SIGINT to the main process: sent to the whole process group (SLURM, a terminal's Ctrl-C)
    they would kill the worker (torch installs a dying SIGTERM handler in it), and torch would then fail the
    main process while it finishes its step and saves. The main process stops its workers itself."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


# --- optimiser, schedule, checkpoints ---------------------------------------------------------------------


def build_optimizer(config: RunConfig, params) -> torch.optim.Optimizer:
    """Adam with lr, betas, weight decay and ``amsgrad`` from the config: the DRNet paper uses amsgrad, RSIDE's
    train.py plain Adam (amsgrad=False); a suite picks one for both models of a comparison."""
    return torch.optim.Adam(
        params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, amsgrad=config.amsgrad
    )


def build_scheduler(config: RunConfig, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.StepLR:
    """Epoch-wise step decay: lr * lr_gamma^(epoch // lr_step_epochs) (RSIDE: 1e-4 * 0.1^(epoch // 5))."""
    gamma = config.lr_gamma if config.lr_schedule == "step" else 1.0
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step_epochs, gamma=gamma)


def save_checkpoint(
    path: Path, config: RunConfig, model: nn.Module, optimizer, scheduler, scaler, state: TrainState
) -> None:
    """Everything needed to continue exactly where training stands, written atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "kind": "train",
        "config": config.to_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": capture_rng_state(),
        "state": asdict(state),
    }
    torch_save_atomic(payload, path)  # DiskFullError (one line: file, bytes needed, bytes free) if it cannot fit


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read one of our checkpoints (safe loader: tensors and plain containers only)."""
    if not path.is_file():
        raise RunCheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunCheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT or "model" not in payload:
        raise RunCheckpointError(f"{path} is not a drnet-bench checkpoint of format {CHECKPOINT_FORMAT}")
    return payload


# --- stopping on SIGTERM / SIGINT ------------------------------------------------------------------------


class GracefulStop:
    """Turns the first SIGTERM/SIGINT into a request that the training loop honours at the end of its current
    step; a second one (``REPEAT_WINDOW_S`` or more later) restores the previous handlers and raises
    KeyboardInterrupt at once. A signal whose handler was SIG_IGN (a background job's SIGINT) stays ignored.

    Only SIGTERM and SIGINT are taken: submitit's USR2 handler (preemption / time limit: checkpoint and
    requeue, ``bench.launch``) stays in place. The training loader's workers ignore both (``_worker_init``);
    other processes forked meanwhile inherit this handler and only note the first signal.
    """

    def __init__(self) -> None:
        self.signum: int | None = None  # the first signal received, if any
        self._at = 0.0
        self._pid = os.getpid()
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> str | None:
        """The name of the signal that asked to stop ("SIGTERM"), or None."""
        return signal.Signals(self.signum).name if self.signum is not None else None

    def install(self, signals: Sequence[int] = STOP_SIGNALS) -> bool:
        """Take ``signals`` over (main thread only: signal handlers cannot be set elsewhere); False if not."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for sig in signals:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                self._previous[sig] = signal.signal(sig, self._handle)
        return True

    def restore(self) -> None:
        """Put back the handlers ``install`` replaced."""
        while self._previous:
            sig, handler = self._previous.popitem()
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    def _handle(self, signum: int, frame: Any) -> None:
        name, now, main = signal.Signals(signum).name, time.monotonic(), os.getpid() == self._pid
        if self.signum is None:
            self.signum, self._at = signum, now
            if main:  # not print(): the handler may run inside a write to the same stream
                os.write(
                    2,
                    f"\n{name}: finishing the current step, then saving checkpoints/last.pt "
                    f"({name} again stops at once)\n".encode(),
                )
            return
        if now - self._at < REPEAT_WINDOW_S:
            return  # the same request delivered twice
        if main:
            self.restore()
        raise KeyboardInterrupt(f"second {name}: stopped at once")


_active_stops: list[GracefulStop] = []


@contextmanager
def graceful_stop(signals: Sequence[int] = STOP_SIGNALS) -> Iterator[GracefulStop]:
    """Install a ``GracefulStop`` for the block (where signals can be handled) and restore the handlers after."""
    stop = GracefulStop()
    stop.install(signals)
    _active_stops.append(stop)
    try:
        yield stop
    finally:
        _active_stops.remove(stop)
        stop.restore()


def stop_requested() -> str | None:
    """The signal ("SIGTERM", "SIGINT") that asked the running ``fit`` of this process to stop, or None."""
    return next((s.requested for s in reversed(_active_stops) if s.requested), None)


# --- the loop ---------------------------------------------------------------------------------------------

EvalFn = Callable[[nn.Module, TrainState], dict[str, float]]


@dataclass
class TrainLoop:
    """What one training session works with, set up once by ``fit`` and shared by its epochs."""

    config: RunConfig
    model: nn.Module  # the bare model: checkpoints and evaluation
    net: nn.Module  # what trains: ``model``, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.StepLR
    scaler: torch.amp.GradScaler
    device: torch.device
    info: DistInfo
    autocast: AbstractContextManager  # amp_autocast(config.amp, device)
    loss_fn: Callable[..., torch.Tensor]
    run_dir: RunDir | None  # None: no checkpoints, history or log
    stream: TextIO | None  # progress and epoch lines (None: stdout)
    items: SeededItems  # the training set, augmented per (seed, epoch, item) (``training_items``)
    per_rank_batch: int
    steps_per_epoch: int
    session_start: float  # time.perf_counter() when this session started
    elapsed_before: float  # seconds spent on the run in earlier sessions
    progress: Progress  # the session's progress lines and ETAs
    stop: GracefulStop = field(default_factory=GracefulStop)  # SIGTERM/SIGINT seen (``fit`` installs it)

    def elapsed_s(self) -> float:
        """Seconds spent on the run so far, all sessions."""
        return self.elapsed_before + time.perf_counter() - self.session_start

    def checkpoint(self, state: TrainState, path: Path | None = None) -> None:
        """Record the elapsed time in ``state`` and (rank 0, with a run directory) save to ``path`` (last.pt)."""
        state.elapsed_s = self.elapsed_s()
        if self.info.is_main and self.run_dir is not None:
            save_checkpoint(
                path or self.run_dir.last_checkpoint,
                self.config,
                self.model,
                self.optimizer,
                self.scheduler,
                self.scaler,
                state,
            )


def fit(
    config: RunConfig,
    model: nn.Module,
    train_set: Dataset,
    run_dir: RunDir | None,
    evaluate_epoch: EvalFn | None = None,
    info: DistInfo | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    stream: TextIO | None = None,
    loss_fn: Callable[..., torch.Tensor] = multiscale_loss,
    session_start: float | None = None,
    suite: SuiteProgress | None = None,
) -> TrainState:
    """Train ``model`` on ``train_set`` per ``config``; checkpoints and history go to ``run_dir`` (rank 0).

    ``evaluate_epoch(model, state)`` (rank 0 only) returns headline test metrics after an epoch (needs
    "rmse" when ``checkpoint_select == "best"``). ``resume`` continues from ``run_dir``'s last.pt.
    Returns the final state; the trained weights are in ``model`` and in checkpoints/last.pt.
    ``session_start`` (time.perf_counter) makes ``elapsed_s`` include the caller's setup time; ``suite``
    (the runs after this one and the pace so far) adds a suite ETA to the progress lines.
    The first SIGTERM/SIGINT during training raises ``RunInterrupted`` once last.pt holds the finished steps.
    """
    info = info or DistInfo()
    device = torch.device(device or resolve_device(config, info))
    _configure_backends(config, device)
    model.to(device)
    optim = _optimisation(config, model, device)
    state = _restore(run_dir, config, model, *optim) if resume else TrainState()
    state.sessions += 1
    session_start = time.perf_counter() if session_start is None else session_start
    if state.finished:
        say(info, run_dir, stream, f"training already finished at epoch {state.epoch}, step {state.global_step}")
        return state
    loop = _session_loop(
        config, model, train_set, optim, device, info, run_dir, stream, loss_fn, suite, session_start, state.elapsed_s
    )
    loop.progress.evals_left = evaluations_due(config, state.epoch, loop.steps_per_epoch) if evaluate_epoch else 0
    say(info, run_dir, stream, _session_line(loop, state, len(train_set)))  # numbered as the progress lines
    with graceful_stop() as loop.stop:
        while not state.finished:
            train_one_epoch(loop, state)
            end_epoch(loop, state, evaluate_epoch)
            if _stop_agreed(loop):
                raise _interrupted(loop, state, save=False)  # end_epoch has just saved last.pt
    return state


def _optimisation(config: RunConfig, model: nn.Module, device: torch.device) -> tuple[Any, Any, Any]:
    """(optimizer, scheduler, grad scaler) for ``model``; the scaler is active only with fp16 on CUDA."""
    optimizer = build_optimizer(config, model.parameters())
    scheduler = build_scheduler(config, optimizer)
    return optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=config.amp == "fp16" and device.type == "cuda")


def _session_loop(
    config: RunConfig,
    model: nn.Module,
    train_set: Dataset,
    optim: tuple[Any, Any, Any],
    device: torch.device,
    info: DistInfo,
    run_dir: RunDir | None,
    stream: TextIO | None,
    loss_fn: Callable[..., torch.Tensor],
    suite: SuiteProgress | None,
    session_start: float,
    elapsed_before: float,
) -> TrainLoop:
    """The session's TrainLoop: the model (DDP-wrapped across processes), how batches split over ranks, the
    progress display."""
    if config.batch_size % info.world_size:
        raise ValueError(f"batch_size {config.batch_size} does not split over {info.world_size} processes")
    net = model
    if info.enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    per_rank_batch = config.batch_size // info.world_size
    steps_per_epoch = math.ceil(len(epoch_order(len(train_set), config.seed, 0, info)) / per_rank_batch)
    optimizer, scheduler, scaler = optim
    return TrainLoop(
        config=config,
        model=model,
        net=net,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        device=device,
        info=info,
        autocast=amp_autocast(config.amp, device),
        loss_fn=loss_fn,
        run_dir=run_dir,
        stream=stream,
        items=training_items(train_set, config.seed),
        per_rank_batch=per_rank_batch,
        steps_per_epoch=steps_per_epoch,
        session_start=session_start,
        elapsed_before=elapsed_before,
        progress=_session_progress(config, info, run_dir, stream, len(train_set), steps_per_epoch, suite),
    )


def _session_line(loop: TrainLoop, state: TrainState, train_frames: int) -> str:
    """What this session trains, and where it resumes."""
    config, info = loop.config, loop.info
    line = (
        f"training {config.run_id}: {train_frames} frames, {loop.steps_per_epoch} steps/epoch, "
        f"batch {config.batch_size} ({info.world_size} process(es)), {config.epochs} epochs"
    )
    if config.max_steps:
        line += f", at most {config.max_steps} steps"
    if state.global_step:
        line += (
            f", resuming in epoch {state.epoch + 1}/{config.epochs} after step "
            f"{state.step_in_epoch}/{loop.steps_per_epoch}"
        )
    return line


def _session_progress(
    config: RunConfig,
    info: DistInfo,
    run_dir: RunDir | None,
    stream: TextIO | None,
    train_frames: int,
    steps_per_epoch: int,
    suite: SuiteProgress | None,
) -> Progress:
    """The session's progress display: rank 0 writes to ``stream`` and the run's log, the others nowhere."""
    return Progress(
        config.run_id,
        config.epochs,
        steps_per_epoch,
        planned_steps(config, train_frames, info.world_size),
        config.log_every_steps,
        stream=stream if info.is_main else _Null(),
        log=run_dir.log if run_dir is not None and info.is_main else None,
        suite=suite,
        train_frames=train_frames,
        world_size=info.world_size,
    )


def evaluations_due(config: RunConfig, epochs_done: int, steps_per_epoch: int) -> int:
    """Per-epoch evaluations still ahead once ``epochs_done`` epochs are complete: every
    ``eval_every_epochs``-th epoch and the run's last one (as ``end_epoch`` decides)."""
    if not config.eval_every_epochs:
        return 0
    last = config.epochs
    if config.max_steps is not None:
        last = min(last, math.ceil(config.max_steps / max(steps_per_epoch, 1)))
    return sum(1 for e in range(epochs_done + 1, last + 1) if e % config.eval_every_epochs == 0 or e == last)


def train_one_epoch(loop: TrainLoop, state: TrainState) -> None:
    """Train on the rest of epoch ``state.epoch`` (from batch ``state.step_in_epoch``), stopping early at
    ``max_steps``; checkpoints every ``checkpoint_every_steps`` inside the epoch. Updates ``state``.
    After a SIGTERM/SIGINT (``loop.stop``) it saves last.pt after the current step and raises RunInterrupted."""
    config, info = loop.config, loop.info
    loader = _epoch_loader(loop.items, config, state, info, loop.per_rank_batch, loop.device)
    progress = loop.progress
    loop.net.train()
    for batch in loader:
        loss = _train_step(loop, batch, state)
        state.step_in_epoch += 1
        state.global_step += 1
        state.loss_sum += loss
        state.loss_count += 1
        progress.update(
            state.epoch,
            state.step_in_epoch,
            state.global_step,
            loss,
            loop.optimizer.param_groups[0]["lr"],
            len(batch["frame"]) * info.world_size,
        )
        if config.max_steps is not None and state.global_step >= config.max_steps:
            break
        if _stop_agreed(loop):
            progress.close()
            raise _interrupted(loop, state)
        if (
            config.checkpoint_every_steps
            and state.global_step % config.checkpoint_every_steps == 0
            and state.step_in_epoch < loop.steps_per_epoch
        ):
            loop.checkpoint(state)
    progress.close()


def end_epoch(loop: TrainLoop, state: TrainState, evaluate_epoch: EvalFn | None = None) -> dict[str, Any]:
    """After ``train_one_epoch``: step the schedule if the epoch is complete, evaluate when due (keeping the
    best checkpoint), append the epoch's row to history.csv, print it and save last.pt. Returns the row."""
    config, info, run_dir = loop.config, loop.info, loop.run_dir
    epoch_done = state.step_in_epoch >= loop.steps_per_epoch
    row = {
        "epoch": round(state.epoch + state.step_in_epoch / loop.steps_per_epoch, 4),
        "step": state.global_step,
        "train_loss": state.loss_sum / max(state.loss_count, 1),
        "lr": loop.optimizer.param_groups[0]["lr"],
    }
    if epoch_done:
        # a session resumed after a signal at an epoch's last step steps the schedule before its first optimiser
        # step; over the run the order is the usual one, so torch's warning about it does not apply
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            loop.scheduler.step()
        state.epoch, state.step_in_epoch, state.loss_sum, state.loss_count = state.epoch + 1, 0, 0.0, 0
    state.finished = state.epoch >= config.epochs or (
        config.max_steps is not None and state.global_step >= config.max_steps
    )
    due = config.eval_every_epochs and (state.finished or state.epoch % config.eval_every_epochs == 0)
    if evaluate_epoch is not None and due:
        t_eval = time.perf_counter()
        metrics = on_rank0(info, lambda: evaluate_epoch(loop.model, state)) or {}
        loop.progress.eval_s = time.perf_counter() - t_eval
        loop.progress.evals_left = evaluations_due(config, state.epoch, loop.steps_per_epoch)
        row.update({f"test_{k}": v for k, v in metrics.items()})
        if config.checkpoint_select == "best" and _better(metrics.get("rmse"), state.best_rmse):
            state.best_rmse, state.best_epoch = metrics["rmse"], row["epoch"]
            loop.checkpoint(state, run_dir.best_checkpoint if run_dir else None)
    row["elapsed_s"] = round(loop.elapsed_s(), 3)
    state.history.append(row)
    say(info, run_dir, loop.stream, " | ".join(f"{k} {_fmt(v)}" for k, v in row.items() if k in EPOCH_LINE_KEYS))
    if info.is_main and run_dir is not None:
        run_dir.write_history(state.history)
    loop.checkpoint(state)
    return row


def _stop_agreed(loop: TrainLoop) -> bool:
    """Whether to stop now: this process got SIGTERM/SIGINT, or, across processes, any of them did (one
    all_reduce of a flag per step, so that every rank stops after the same step)."""
    asked = loop.stop.signum is not None
    if not loop.info.enabled:
        return asked
    flag = torch.tensor([float(asked)], device=loop.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _interrupted(loop: TrainLoop, state: TrainState, save: bool = True) -> RunInterrupted:
    """Save last.pt (rank 0; ``save``) holding every finished step and the position inside the epoch, wait
    until it is on disk on every rank, say so, and return the RunInterrupted to raise."""
    if save:
        loop.checkpoint(state)
    barrier(loop.info)  # no rank may exit before rank 0 has saved: torchrun stops the others when one exits
    run_dir = loop.run_dir
    exc = RunInterrupted(
        loop.stop.requested or "a signal to another process",
        loop.config.run_id,
        state.global_step,
        _position(loop, state),
        run_dir.last_checkpoint if run_dir is not None else None,
    )
    say(loop.info, run_dir, loop.stream, str(exc))
    return exc


def _position(loop: TrainLoop, state: TrainState) -> str:
    """Where training stands, as the progress lines number it: "epoch 2/3, step 5/12" or "end of epoch 2/3"."""
    if state.step_in_epoch == 0 and state.epoch > 0:
        return f"end of epoch {state.epoch}/{loop.config.epochs}"
    return f"epoch {state.epoch + 1}/{loop.config.epochs}, step {state.step_in_epoch}/{loop.steps_per_epoch}"


def training_items(train_set: Dataset, seed: int) -> SeededItems:
    """The training set as the loader's workers read it: each item seeded (``SeededItems``) and, when the set's
    transform is RSIDE's, read as a frame with its augmentation drawn (``augment.defer_augmentation``), to be
    augmented with its batch where the batch goes to the device (``augment.augment_batch``, in ``_train_step``)."""
    return SeededItems(defer_augmentation(train_set), seed)


def training_loader(items: SeededItems, batch_size: int, num_workers: int, **kwargs: Any) -> DataLoader:
    """A DataLoader over ``training_items``: frames stacked by ``augment.collate_frames`` (other items by the
    default collate), workers seeded and deaf to SIGTERM/SIGINT (``_worker_init``); ``kwargs`` go to DataLoader
    (sampler or shuffle, generator, pin_memory, drop_last, persistent_workers)."""
    return DataLoader(
        items,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_frames,
        worker_init_fn=_worker_init,
        **kwargs,
    )


def _epoch_loader(
    items: SeededItems, config: RunConfig, state: TrainState, info: DistInfo, per_rank_batch: int, device: torch.device
) -> DataLoader:
    """The rest of the current epoch: its (seed, epoch) order minus the batches already trained on."""
    order = epoch_order(len(items), config.seed, state.epoch, info)
    items.epoch = state.epoch
    return training_loader(
        items,
        per_rank_batch,
        loader_workers(config.num_workers),
        sampler=order[state.step_in_epoch * per_rank_batch :],
        generator=torch.Generator().manual_seed(item_seed(config.seed, state.epoch, 0) >> 1),
        pin_memory=device.type == "cuda",
        drop_last=False,
    )


def _train_step(loop: TrainLoop, batch: dict[str, Any], state: TrainState) -> float:
    """One optimiser step on ``batch``; returns its loss averaged over processes (checked to be finite)."""
    config, device = loop.config, loop.device
    batch = augment_batch(batch, device, non_blocking=True)  # frames: augmented on the device; else moved there
    image, depth, valid = batch["image"], batch["depth"], batch["valid"]
    if config.input_size is not None:
        image = F.interpolate(image, size=tuple(config.input_size), mode="bilinear", align_corners=False)
    with loop.autocast:
        preds = loop.net(image, levels=True)
    loss = loop.loss_fn(preds, depth, valid=valid)
    value = float(all_mean(loss.detach(), loop.info))  # the step's one host sync
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"{config.run_id}: training loss is {value} at epoch {state.epoch + 1}, step "
            f"{state.step_in_epoch + 1} (global step {state.global_step + 1}); stopped before updating the "
            f"weights. The last good checkpoint (checkpoints/last.pt, if one was written) is kept as it was. "
            f"Lower the lr, set grad_clip_norm, or check the data for invalid depths."
        )
    loop.optimizer.zero_grad(set_to_none=True)
    loop.scaler.scale(loss).backward()
    if config.grad_clip_norm is not None:
        loop.scaler.unscale_(loop.optimizer)
        torch.nn.utils.clip_grad_norm_(loop.net.parameters(), config.grad_clip_norm)
    loop.scaler.step(loop.optimizer)
    loop.scaler.update()
    return value


def _restore(run_dir: RunDir | None, config: RunConfig, model, optimizer, scheduler, scaler) -> TrainState:
    if run_dir is None or not run_dir.last_checkpoint.is_file():
        return TrainState()  # nothing saved yet: start from the beginning (same seed, same result)
    payload = load_checkpoint(run_dir.last_checkpoint)
    if payload.get("kind") != "train":
        raise RunCheckpointError(f"{run_dir.last_checkpoint} holds imported weights, not a training state")
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    scaler.load_state_dict(payload["scaler"])
    restore_rng_state(payload["rng"])
    return TrainState(**payload["state"])


def _better(value: float | None, best: float | None) -> bool:
    return value is not None and value == value and (best is None or value < best)


def _configure_backends(config: RunConfig, device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(config.deterministic, warn_only=True)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class _Null:
    def write(self, _: str) -> None:
        pass

    def flush(self) -> None:
        pass
