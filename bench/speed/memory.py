"""Peak memory of one point: the /proc readers, a peak sampler, and the CPU and CUDA probes (``MemoryProbe``).

CPU: the process's peak resident set (VmHWM reset through ``/proc/self/clear_refs``, else a 10 ms sampling
thread, else ``ru_maxrss``). CUDA: PyTorch's allocator peaks plus NVML device memory sampled on a thread.
All sizes in bytes unless a name ends in ``_mib`` (MiB, 2^20 bytes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import statistics
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:
    from bench.speed.gpu import Nvml

__all__ = [
    "MIB",
    "SAMPLE_INTERVAL_S",
    "CpuMemory",
    "CudaMemory",
    "MemoryProbe",
    "PeakSampler",
    "heap_for_measuring",
    "heap_for_timing",
    "mem_available_bytes",
    "reset_hwm",
    "rss_bytes",
    "rss_method",
]

MIB = 2**20
SAMPLE_INTERVAL_S = 0.010  # background sampling period of NVML device memory (and RSS where needed), 10 ms
M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
MEASURE_MMAP_THRESHOLD_BYTES = 64 * 1024  # memory pass: blocks from 64 KiB up are mmapped, freed to the kernel
TIMING_MMAP_THRESHOLD_BYTES = 32 * MIB  # timed passes: glibc's own ceiling, large blocks reused from the heap


def _glibc() -> ctypes.CDLL | None:
    """glibc, for mallopt and malloc_trim; None elsewhere (musl, macOS)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _glibc()


def heap_for_measuring() -> bool:
    """Before a CPU memory pass: hand freed heap back to the kernel (malloc_trim) and mmap blocks from 64 KiB up,
    so that the RSS peak tracks live tensors rather than an earlier pass's retained heap. False without glibc."""
    if _LIBC is None:
        return False
    _LIBC.malloc_trim(0)
    return bool(_LIBC.mallopt(M_MMAP_THRESHOLD, MEASURE_MMAP_THRESHOLD_BYTES))


def heap_for_timing() -> bool:
    """Before timed CPU passes: let glibc reuse large blocks from its heap again (an mmap and page faults per
    tensor slowed DRNet-R50's forward 2.6x, RSIDE's 1.2x). False without glibc."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(M_MMAP_THRESHOLD, TIMING_MMAP_THRESHOLD_BYTES))


# ----------------------------------------------------------------------------------------------- /proc


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


def reset_hwm() -> bool:
    """Reset Linux's peak-RSS counter (VmHWM) to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _proc_bytes("VmHWM") is not None
    except OSError:
        return False


def mem_available_bytes() -> int | None:
    """MemAvailable of /proc/meminfo (bytes); None where it is missing."""
    return _proc_bytes("MemAvailable", "/proc/meminfo")


def rss_method() -> str:
    """How a point's peak RSS can be taken here: clear_refs, sampled or lifetime (see the rss_method column)."""
    if reset_hwm():
        return "clear_refs"
    return "sampled" if os.path.exists("/proc/self/status") else "lifetime"


# ----------------------------------------------------------------------------------------------- sampler


class PeakSampler:
    """Samples ``read()`` (bytes) on a background thread every ``interval_s`` and keeps the maximum.

    ``reset()`` restarts the maximum from a fresh sample; ``stop()`` takes a last sample, so the peak never
    misses the state at the end. Used for NVML device memory (and for RSS where Linux cannot reset VmHWM).
    """

    def __init__(self, read: Callable[[], int], interval_s: float = SAMPLE_INTERVAL_S):
        self.read = read
        self.interval_s = interval_s
        self.peak = 0
        self.n_samples = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PeakSampler:
        self.reset()
        self._thread = threading.Thread(target=self._run, name="PeakSampler", daemon=True)
        self._thread.start()
        return self

    def reset(self) -> None:
        value = self.read()
        with self._lock:
            self.peak, self.n_samples = value, 1

    def sample(self) -> int:
        """Take one sample now; returns the peak so far (bytes)."""
        value = self.read()
        with self._lock:
            self.peak = max(self.peak, value)
            self.n_samples += 1
            return self.peak

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        return self.peak

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # a failed read must not kill the sweep; the final sample still runs
                pass


# ------------------------------------------------------------------------------------------------ probes


