"""The timing core (synchronised repeats, median and IQR), one model's session on a device, the memory slope.

``time_steps`` is the one timing loop of the project: ``bench speed`` times one model per point with it and
``bench models --time`` times several models interleaved. ``median_iqr`` is the one definition of the median
and interquartile range (``np.percentile``, linear interpolation) behind every reported time and fps.
"""

from __future__ import annotations

import gc
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench.provenance import cpu_model, load_average
from bench.speed.gpu import Nvml
from bench.speed.memory import MIB, CpuMemory, CudaMemory, MemoryProbe, rss_bytes
from bench.speed.records import (
    DTYPES,
    MODES,
    SpeedConfig,
    SpeedPoint,
    SpeedTarget,
    blank_point,
    peak_above_baseline_mib,
)

__all__ = [
    "MIN_REPEATS",
    "ModelSession",
    "SlopeFit",
    "Timing",
    "classify",
    "fit_slope",
    "median_iqr",
    "model_bytes",
    "time_repeats",
    "time_steps",
]

MIN_REPEATS = 3  # fewer timed repeats make a median and IQR meaningless
TRAIN_LR = 1e-4  # train mode's Adam (amsgrad) step size, the paper's; any value costs the same time and memory
TARGET_DEPTH_M = (0.5, 10.0)  # train mode's random targets: uniform depths in metres (NYU's range)


# --------------------------------------------------------------------------------------------- timing core


@dataclass(frozen=True)
class Timing:
    """Per-repeat wall times of one forward pass (s): median, interquartile range, count."""

    median_s: float
    iqr_s: float
    n: int
    samples_s: tuple[float, ...]


def median_iqr(values: Sequence[float]) -> tuple[float, float]:
    """(median, q75 - q25) of ``values``, with ``np.percentile``'s linear interpolation; IQR 0 for one value."""
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return float(q50), float(q75 - q25)


def time_steps(
    steps: Mapping[str, Callable[[], object]],
    sync: Callable[[], None] | None,
    repeats: int,
    budget_s: float = math.inf,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Timing]:
    """Time every step ``repeats`` times, the steps taking turns so that load drift hits all of them alike.

    ``sync`` (CUDA: ``torch.cuda.synchronize``; None on CPU) runs before and after each timed call, since CUDA
    work is asynchronous. Stops early once ``budget_s`` seconds have passed and at least MIN_REPEATS rounds
    ran. Warm-up is the caller's job. Returns each step's median, IQR and n of its per-call times (s).
    """
    samples: dict[str, list[float]] = {name: [] for name in steps}
    start = clock()
    for done in range(1, repeats + 1):
        for name, step in steps.items():
            if sync is not None:
                sync()
            t0 = clock()
            step()
            if sync is not None:
                sync()
            samples[name].append(clock() - t0)
        if done >= MIN_REPEATS and clock() - start > budget_s:
            break
    return {name: Timing(*median_iqr(s), len(s), tuple(s)) for name, s in samples.items()}


def time_repeats(
    step: Callable[[], object],
    sync: Callable[[], None] | None,
    repeats: int,
    budget_s: float = math.inf,
    clock: Callable[[], float] = time.perf_counter,
) -> Timing:
    """``time_steps`` for a single step: median, IQR and n of its per-repeat times (s)."""
    return time_steps({"step": step}, sync, repeats, budget_s, clock)["step"]


# ------------------------------------------------------------------------------------------------ the fit


@dataclass(frozen=True)
class SlopeFit:
    """memory = intercept + slope * batch, least squares: slope (MiB per image), intercept (MiB), R^2, n."""

    slope: float
    intercept: float
    r2: float
    n: int


