"""Speed and memory sweeps over batch sizes (the DRNet paper's Table 2), on CUDA or CPU.

For every model: batch sizes 1, 2, 4, ... until out of memory, then bisection to the largest batch that fits
(or an explicit list). At each point the model (built once per model, or once per point with --isolate) sits
on the device in eval mode, a random input of shape (B, 3, H, W) is created once, and under
``torch.inference_mode()`` the forward pass runs ``warmup`` times (the last one after the memory peaks are
reset, so peaks are steady-state and exclude cuDNN autotuning) and then ``repeats`` timed times with
synchronised wall-clock time. fps = B / time, images/s.

Memory is never a bare "RAM"; per point, in MiB (2^20 bytes):

- CUDA: ``peak_allocated_mib`` (tensors, ``torch.cuda.max_memory_allocated``), ``peak_reserved_mib``
  (PyTorch's cache, ``max_memory_reserved``) and ``nvml_used_mib`` (device memory used as nvidia-smi shows
  it, sampled every 10 ms, minus the device's use before this process created its CUDA context: adds the
  context and library workspaces).
- CPU: ``rss_peak_mib``, the process's peak resident set during the point. Linux's VmHWM is reset at the
  point's start through ``/proc/self/clear_refs`` (``ru_maxrss`` would be the process lifetime's peak);
  ``--isolate`` gives every point a fresh process anyway.

Per model: net RAM = bytes of the weights and buffers on the device; RAM / img = least-squares slope of peak
memory against batch size with its R^2 (NVML on CUDA, RSS on CPU; the other measures as extra columns).
Column definitions: ``POINT_COLUMNS``, ``SUMMARY_COLUMNS`` (also written as ``speed_columns.md``).
"""

from __future__ import annotations

import gc
import json
import math
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.gpu import Nvml, PeakSampler, open_nvml
from bench.io import write_csv_atomic, write_json_atomic, write_text_atomic
from bench.provenance import collect_provenance, cpu_model
from bench.suite import SUITES_DIR, available_suites

__all__ = [
    "POINT_COLUMNS",
    "SUMMARY_COLUMNS",
    "SlopeFit",
    "SpeedConfig",
    "SpeedPoint",
    "SpeedResult",
    "SpeedSuiteError",
    "SpeedSummary",
    "SpeedTarget",
    "Timing",
    "default_run_id",
    "fit_slope",
    "parse_batch_sizes",
    "parse_input_size",
    "run_sweep",
    "speed_targets",
    "summarize",
    "sweep_batches",
    "time_repeats",
]

MIB = 2**20
REPO_ROOT = Path(__file__).resolve().parent.parent
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DEFAULT_INPUT_HW = (228, 304)  # rows x cols: the paper's and RSIDE's input crop
DEFAULT_MAX_BATCH = {"cuda": 1024, "cpu": 32}  # auto sweeps stop doubling here (CPU: minutes per point)
DEFAULT_WARMUP = {"cuda": 10, "cpu": 2}  # iterations; the first absorb cuDNN autotuning, allocator growth
DEFAULT_REPEATS = {"cuda": 30, "cpu": 5}  # timed iterations per point
DEFAULT_BUDGET_S = {"cuda": 30.0, "cpu": 120.0}  # per point: stop repeating after this, once MIN_REPEATS ran
MIN_REPEATS = 3  # fewer timed repeats make a median and IQR meaningless
CPU_DEFAULT_LIMIT_FRACTION = 0.4  # no --max-memory-mib on CPU: peak RSS <= RSS now + 40% of MemAvailable
POINT_PREFIX = "SPEEDPOINT "  # the line an --isolate child prints its result on


# --------------------------------------------------------------------------------------------------- config

@dataclass(frozen=True)
class SpeedTarget:
    """One model of a sweep: ``build_model(arch, backbone, **options)`` with random weights."""

    arch: str
    backbone: str
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""  # label in the CSVs (suite entry name); default "<arch>-<backbone>"

    @property
    def label(self) -> str:
        return self.name or f"{self.arch}-{self.backbone}"


@dataclass(frozen=True)
class SpeedConfig:
    """Everything that defines a sweep; saved in config.json. ``None`` fields take per-device defaults."""

    targets: tuple[SpeedTarget, ...]
    device: str = "auto"  # "cuda", "cuda:N", "cpu", or "auto" (cuda when available)
    input_hw: tuple[int, int] = DEFAULT_INPUT_HW  # input rows x cols, pixels
    batch_sizes: tuple[int, ...] | None = None  # None: auto (1, 2, 4, ... until OOM, then bisect)
    max_batch: int | None = None  # auto sweeps stop doubling here; None: DEFAULT_MAX_BATCH
    dtype: str = "fp32"  # weights and input cast to it (not autocast): fp32 | fp16 | bf16
    channels_last: bool = False  # NHWC memory format for weights and input
    compile: bool = False  # torch.compile the model (compiled afresh per point, inside the warm-up)
    isolate: bool = False  # every point in a fresh subprocess (clean allocator, context and RSS)
    warmup: int | None = None  # untimed iterations (>= 1); the last runs after the memory peaks reset
    repeats: int | None = None  # timed iterations per point
    budget_s: float | None = None  # per point: stop timing after this many seconds once MIN_REPEATS ran
    max_memory_mib: float | None = None  # CUDA: allocator cap; CPU: cap on the process's peak RSS (MiB)
    threads: int | None = None  # CPU: torch.set_num_threads; None: torch's default
    cudnn_benchmark: bool = True  # torch.backends.cudnn.benchmark during the sweep (autotuned convolutions)
    seed: int = 0  # random weights and inputs
    suite: str | None = None  # the suite the targets came from, for the run id and the record

    def resolved(self) -> SpeedConfig:
        """A copy with ``device`` made explicit and the per-device defaults filled in."""
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            device = "cuda:0"
        kind = torch.device(device).type
        pick = {"max_batch": DEFAULT_MAX_BATCH, "warmup": DEFAULT_WARMUP, "repeats": DEFAULT_REPEATS,
                "budget_s": DEFAULT_BUDGET_S}
        filled = {k: (getattr(self, k) if getattr(self, k) is not None else table[kind])
                  for k, table in pick.items()}
        return replace(self, device=device, **filled)

    @property
    def device_kind(self) -> str:
        """"cuda" or "cpu": the type of ``device`` (of a resolved config; "auto" has none)."""
        return torch.device(self.device).type

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SpeedConfig:
        d = dict(d)
        d["targets"] = tuple(SpeedTarget(**t) for t in d["targets"])
        d["input_hw"] = tuple(d["input_hw"])
        if d.get("batch_sizes") is not None:
            d["batch_sizes"] = tuple(d["batch_sizes"])
        return cls(**d)