class MemoryProbe(Protocol):
    """Watches one point's memory: ``begin``, passes (``after_pass`` each), ``read_peaks``, ``end``."""

    def begin(self) -> None:
        """Start watching: the point's model and input are about to be used."""

    def reset_peaks(self) -> None:
        """Forget the peaks so far (before the last warm-up pass: peaks are steady-state)."""

    def after_pass(self) -> None:
        """After every untimed forward pass and after timing: wait for the device, enforce the memory cap."""

    def end_pass(self) -> None:
        """After a memory pass (one of the last warm-up passes, each after ``reset_peaks``): record its peak."""

    def before_timing(self) -> None:
        """Between the memory pass and the timed passes (CPU: the peak is taken here, the heap made fast)."""

    def read_peaks(self) -> dict[str, Any]:
        """The point's peak-memory columns of speed.csv (MiB)."""

    def end(self) -> None:
        """Stop sampling threads (also after a failed point)."""


class CpuMemory:
    """Per-point peak RSS: VmHWM reset at the point's start (Linux), else a sampling thread.

    The peak is the median over the memory passes (the last ``memory_passes`` warm-up passes, each after
    ``reset_peaks``; ``spread_bytes`` is their max - min), run with glibc set to mmap large blocks and return
    them when freed (``heap_for_measuring``); the timed passes that follow run with the heap reusing them
    (``heap_for_timing``), since an mmap per tensor costs time. Without glibc both are no-ops and the peak
    covers the timed passes too.

    ``limit_mib`` (the CPU's --max-memory-mib) makes ``after_pass`` raise ``torch.OutOfMemoryError`` once the
    point's peak RSS passed it, so a CPU sweep stops at a memory cap like a GPU one.
    """

    def __init__(self, limit_mib: float | None):
        self.limit_mib = limit_mib
        self.method = rss_method()
        self._sampler: PeakSampler | None = None
        self._pass_peaks: list[int] = []  # bytes: each memory pass's peak
        self._measured_peak: int | None = None  # bytes: the memory passes' median peak, once timing began

    def begin(self) -> None:
        if self.method == "sampled":
            self._sampler = PeakSampler(rss_bytes).start()
        self._pass_peaks = []
        self.reset_peaks()

    def reset_peaks(self) -> None:
        self._measured_peak = None
        heap_for_measuring()
        if self.method == "clear_refs":
            reset_hwm()
        elif self._sampler is not None:
            self._sampler.reset()

    def end_pass(self) -> None:
        self._pass_peaks.append(self.peak_bytes())

    def before_timing(self) -> None:
        if heap_for_timing():
            self._measured_peak = int(statistics.median(self._pass_peaks)) if self._pass_peaks else self.peak_bytes()

    @property
    def spread_bytes(self) -> int | None:
        """max - min of the memory passes' peaks (bytes); None with fewer than two passes."""
        return max(self._pass_peaks) - min(self._pass_peaks) if len(self._pass_peaks) > 1 else None

    def peak_bytes(self) -> int:
        """The point's peak RSS so far (bytes)."""
        if self.method == "clear_refs":
            return _proc_bytes("VmHWM") or rss_bytes()
        if self._sampler is not None:
            return self._sampler.sample()
        return _ru_maxrss_bytes()

    def after_pass(self) -> None:
        """Raise the real OOM exception when the point's peak RSS passed the cap (checked between passes)."""
        if self.limit_mib is None:
            return
        peak_mib = self.peak_bytes() / MIB
        if peak_mib > self.limit_mib:
            raise torch.OutOfMemoryError(
                f"CPU memory limit: peak RSS {peak_mib:.1f} MiB > --max-memory-mib {self.limit_mib:.1f}"
            )

    def read_peaks(self) -> dict[str, Any]:
        peak = self._measured_peak if self._measured_peak is not None else self.peak_bytes()
        spread = self.spread_bytes
        return {
            "rss_peak_mib": peak / MIB,
            "rss_peak_spread_mib": spread / MIB if spread is not None else None,
            "rss_method": self.method,
        }

    def end(self) -> None:
        heap_for_timing()
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None


class CudaMemory:
    """Per-point peaks from PyTorch's allocator, plus NVML device memory sampled on a thread.

    The allocator enforces --max-memory-mib itself (``set_per_process_memory_fraction``), so ``after_pass``
    only waits for the GPU. ``nvml_baseline`` (bytes used before this process's CUDA context) is subtracted
    from the NVML peak; None leaves nvml_used_mib empty.
    """

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

    def after_pass(self) -> None:
        torch.cuda.synchronize(self.device)

    def end_pass(self) -> None:
        """Nothing: the allocator's peaks (and NVML's) run on to the end of the timed passes."""

    def before_timing(self) -> None:
        """Nothing: on CUDA the peaks cover the timed passes as well."""

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