def fit_slope(batches: Sequence[float], memory_mib: Sequence[float]) -> SlopeFit | None:
    """Least-squares line through (batch, memory); None with fewer than two distinct batch sizes.

    R^2 = 1 - SS_res / SS_tot; NaN when every memory value is equal (a flat line explains nothing).
    """
    x = np.asarray(batches, dtype=float)
    y = np.asarray(memory_mib, dtype=float)
    if x.shape != y.shape or len(np.unique(x)) < 2:
        return None
    dx = x - x.mean()
    slope = float((dx * (y - y.mean())).sum() / (dx * dx).sum())
    intercept = float(y.mean() - slope * x.mean())
    ss_res = float(((y - (intercept + slope * x)) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
    return SlopeFit(slope, intercept, r2, len(x))


# ------------------------------------------------------------------------------------------ one model, many b


def classify(exc: BaseException) -> tuple[str, str]:
    """(status, note) for an exception raised while measuring a point: "oom" or "error" and a short message."""
    message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:400]
    if isinstance(exc, torch.OutOfMemoryError):
        return "oom", message
    if isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower():  # cuDNN/cuBLAS-level OOM
        return "oom", message
    return "error", message


def model_bytes(model: torch.nn.Module) -> int:
    """Bytes of the distinct parameters and buffers (what the weights occupy on the device)."""
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


class ModelSession:
    """One model on the device in one of MODES, measured at any number of batch sizes in this process.

    ``inference`` and ``autograd`` put the model in eval mode, ``train`` in train mode (see MODES).
    """

    def __init__(
        self,
        config: SpeedConfig,
        target: SpeedTarget,
        nvml: Nvml | None = None,
        nvml_baseline: int | None = None,
        mode: str = "inference",
    ):
        from architectures import build_model

        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.config, self.target, self.mode = config, target, mode
        self._optimizer: torch.optim.Optimizer | None = None
        self.device = torch.device(config.device)
        self.dtype = DTYPES[config.dtype]
        self.rss_baseline_mib = rss_bytes() / MIB
        self.note = ""
        self.sync: Callable[[], None] | None = None
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.set_device(self.device)
            self.device_name = torch.cuda.get_device_name(self.device)
            if nvml is not None and not _same_gpu(nvml, self.device):
                nvml_baseline = None
                self.note = (
                    f"NVML {nvml.selector} is not torch's {self.device} (UUIDs differ; set "
                    "CUDA_DEVICE_ORDER=PCI_BUS_ID): nvml_used_mib left empty"
                )
            self.memory: MemoryProbe = CudaMemory(self.device, nvml, nvml_baseline)
            self.sync = lambda: torch.cuda.synchronize(self.device)
            if config.max_memory_mib is not None:
                total = torch.cuda.get_device_properties(self.device).total_memory
                torch.cuda.set_per_process_memory_fraction(min(1.0, config.max_memory_mib * MIB / total), self.device)
        else:
            self.device_name = cpu_model()
            self.memory = CpuMemory(config.max_memory_mib)
        torch.manual_seed(config.seed)
        model = build_model(target.arch, target.backbone, weights=None, **dict(target.options))
        model.train(mode == "train")
        allocated0 = torch.cuda.memory_allocated(self.device) if cuda else 0
        model = model.to(device=self.device, dtype=self.dtype)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.net_ram_mib = model_bytes(model) / MIB
        grown = torch.cuda.memory_allocated(self.device) - allocated0 if cuda else None
        self.net_ram_allocated_mib = grown / MIB if grown is not None else None
        self.rss_loaded_mib = rss_bytes() / MIB
        self.net_ram_loaded_mib = self.net_ram_allocated_mib if cuda else self.rss_loaded_mib - self.rss_baseline_mib
        self.model = model

    def measure(self, batch: int, phase: str) -> SpeedPoint:
        """One point; OOM and other errors become the row's status, never an exception."""
        point = blank_point(self.config, self.target, batch, phase, self.device_name, note=self.note, mode=self.mode)
        point.net_ram_mib = self.net_ram_mib
        point.net_ram_allocated_mib = self.net_ram_allocated_mib
        point.net_ram_loaded_mib = self.net_ram_loaded_mib
        if self.device.type == "cpu":
            point.rss_baseline_mib = self.rss_baseline_mib
            point.rss_loaded_mib = self.rss_loaded_mib
        try:
            timing, peaks = self._run(batch)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded in the row
            point.status, message = classify(exc)
            point.note = "; ".join(n for n in (message, self.note) if n)
        else:
            _fill_timing(point, timing, batch)
            for key, value in peaks.items():
                setattr(point, key, value)
            point.peak_above_baseline_mib = peak_above_baseline_mib(point)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        load = load_average()
        point.load_1min = load[0] if load else None
        return point

    def _run(self, batch: int) -> tuple[Timing, dict[str, Any]]:
        c = self.config
        model = self.model
        if c.compile:
            torch._dynamo.reset()  # one compiled graph per point; never hit the recompile limit
            model = torch.compile(model)
        self.memory.begin()
        try:
            g = torch.Generator(device=self.device).manual_seed(c.seed)
            x = torch.randn(batch, 3, *c.input_hw, generator=g, device=self.device, dtype=self.dtype)
            if c.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            step = self._step(model, x, g)
            with torch.inference_mode() if self.mode == "inference" else torch.enable_grad():
                for i in range(c.warmup):
                    measured = i >= c.warmup - c.memory_passes  # the last memory_passes passes
                    if measured:
                        self.memory.reset_peaks()
                    step()
                    self.memory.after_pass()
                    if measured:
                        self.memory.end_pass()
                self.memory.before_timing()
                timing = time_repeats(step, self.sync, c.repeats, c.budget_s)
            self.memory.after_pass()
            return timing, self.memory.read_peaks()
        finally:
            self.memory.end()

    def _step(self, model: torch.nn.Module, x: torch.Tensor, g: torch.Generator) -> Callable[[], object]:
        """One timed step of this session's mode on the batch ``x`` (train: random depth targets from ``g``)."""
        if self.mode != "train":
            return lambda: model(x)
        from architectures.losses import multiscale_loss

        if self._optimizer is None:  # one optimiser per session: its state is part of a training step's memory
            self._optimizer = torch.optim.Adam(self.model.parameters(), lr=TRAIN_LR, amsgrad=True)
        optimizer = self._optimizer
        low, high = TARGET_DEPTH_M
        size = (x.shape[0], 1, *self.config.input_hw)
        target = low + (high - low) * torch.rand(size, generator=g, device=self.device, dtype=self.dtype)

        def train_step() -> torch.Tensor:
            preds = model(x, levels=True)
            loss = multiscale_loss(list(preds) if isinstance(preds, (list, tuple)) else [preds], target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss

        return train_step

    def close(self) -> None:
        self._optimizer = None
        del self.model
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            if self.config.max_memory_mib is not None:
                torch.cuda.set_per_process_memory_fraction(1.0, self.device)


def _same_gpu(nvml: Nvml, device: torch.device) -> bool:
    """Whether the NVML handle and torch's device are one GPU (UUIDs compared without GPU-/MIG- prefix)."""

    def bare(uuid: object) -> str:
        return re.sub(r"^(GPU|MIG)-", "", str(uuid)).lower()

    try:
        torch_uuid = torch.cuda.get_device_properties(device).uuid
    except AttributeError:  # older torch: nothing to compare, trust CUDA_VISIBLE_DEVICES
        return True
    nvml_uuid = nvml.uuid()
    return nvml_uuid is None or bare(nvml_uuid) == bare(torch_uuid)


def _fill_timing(point: SpeedPoint, timing: Timing, batch: int) -> None:
    point.fps_median, point.fps_iqr = median_iqr([batch / t for t in timing.samples_s])
    point.n_repeats = timing.n
    point.time_median_ms, point.time_iqr_ms = timing.median_s * 1e3, timing.iqr_s * 1e3