def parse_input_size(text: str) -> tuple[int, int]:
    """"228x304" -> (228, 304): rows x cols, as the paper writes its 304x228 crop turned to HxW."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m[1]) < 1 or int(m[2]) < 1:
        raise ValueError(f"input size must look like HxW with positive integers (e.g. 228x304), got {text!r}")
    return int(m[1]), int(m[2])


def parse_batch_sizes(text: str) -> tuple[int, ...] | None:
    """"auto" -> None; "1,2,4" -> (1, 2, 4) (positive, distinct)."""
    if text.strip().lower() == "auto":
        return None
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"batch sizes must be 'auto' or comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1 or len(set(sizes)) != len(sizes):
        raise ValueError(f"batch sizes must be distinct positive integers, got {text!r}")
    return sizes


# ------------------------------------------------------------------------------------------------- records

@dataclass
class _SweepIdentity:
    """The model and setup a row describes: the first columns of both speed.csv and speed_summary.csv."""

    name: str
    arch: str
    backbone: str
    options: str
    device_kind: str
    device_name: str | None
    dtype: str
    input: str
    channels_last: bool
    compile: bool
    isolated: bool


POINT_COLUMNS: dict[str, str] = {
    "name": "model label (suite entry name, else <arch>-<backbone>)",
    "arch": "architecture as registered (build_model)",
    "backbone": "encoder backbone",
    "options": "architecture options as JSON (sorted keys; {} for defaults)",
    "device_kind": "cuda or cpu: which device every number in this row was measured on",
    "device_name": "GPU name (NVML / torch) or CPU model",
    "dtype": "fp32 | fp16 | bf16: weights and input cast to it (not autocast)",
    "input": "input size HxW in pixels (rows x cols), e.g. 228x304",
    "channels_last": "NHWC memory format for weights and input",
    "compile": "model wrapped in torch.compile",
    "isolated": "point measured in a fresh subprocess (--isolate)",
    "batch": "batch size B (images per forward pass)",
    "phase": "how the batch was chosen: double (1,2,4,...), bisect (after an OOM), list (--batch-sizes)",
    "status": "ok | oom (out of memory: torch.OutOfMemoryError or a memory limit) | error (see note)",
    "fps_median": "median over timed repeats of B / forward time, images/s",
    "fps_iqr": "interquartile range (q75 - q25) of the per-repeat fps, images/s",
    "n_repeats": "number of timed repeats behind the median",
    "time_median_ms": "median synchronised wall time of one forward pass of the batch, ms",
    "time_iqr_ms": "interquartile range of that time, ms",
    "warmup": "untimed iterations before timing (the last one after the memory peaks were reset)",
    "peak_allocated_mib": "CUDA: torch.cuda.max_memory_allocated after reset_peak_memory_stats, MiB"
                          " (tensors)",
    "peak_reserved_mib": "CUDA: torch.cuda.max_memory_reserved, MiB (tensors + PyTorch's cache)",
    "nvml_used_mib": "CUDA: peak device memory used (NVML, sampled every 10 ms) minus the device's use before"
                     " this process created its CUDA context, MiB (adds context and workspaces)",
    "nvml_samples": "CUDA: NVML samples behind nvml_used_mib",
    "rss_peak_mib": "CPU: the process's peak resident set size during the point, MiB (absolute)",
    "rss_baseline_mib": "CPU: the process's resident set before the model was built, MiB",
    "rss_method": "CPU: how the per-point RSS peak was taken: clear_refs (VmHWM reset at point start),"
                  " sampled (10 ms thread) or lifetime (ru_maxrss, the process's whole life)",
    "net_ram_mib": "bytes of the model's parameters and buffers on the device (in dtype), MiB",
    "net_ram_allocated_mib": "CUDA: torch.cuda.memory_allocated growth when the model moved to the GPU, MiB",
    "memory_limit_mib": "memory cap in force (CUDA: allocator fraction; CPU: peak RSS), MiB; empty if none",
    "note": "OOM or error message; other remarks",
}

SLOPE_SOURCES = {  # ram_per_img_<source>_*: the speed.csv column whose slope against batch size they give
    "allocated": "peak_allocated_mib", "reserved": "peak_reserved_mib", "nvml": "nvml_used_mib",
    "rss": "rss_peak_mib",
}

SUMMARY_COLUMNS: dict[str, str] = {
    **{f.name: POINT_COLUMNS[f.name] for f in fields(_SweepIdentity)},
    "fps_b1": "Table 2 'fps (b 1)': fps_median at batch 1, images/s",
    "fps_b1_iqr": "fps_iqr at batch 1, images/s",
    "fps_max": "Table 2 'fps (max b)': highest fps_median over the measured batch sizes, images/s",
    "fps_max_batch": "the batch size that gave fps_max",
    "max_batch_fit": "largest batch that ran without OOM (exact after bisection when sweep_stop is oom in"
                     " auto mode; a lower bound when sweep_stop is max_batch or list_end)",
    "sweep_stop": "why the sweep ended: oom | max_batch (auto cap reached) | list_end | error",
    "net_ram_mib": "Table 2 'net RAM': weights and buffers on the device, MiB",
    "net_ram_allocated_mib": POINT_COLUMNS["net_ram_allocated_mib"],
    "ram_per_img_mib": "Table 2 'RAM / img': least-squares slope of peak memory (ram_per_img_source) against"
                       " batch size over the ok points, MiB per image",
    "ram_per_img_r2": "R^2 of that fit",
    "ram_per_img_source": "memory measure behind ram_per_img_mib: nvml on CUDA (reserved when NVML is"
                          " unavailable), rss on CPU",
    "ram_per_img_n": "number of points (ok, distinct batch sizes >= 2) in that fit",
    **{f"ram_per_img_{s}_{part}": (f"slope of peak {s} memory against batch size, MiB per image"
                                   if part == "mib" else f"R^2 of the {s} slope")
       for s in SLOPE_SOURCES for part in ("mib", "r2")},
    "n_points": "points measured for this model",
    "n_ok": "points with status ok",
    "n_oom": "points with status oom",
    "n_error": "points with status error",
}


@dataclass
class SpeedPoint(_SweepIdentity):
    """One (model, batch size) measurement: a row of speed.csv (see POINT_COLUMNS)."""

    batch: int
    phase: str
    status: str
    fps_median: float | None = None
    fps_iqr: float | None = None
    n_repeats: int | None = None
    time_median_ms: float | None = None
    time_iqr_ms: float | None = None
    warmup: int | None = None
    peak_allocated_mib: float | None = None
    peak_reserved_mib: float | None = None
    nvml_used_mib: float | None = None
    nvml_samples: int | None = None
    rss_peak_mib: float | None = None
    rss_baseline_mib: float | None = None
    rss_method: str | None = None
    net_ram_mib: float | None = None
    net_ram_allocated_mib: float | None = None
    memory_limit_mib: float | None = None
    note: str = ""


@dataclass
class SpeedSummary(_SweepIdentity):
    """One model's Table 2 row: a row of speed_summary.csv (see SUMMARY_COLUMNS)."""

    fps_b1: float | None
    fps_b1_iqr: float | None
    fps_max: float | None
    fps_max_batch: int | None
    max_batch_fit: int | None
    sweep_stop: str
    net_ram_mib: float | None
    net_ram_allocated_mib: float | None
    ram_per_img_mib: float | None
    ram_per_img_r2: float | None
    ram_per_img_source: str
    ram_per_img_n: int
    ram_per_img_allocated_mib: float | None = None
    ram_per_img_allocated_r2: float | None = None
    ram_per_img_reserved_mib: float | None = None
    ram_per_img_reserved_r2: float | None = None
    ram_per_img_nvml_mib: float | None = None
    ram_per_img_nvml_r2: float | None = None
    ram_per_img_rss_mib: float | None = None
    ram_per_img_rss_r2: float | None = None
    n_points: int = 0
    n_ok: int = 0
    n_oom: int = 0
    n_error: int = 0


assert [f.name for f in fields(SpeedPoint)] == list(POINT_COLUMNS)
assert [f.name for f in fields(SpeedSummary)] == list(SUMMARY_COLUMNS)


@dataclass
class SpeedResult:
    """What ``run_sweep`` produced: the rows of both CSVs, the environment record and where they are."""

    out_dir: Path
    points: list[SpeedPoint]
    summaries: list[SpeedSummary]
    environment: dict[str, Any]


# --------------------------------------------------------------------------------------------- timing core

@dataclass(frozen=True)
class Timing:
    """Per-repeat wall times of one forward pass (s): median, interquartile range, count."""

    median_s: float
    iqr_s: float
    n: int
    samples_s: tuple[float, ...]


def time_repeats(step: Callable[[], object], sync: Callable[[], None], repeats: int,
                 budget_s: float = math.inf, clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Time ``step()`` ``repeats`` times, synchronising before and after each (CUDA work is asynchronous).

    Stops early once ``budget_s`` seconds have passed and at least MIN_REPEATS repeats ran. Warm-up is the
    caller's job. Returns median, IQR and n of the per-repeat times.
    """
    samples: list[float] = []
    start = clock()
    for _ in range(repeats):
        sync()
        t0 = clock()
        step()
        sync()
        samples.append(clock() - t0)
        if len(samples) >= MIN_REPEATS and clock() - start > budget_s:
            break
    q25, q50, q75 = np.percentile(samples, [25, 50, 75])
    return Timing(float(q50), float(q75 - q25), len(samples), tuple(samples))


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


# --------------------------------------------------------------------------------------------- CPU memory

def _proc_bytes(key: str, path: str = "/proc/self/status") -> int | None:
    """The ``key:`` line of a /proc file (given in kB) in bytes; None where the file or the key is missing."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """This process's resident set now (bytes); the lifetime peak where /proc is missing."""
    now = _proc_bytes("VmRSS")
    return now if now is not None else _ru_maxrss_bytes()


def _ru_maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB


def _reset_hwm() -> bool:
    """Reset Linux's peak-RSS counter (VmHWM) to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _proc_bytes("VmHWM") is not None
    except OSError:
        return False


def mem_available_bytes() -> int | None:
    return _proc_bytes("MemAvailable", "/proc/meminfo")


class _CpuMemory:
    """Per-point peak RSS: VmHWM reset at the point's start (Linux), else a sampling thread."""

    def __init__(self, limit_mib: float | None):
        self.limit_mib = limit_mib
        self.method = "clear_refs" if _reset_hwm() else ("sampled" if os.path.exists("/proc/self/status")
                                                          else "lifetime")
        self._sampler: PeakSampler | None = None

    def begin(self) -> None:
        if self.method == "sampled":
            self._sampler = PeakSampler(rss_bytes).start()
        self.reset_peaks()

    def reset_peaks(self) -> None:
        if self.method == "clear_refs":
            _reset_hwm()
        elif self._sampler is not None:
            self._sampler.reset()

    def sync(self) -> None:
        pass

    def peak_bytes(self) -> int:
        if self.method == "clear_refs":
            return _proc_bytes("VmHWM") or rss_bytes()
        if self._sampler is not None:
            self._sampler._sample()
            return self._sampler.peak
        return _ru_maxrss_bytes()

    def check_limit(self) -> None:
        """Raise the real OOM exception when the point's peak RSS passed the cap (checked between passes)."""
        if self.limit_mib is None:
            return
        peak_mib = self.peak_bytes() / MIB
        if peak_mib > self.limit_mib:
            raise torch.OutOfMemoryError(f"CPU memory limit: peak RSS {peak_mib:.1f} MiB > "
                                         f"--max-memory-mib {self.limit_mib:.1f}")

    def read_peaks(self) -> dict[str, Any]:
        return {"rss_peak_mib": self.peak_bytes() / MIB, "rss_method": self.method}

    def end(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None


# -------------------------------------------------------------------------------------------- CUDA memory

class _CudaMemory:
    """Per-point peaks from PyTorch's allocator, plus NVML device memory sampled on a thread."""

    def __init__(self, device: torch.device, nvml: Nvml | None, nvml_baseline: int | None):
        self.device = device
        self.nvml = nvml if nvml_baseline is not None else None
        self.nvml_baseline = nvml_baseline
        self._sampler: PeakSampler | None = None

    def begin(self) -> None:
        if self.nvml is not None:
            self._sampler = PeakSampler(self.nvml.used_bytes).start()
        self.reset_peaks()

    def reset_peaks(self) -> None:
        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()  # drop autotuning workspaces: what follows is the steady state
        torch.cuda.reset_peak_memory_stats(self.device)
        if self._sampler is not None:
            self._sampler.reset()

    def sync(self) -> None:
        torch.cuda.synchronize(self.device)

    def check_limit(self) -> None:
        pass  # the allocator enforces --max-memory-mib itself (set_per_process_memory_fraction)

    def read_peaks(self) -> dict[str, Any]:
        torch.cuda.synchronize(self.device)
        peaks: dict[str, Any] = {
            "peak_allocated_mib": torch.cuda.max_memory_allocated(self.device) / MIB,
            "peak_reserved_mib": torch.cuda.max_memory_reserved(self.device) / MIB,
        }
        if self._sampler is not None:
            peak = self._sampler.stop()
            peaks["nvml_used_mib"] = (peak - self.nvml_baseline) / MIB
            peaks["nvml_samples"] = self._sampler.n_samples
            self._sampler = None
        return peaks

    def end(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None


# ------------------------------------------------------------------------------------------ one model, many b

def _classify(exc: BaseException) -> tuple[str, str]:
    """(status, note) for an exception raised while measuring a point."""
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


class _ModelSession:
    """One model on the device in eval mode, measured at any number of batch sizes in this process."""

    def __init__(self, config: SpeedConfig, target: SpeedTarget, nvml: Nvml | None = None,
                 nvml_baseline: int | None = None):
        from architectures import build_model

        self.config, self.target = config, target
        self.device = torch.device(config.device)
        self.dtype = DTYPES[config.dtype]
        self.rss_baseline_mib = rss_bytes() / MIB
        self.note = ""
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.set_device(self.device)
            self.device_name = torch.cuda.get_device_name(self.device)
            if nvml is not None and not _same_gpu(nvml, self.device):
                nvml_baseline = None
                self.note = (f"NVML {nvml.selector} is not torch's {self.device} (UUIDs differ; set "
                             "CUDA_DEVICE_ORDER=PCI_BUS_ID): nvml_used_mib left empty")
            self.memory: _CudaMemory | _CpuMemory = _CudaMemory(self.device, nvml, nvml_baseline)
            if config.max_memory_mib is not None:
                total = torch.cuda.get_device_properties(self.device).total_memory
                torch.cuda.set_per_process_memory_fraction(min(1.0, config.max_memory_mib * MIB / total),
                                                           self.device)
        else:
            self.device_name = cpu_model()
            self.memory = _CpuMemory(config.max_memory_mib)
        torch.manual_seed(config.seed)
        model = build_model(target.arch, target.backbone, weights=None, **dict(target.options)).eval()
        allocated0 = torch.cuda.memory_allocated(self.device) if cuda else 0
        model = model.to(device=self.device, dtype=self.dtype)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.net_ram_mib = model_bytes(model) / MIB
        grown = torch.cuda.memory_allocated(self.device) - allocated0 if cuda else None
        self.net_ram_allocated_mib = grown / MIB if grown is not None else None
        self.model = model

    def measure(self, batch: int, phase: str) -> SpeedPoint:
        """One point; OOM and other errors become the row's status, never an exception."""
        point = _blank_point(self.config, self.target, batch, phase, self.device_name, note=self.note)
        point.net_ram_mib = self.net_ram_mib
        point.net_ram_allocated_mib = self.net_ram_allocated_mib
        if self.device.type == "cpu":
            point.rss_baseline_mib = self.rss_baseline_mib
        try:
            timing, peaks = self._run(batch)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded in the row
            point.status, message = _classify(exc)
            point.note = "; ".join(n for n in (message, self.note) if n)
        else:
            _fill_timing(point, timing, batch)
            for key, value in peaks.items():
                setattr(point, key, value)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
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
            with torch.inference_mode():
                for i in range(c.warmup):
                    if i == c.warmup - 1:
                        self.memory.reset_peaks()
                    model(x)
                    self.memory.sync()
                    self.memory.check_limit()
                timing = time_repeats(lambda: model(x), self.memory.sync, c.repeats, c.budget_s)
            self.memory.check_limit()
            return timing, self.memory.read_peaks()
        finally:
            self.memory.end()

    def close(self) -> None:
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


def _blank_point(config: SpeedConfig, target: SpeedTarget, batch: int, phase: str,
                 device_name: str | None, status: str = "ok", note: str = "") -> SpeedPoint:
    return SpeedPoint(
        name=target.label, arch=target.arch, backbone=target.backbone,
        options=json.dumps(dict(target.options), sort_keys=True),
        device_kind=config.device_kind,
        device_name=device_name, dtype=config.dtype, input=f"{config.input_hw[0]}x{config.input_hw[1]}",
        channels_last=config.channels_last, compile=config.compile, isolated=config.isolate, batch=batch,
        phase=phase, status=status, warmup=config.warmup, memory_limit_mib=config.max_memory_mib, note=note)


def _fill_timing(point: SpeedPoint, timing: Timing, batch: int) -> None:
    fps = np.asarray([batch / t for t in timing.samples_s])
    q25, q50, q75 = np.percentile(fps, [25, 50, 75])
    point.fps_median, point.fps_iqr = float(q50), float(q75 - q25)
    point.n_repeats = timing.n
    point.time_median_ms, point.time_iqr_ms = timing.median_s * 1e3, timing.iqr_s * 1e3


# ---------------------------------------------------------------------------------------------- the sweep

def sweep_batches(measure: Callable[[int, str], SpeedPoint], batch_sizes: Sequence[int] | None,
                  max_batch: int) -> tuple[list[SpeedPoint], str]:
    """Measure one model over batch sizes; returns the points and why the sweep stopped.

    ``batch_sizes`` None: 1, 2, 4, ... (capped at ``max_batch``) until the first OOM, then bisection between
    the last batch that fit and the first that did not. A list: each size in order, stopping at the first
    OOM or error. Stops: "oom", "max_batch", "list_end", "error".
    """
    points: list[SpeedPoint] = []
    if batch_sizes is not None:
        for b in batch_sizes:
            points.append(measure(b, "list"))
            if points[-1].status != "ok":
                return points, points[-1].status
        return points, "list_end"
    batch, last_ok = 1, 0
    while True:
        points.append(measure(batch, "double"))
        if points[-1].status == "error":
            return points, "error"
        if points[-1].status == "oom":
            break
        last_ok = batch
        if batch >= max_batch:
            return points, "max_batch"
        batch = min(2 * batch, max_batch)
    lo, hi = last_ok, batch
    while lo >= 1 and hi - lo > 1:
        mid = (lo + hi) // 2
        points.append(measure(mid, "bisect"))
        if points[-1].status == "ok":
            lo = mid
        elif points[-1].status == "oom":
            hi = mid
        else:
            return points, "error"
    return points, "oom"


def summarize(points: Sequence[SpeedPoint], sweep_stop: str) -> SpeedSummary:
    """One model's Table 2 row from its points (all points must be of the same model)."""
    first = points[0]
    ok = [p for p in points if p.status == "ok"]
    b1 = next((p for p in ok if p.batch == 1), None)
    best = max(ok, key=lambda p: p.fps_median) if ok else None
    fits: dict[str, SlopeFit | None] = {}
    for source, column in SLOPE_SOURCES.items():
        xy = [(p.batch, getattr(p, column)) for p in ok if getattr(p, column) is not None]
        fits[source] = fit_slope([b for b, _ in xy], [m for _, m in xy]) if xy else None
    if first.device_kind == "cuda":
        source = "nvml" if fits["nvml"] is not None else "reserved"
    else:
        source = "rss"
    main = fits[source]
    if ok:
        max_fit: int | None = max(p.batch for p in ok)
    else:
        max_fit = 0 if sweep_stop == "oom" else None
    extra = {}
    for s, fit in fits.items():
        extra[f"ram_per_img_{s}_mib"] = fit.slope if fit else None
        extra[f"ram_per_img_{s}_r2"] = fit.r2 if fit else None
    net = next((p for p in points if p.net_ram_mib is not None), None)
    identity = {f.name: getattr(first, f.name) for f in fields(_SweepIdentity)}
    identity["device_name"] = next((p.device_name for p in points if p.device_name), None)
    return SpeedSummary(
        **identity,
        fps_b1=b1.fps_median if b1 else None, fps_b1_iqr=b1.fps_iqr if b1 else None,
        fps_max=best.fps_median if best else None, fps_max_batch=best.batch if best else None,
        max_batch_fit=max_fit, sweep_stop=sweep_stop,
        net_ram_mib=net.net_ram_mib if net else None,
        net_ram_allocated_mib=net.net_ram_allocated_mib if net else None,
        ram_per_img_mib=main.slope if main else None, ram_per_img_r2=main.r2 if main else None,
        ram_per_img_source=source, ram_per_img_n=main.n if main else 0,
        n_points=len(points), n_ok=len(ok), n_oom=sum(p.status == "oom" for p in points),
        n_error=sum(p.status == "error" for p in points), **extra)


def _measure_isolated(config: SpeedConfig, target: SpeedTarget, batch: int, phase: str,
                      device_name: str | None) -> SpeedPoint:
    """One point in a fresh ``python -m bench.speed --point`` process; a crash becomes an error row."""
    spec = {"config": config.to_dict(), "target": asdict(target), "batch": batch, "phase": phase}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-m", "bench.speed", "--point", json.dumps(spec)],
                          capture_output=True, text=True, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(POINT_PREFIX):
            return SpeedPoint(**json.loads(line[len(POINT_PREFIX):]))
    why = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
    if proc.returncode == -9:
        why += " (possibly the kernel's OOM killer)"
    tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
    return _blank_point(config, target, batch, phase, device_name, "error",
                        f"isolated point process failed: {why}; {tail}"[:400])


def _nvml_with_baseline(config: SpeedConfig) -> tuple[Nvml | None, str, int | None]:
    """NVML for the config's GPU, a note on it, and the device memory used now (the nvml_used baseline).

    Call it before this process creates its CUDA context, so that nvml_used includes the context.
    """
    if config.device_kind != "cuda":
        return None, "NVML not used on cpu", None
    nvml, note = open_nvml(torch.device(config.device).index or 0)
    if nvml is None:
        return None, note, None
    if torch.cuda.is_initialized():
        note += "; CUDA context existed before the baseline: nvml_used_mib excludes it"
    return nvml, note, nvml.used_bytes()


def _point_main(spec_json: str) -> int:
    """Child side of --isolate: read the NVML baseline before CUDA exists, measure one point, print it."""
    spec = json.loads(spec_json)
    config = SpeedConfig.from_dict(spec["config"])
    target = SpeedTarget(**spec["target"])
    if config.threads:
        torch.set_num_threads(config.threads)
    nvml, _, baseline = _nvml_with_baseline(config)
    if config.device_kind == "cuda":
        torch.backends.cudnn.benchmark = config.cudnn_benchmark
    try:
        session = _ModelSession(config, target, nvml, baseline)
    except Exception as exc:  # noqa: BLE001
        point = _blank_point(config, target, spec["batch"], spec["phase"], None, *_classify(exc))
    else:
        point = session.measure(spec["batch"], spec["phase"])
    print(POINT_PREFIX + json.dumps(asdict(point)), flush=True)
    return 0


# ------------------------------------------------------------------------------------------- environment

def _tf32_and_cudnn(kind: str) -> dict[str, Any]:
    if kind != "cuda":
        na = "N/A (cpu)"
        return {"cudnn_version": na, "cudnn_benchmark": na, "cudnn_deterministic": na, "tf32_matmul": na,
                "tf32_cudnn": na, "float32_matmul_precision": torch.get_float32_matmul_precision()}
    return {
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def sweep_environment(config: SpeedConfig, nvml: Nvml | None, nvml_note: str) -> dict[str, Any]:
    """The machine state a sweep ran in (start); ``run_sweep`` adds the end state. Never initialises CUDA."""
    kind = config.device_kind
    env: dict[str, Any] = {
        "device_kind": kind, "device": config.device, "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
        **_tf32_and_cudnn(kind), "nvml": nvml_note, "warnings": [],
    }
    if kind == "cpu":
        available = mem_available_bytes()
        env.update(cpu=cpu_model(), cpu_count=os.cpu_count(),
                   mem_available_mib=round(available / MIB, 1) if available else None,
                   rss_method=_CpuMemory(None).method)
        return env
    if nvml is not None:
        env["gpu"] = nvml.static_info()
        env["start"] = nvml.dynamic_info()
        others = nvml.other_processes()
        env["other_processes"] = others
        if others:
            pids = ", ".join(str(p["pid"]) for p in others)
            env["warnings"].append(f"{len(others)} other process(es) on the GPU (pids {pids}): timings and "
                                   "NVML memory may be disturbed")
    return env


# ----------------------------------------------------------------------------------------------- run_sweep

def default_run_id(config: SpeedConfig, gpu_name: str | None = None, now: datetime | None = None) -> str:
    """The run id names the setup like timm's benchmark files.

    speed-<suite|arch-backbone>-<cpu|cuda-gpu>-<dtype>-<nchw|nhwc>[-compile]-pt<torch>-<UTC time>
    """
    c = config.resolved()
    if c.suite:
        what = c.suite
    elif 1 <= len(c.targets) <= 3:
        what = "-".join(t.label for t in c.targets)
    else:
        what = f"{len(c.targets)}models"
    kind = c.device_kind
    device = kind if kind == "cpu" or not gpu_name else f"cuda-{_slug(gpu_name)}"
    torch_tag = "pt" + "".join(re.findall(r"\d+", torch.__version__.split("+")[0])[:3])
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    parts = ["speed", _slug(what), device, c.dtype, "nhwc" if c.channels_last else "nchw"]
    parts += ["compile"] if c.compile else []
    return "-".join(parts + [torch_tag, stamp])


def _slug(text: str) -> str:
    text = re.sub(r"^nvidia\s+", "", text.strip(), flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _preflight(config: SpeedConfig) -> None:
    """Every error we can see before the first (possibly hour-long) measurement, with what was expected."""
    from architectures import available_models, model_options

    if not config.targets:
        raise ValueError("a speed sweep needs at least one model (targets is empty)")
    if config.dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {config.dtype!r}")
    kind = config.device_kind
    if kind not in ("cuda", "cpu"):
        raise ValueError(f"device must be cuda, cuda:N, cpu or auto, got {config.device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {config.device!r} requested but torch.cuda.is_available() is False "
                         "(use --device cpu)")
    for name, value, minimum in (("warmup", config.warmup, 1), ("repeats", config.repeats, 1),
                                 ("max_batch", config.max_batch, 1)):
        if value is None or value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if config.max_memory_mib is not None and config.max_memory_mib <= 0:
        raise ValueError(f"max_memory_mib must be positive, got {config.max_memory_mib}")
    models = available_models()
    problems = []
    for t in config.targets:
        if t.arch not in models:
            problems.append(f"{t.label}: unknown architecture {t.arch!r} "
                            f"(available: {', '.join(sorted(models))})")
        elif t.backbone not in models[t.arch]:
            problems.append(f"{t.label}: {t.arch} has no backbone {t.backbone!r} "
                            f"(available: {', '.join(models[t.arch])})")
        else:
            unknown = sorted(set(t.options) - set(model_options(t.arch)))
            if unknown:
                problems.append(f"{t.label}: unknown option(s) {', '.join(unknown)} for {t.arch} "
                                f"(valid: {', '.join(model_options(t.arch)) or 'none'})")
    if problems:
        raise ValueError("cannot sweep:\n  " + "\n  ".join(problems))


def _config_path(out_dir: Path) -> Path:
    """config.json, unless the directory already holds another producer's (a training run's) config.json."""
    path = out_dir / "config.json"
    if path.exists():
        try:
            if json.loads(path.read_text()).get("kind") == "speed":
                return path
        except (OSError, ValueError):
            pass
        return out_dir / "speed_config.json"
    return path


def columns_markdown() -> str:
    """speed_columns.md: the definitions of every column of speed.csv and speed_summary.csv."""
    lines = ["# Columns of speed.csv and speed_summary.csv (bench speed)", "",
             "Memory in MiB (2^20 bytes), speed in images/s, times in ms. Empty cells: not applicable.", ""]
    for title, columns in (("speed.csv (one row per model and batch size)", POINT_COLUMNS),
                           ("speed_summary.csv (Table 2: one row per model)", SUMMARY_COLUMNS)):
        lines += [f"## {title}", "", "| column | meaning |", "|---|---|"]
        lines += [f"| `{k}` | {v} |" for k, v in columns.items()]
        lines.append("")
    return "\n".join(lines)


def _rows(records: Sequence[SpeedPoint | SpeedSummary]) -> list[dict[str, Any]]:
    def clean(v: Any) -> Any:
        if isinstance(v, float):
            return None if math.isnan(v) else float(f"{v:.7g}")  # 7 significant digits
        return v
    return [{k: clean(v) for k, v in asdict(r).items()} for r in records]


def _describe_point(p: SpeedPoint) -> str:
    head = f"  b={p.batch:<5} {p.phase:<6} {p.status:<5}"
    if p.status != "ok":
        return f"{head} {p.note}"
    if p.device_kind == "cuda":
        nvml = f" / nvml {p.nvml_used_mib:.0f}" if p.nvml_used_mib is not None else ""
        memory = f"allocated {p.peak_allocated_mib:.0f} / reserved {p.peak_reserved_mib:.0f}{nvml} MiB"
    else:
        memory = f"rss peak {p.rss_peak_mib:.0f} MiB"
    return (f"{head} {p.fps_median:9.3f} img/s (IQR {p.fps_iqr:.3f}, n={p.n_repeats}, "
            f"{p.time_median_ms:.1f} ms)  {memory}")


def _describe_summary(s: SpeedSummary) -> str:
    def num(v: float | None, fmt: str = ".2f") -> str:
        return "-" if v is None else format(v, fmt)
    return (f"  -> fps b1 {num(s.fps_b1)}, fps max {num(s.fps_max)} (b {s.fps_max_batch}), largest fit "
            f"{s.max_batch_fit} ({s.sweep_stop}), net {num(s.net_ram_mib, '.1f')} MiB, RAM/img "
            f"{num(s.ram_per_img_mib, '.1f')} MiB ({s.ram_per_img_source}, "
            f"R^2 {num(s.ram_per_img_r2, '.4f')})")


def _sweep_target(config: SpeedConfig, target: SpeedTarget, nvml: Nvml | None, baseline: int | None,
                  gpu_name: str | None, emit: Callable[[SpeedPoint], SpeedPoint],
                  say: Callable[[str], None]) -> tuple[list[SpeedPoint], str]:
    """One model's sweep, in this process or one subprocess per point; every point goes through ``emit``."""
    if config.isolate:
        return sweep_batches(lambda b, phase: emit(_measure_isolated(config, target, b, phase, gpu_name)),
                             config.batch_sizes, config.max_batch)
    try:
        session = _ModelSession(config, target, nvml, baseline)
    except Exception as exc:  # noqa: BLE001 - a model that cannot be built (or moved to the GPU) is recorded
        failed = _classify(exc)  # every point fails alike: the sweep records its first and stops
        # (an empty batch_sizes tuple sweeps like auto here, as this path always did)
        return sweep_batches(lambda b, phase: emit(_blank_point(config, target, b, phase, gpu_name, *failed)),
                             config.batch_sizes or None, config.max_batch)
    say(f"  net RAM {session.net_ram_mib:.1f} MiB (weights and buffers, {config.dtype})")
    try:
        return sweep_batches(lambda b, phase: emit(session.measure(b, phase)), config.batch_sizes,
                             config.max_batch)
    finally:
        session.close()


def run_sweep(config: SpeedConfig, out_dir: str | Path | None = None,
              progress: Callable[[str], None] | None = None, overwrite: bool = False) -> SpeedResult:
    """Sweep every target of ``config``; write speed.csv, speed_summary.csv, speed_columns.md, config.json.

    ``out_dir`` None: ``runs/<default_run_id>``. speed.csv is rewritten (atomically) after every point and
    speed_summary.csv after every model, so an interrupted sweep keeps what it measured. config.json holds
    ``{"kind": "speed", "config", "provenance", "environment"}``; if the directory already has another
    producer's config.json (a training run), ours goes to speed_config.json instead.
    """
    say = progress or (lambda _msg: None)
    config = config.resolved()
    _preflight(config)
    kind = config.device_kind
    nvml, nvml_note, baseline = _nvml_with_baseline(config)  # first: before this process touches CUDA
    notes: list[str] = []
    if kind == "cpu" and config.max_memory_mib is None:
        available = mem_available_bytes()
        if available is not None:
            limit = (rss_bytes() + CPU_DEFAULT_LIMIT_FRACTION * available) / MIB
            config = replace(config, max_memory_mib=round(limit, 1))
            notes.append(f"CPU memory cap defaulted to current RSS + {CPU_DEFAULT_LIMIT_FRACTION:.0%} of "
                         f"MemAvailable = {limit:.0f} MiB (set --max-memory-mib to change)")

    gpu_name = nvml.name() if nvml is not None else None
    out = Path(out_dir) if out_dir is not None else REPO_ROOT / "runs" / default_run_id(config, gpu_name)
    for existing in ("speed.csv", "speed_summary.csv"):
        if (out / existing).exists() and not overwrite:
            raise FileExistsError(f"{out / existing} exists; choose another --out or pass --overwrite")
    config_path = _config_path(out)

    saved_threads, saved_benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.backends.cudnn.benchmark = config.cudnn_benchmark
    try:
        environment = sweep_environment(config, nvml, nvml_note)
        environment["notes"] = notes
        environment["nvml_baseline_mib"] = round(baseline / MIB, 1) if baseline is not None else None
        # In --isolate mode the parent never touches CUDA (its context would sit on the GPU the children
        # measure); provenance then describes the GPU from NVML.
        provenance = collect_provenance("cpu" if kind == "cuda" and config.isolate else config.device,
                                        seed=config.seed)
        if kind == "cuda" and config.isolate:
            provenance["device"] = {"device": config.device, **(environment.get("gpu") or {}),
                                    "source": "nvml (parent process of --isolate keeps CUDA uninitialised)"}
        record = {"kind": "speed", "config": config.to_dict(), "provenance": provenance,
                  "environment": environment}
        write_json_atomic(config_path, record)
        write_text_atomic(out / "speed_columns.md", columns_markdown())
        for warning in environment["warnings"] + notes:
            say(f"note: {warning}")
        device_label = gpu_name if kind == "cuda" else environment.get("cpu")
        batches = (",".join(map(str, config.batch_sizes)) if config.batch_sizes
                   else f"auto (max {config.max_batch})")
        say(f"speed: {len(config.targets)} model(s) on {config.device} ({device_label or 'unknown'}), "
            f"{config.dtype}, input {config.input_hw[0]}x{config.input_hw[1]}, batches {batches}, "
            f"warmup {config.warmup}, repeats {config.repeats}{', isolated' if config.isolate else ''} "
            f"-> {out}")
        say(f"{nvml_note}")

        points: list[SpeedPoint] = []
        summaries: list[SpeedSummary] = []

        def emit(point: SpeedPoint) -> SpeedPoint:
            points.append(point)
            write_csv_atomic(out / "speed.csv", _rows(points), columns=list(POINT_COLUMNS))
            say(_describe_point(point))
            return point

        start = time.perf_counter()
        for i, target in enumerate(config.targets, 1):
            options = json.dumps(dict(target.options), sort_keys=True)
            say(f"[{i}/{len(config.targets)}] {target.label} "
                f"({target.arch}, {target.backbone}, options {options})")
            model_points, stop = _sweep_target(config, target, nvml, baseline, gpu_name, emit, say)
            summaries.append(summarize(model_points, stop))
            write_csv_atomic(out / "speed_summary.csv", _rows(summaries), columns=list(SUMMARY_COLUMNS))
            say(_describe_summary(summaries[-1]))

        if nvml is not None:
            environment["end"] = nvml.dynamic_info()
        environment["wall_time_s"] = round(time.perf_counter() - start, 1)
        write_json_atomic(config_path, record)
        say(f"wrote {out / 'speed.csv'} and {out / 'speed_summary.csv'}")
        return SpeedResult(out, points, summaries, environment)
    finally:
        torch.set_num_threads(saved_threads)
        torch.backends.cudnn.benchmark = saved_benchmark
        if nvml is not None:
            nvml.close()


# ------------------------------------------------------------------------------------------------ suites

class SpeedSuiteError(ValueError):
    """A suite's [[speed]] block is missing or malformed (the message names the file, entry and key)."""


SPEED_KEYS = {"name": str, "arch": str, "backbone": str, "options": dict}
REQUIRED_SPEED_KEYS = ("name", "arch", "backbone")


def speed_targets(suite: str | Path) -> tuple[SpeedTarget, ...]:
    """The Table 2 models of a suite: its ``[[speed]]`` entries (name, arch, backbone, optional options).

    ``suite`` is a suite name (``bench/suites/<name>.toml``) or a path to a TOML file.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    path = Path(suite)
    if path.suffix != ".toml":
        path = SUITES_DIR / f"{suite}.toml"
    if not path.is_file():
        known = available_suites()
        raise SpeedSuiteError(f"suite {str(suite)!r} not found at {path} "
                              f"(available: {', '.join(known) or 'none'})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SpeedSuiteError(f"{path}: invalid TOML: {e}") from None
    entries = data.get("speed")
    if entries is None:
        raise SpeedSuiteError(f"{path}: no [[speed]] entries (expected an array of tables with keys "
                              f"{', '.join(SPEED_KEYS)})")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise SpeedSuiteError(f"{path}: 'speed' must be a non-empty array of tables ([[speed]])")
    targets, seen = [], set()
    for i, entry in enumerate(entries, 1):
        where = f"{path}: [[speed]] entry {i}"
        if isinstance(entry.get("name"), str):
            where += f" ({entry['name']!r})"
        unknown = sorted(set(entry) - set(SPEED_KEYS))
        if unknown:
            raise SpeedSuiteError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                                  f"allowed: {', '.join(SPEED_KEYS)}")
        for key in REQUIRED_SPEED_KEYS:
            if key not in entry:
                raise SpeedSuiteError(f"{where}: missing required key {key!r}")
        for key, kind in SPEED_KEYS.items():
            if key in entry and not isinstance(entry[key], kind):
                raise SpeedSuiteError(f"{where}: {key!r} must be a {'table' if kind is dict else 'string'}, "
                                      f"got {type(entry[key]).__name__} {entry[key]!r}")
        if entry["name"] in seen:
            raise SpeedSuiteError(f"{where}: duplicate name {entry['name']!r}")
        seen.add(entry["name"])
        targets.append(SpeedTarget(arch=entry["arch"], backbone=entry["backbone"],
                                   options=dict(entry.get("options", {})), name=entry["name"]))
    return tuple(targets)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--point":
        sys.exit(_point_main(sys.argv[2]))
    sys.exit("usage: python -m bench.speed --point <json>  (internal: one --isolate point)")
