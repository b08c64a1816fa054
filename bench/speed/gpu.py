"""NVML (``import pynvml``, from the nvidia-ml-py distribution): device memory, clocks, power, processes.

``bench speed`` uses it for the third memory number of Table 2 (device memory used, as nvidia-smi shows it,
which adds the CUDA context and PyTorch's cache to the tensors), and to record the GPU's state around a
sweep. Nothing here initialises CUDA: handles are resolved from ``CUDA_VISIBLE_DEVICES`` so that a baseline
can be read before the process creates its CUDA context. Without NVML (no driver, no GPU, no library)
``open_nvml`` returns ``None`` and a note saying why; callers record the note instead of failing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from bench.speed.memory import MIB

__all__ = ["Nvml", "open_nvml"]


class Nvml:
    """An initialised NVML session bound to the GPU that CUDA device ``cuda_index`` of this process names."""

    def __init__(self, module: Any, handle: Any, selector: str):
        self.nvml = module
        self.handle = handle
        self.selector = selector  # how the handle was found, e.g. "index 0" or "uuid GPU-..."

    def used_bytes(self) -> int:
        """Device memory in use by all processes (bytes), as nvidia-smi reports it."""
        return int(self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used)

    def name(self) -> str | None:
        return self._get(self.nvml.nvmlDeviceGetName, self.handle)

    def uuid(self) -> str | None:
        return self._get(self.nvml.nvmlDeviceGetUUID, self.handle)

    def static_info(self) -> dict[str, Any]:
        """What does not change during a sweep: name, UUID, driver, memory, PCI bus, limits."""
        n, h = self.nvml, self.handle
        memory = self._get(n.nvmlDeviceGetMemoryInfo, h)
        pci = self._get(n.nvmlDeviceGetPciInfo, h)
        cuda_driver = self._get(n.nvmlSystemGetCudaDriverVersion)
        power_limit_mw = self._get(n.nvmlDeviceGetPowerManagementLimit, h)
        enforced_mw = self._get(n.nvmlDeviceGetEnforcedPowerLimit, h)
        return {
            "name": self.name(),
            "uuid": self.uuid(),
            "nvml_selector": self.selector,
            "driver": self._get(n.nvmlSystemGetDriverVersion),
            "cuda_driver": f"{cuda_driver // 1000}.{cuda_driver % 1000 // 10}" if cuda_driver else None,
            "memory_total_mib": round(memory.total / MIB, 1) if memory is not None else None,
            "pci_bus_id": _text(getattr(pci, "busId", None)) if pci is not None else None,
            "power_limit_w": power_limit_mw / 1000 if power_limit_mw is not None else None,
            "enforced_power_limit_w": enforced_mw / 1000 if enforced_mw is not None else None,
            "max_sm_clock_mhz": self._get(n.nvmlDeviceGetMaxClockInfo, h, n.NVML_CLOCK_SM),
            "max_memory_clock_mhz": self._get(n.nvmlDeviceGetMaxClockInfo, h, n.NVML_CLOCK_MEM),
            "persistence_mode": self._get(n.nvmlDeviceGetPersistenceMode, h),
        }

    def dynamic_info(self) -> dict[str, Any]:
        """The GPU's state now: temperature (C), clocks (MHz), power draw (W), P-state, memory used (MiB)."""
        n, h = self.nvml, self.handle
        power_mw = self._get(n.nvmlDeviceGetPowerUsage, h)
        used = self._get(n.nvmlDeviceGetMemoryInfo, h)
        reasons = getattr(n, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            n, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        return {
            "time_unix": round(time.time(), 3),
            "temperature_c": self._get(n.nvmlDeviceGetTemperature, h, n.NVML_TEMPERATURE_GPU),
            "sm_clock_mhz": self._get(n.nvmlDeviceGetClockInfo, h, n.NVML_CLOCK_SM),
            "memory_clock_mhz": self._get(n.nvmlDeviceGetClockInfo, h, n.NVML_CLOCK_MEM),
            "power_draw_w": power_mw / 1000 if power_mw is not None else None,
            "performance_state": self._get(n.nvmlDeviceGetPerformanceState, h),
            "clock_event_reasons": self._get(reasons, h) if reasons is not None else None,
            "memory_used_mib": round(used.used / MIB, 1) if used is not None else None,
        }

    def processes(self) -> list[dict[str, Any]]:
        """Compute and graphics processes on this GPU: pid and memory used (MiB, None where NVML hides it)."""
        found: dict[int, dict[str, Any]] = {}
        for query in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            fn = getattr(self.nvml, query, None)
            for proc in (self._get(fn, self.handle) if fn is not None else None) or []:
                used = getattr(proc, "usedGpuMemory", None)
                found[int(proc.pid)] = {
                    "pid": int(proc.pid),
                    "used_mib": round(used / MIB, 1) if isinstance(used, int) else None,
                }
        return list(found.values())

    def other_processes(self) -> list[dict[str, Any]]:
        """Processes on this GPU other than ours (pids as NVML sees them: a container may remap them)."""
        return [p for p in self.processes() if p["pid"] != os.getpid()]

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception:
            pass

    def _get(self, fn: Callable | None, *args: Any) -> Any:
        """One NVML query; None where the GPU or driver does not support it (NVML raises NVMLError)."""
        if fn is None:
            return None
        try:
            return _text(fn(*args))
        except Exception:
            return None


def open_nvml(cuda_index: int = 0) -> tuple[Nvml | None, str]:
    """NVML bound to CUDA device ``cuda_index``, or (None, why not). Never initialises CUDA.

    The handle follows ``CUDA_VISIBLE_DEVICES`` (indices or GPU-/MIG- UUIDs). With plain indices it assumes
    CUDA and NVML enumerate GPUs in the same (PCI bus) order, true on one-GPU machines; ``Nvml.uuid()`` lets
    the caller check against ``torch.cuda.get_device_properties(i).uuid`` once CUDA is up.
    """
    try:
        import pynvml
    except ImportError as e:
        return None, f"NVML skipped: cannot import pynvml (install nvidia-ml-py): {e}"
    try:
        pynvml.nvmlInit()
    except Exception as e:
        return None, f"NVML skipped: nvmlInit failed ({type(e).__name__}: {e}); no NVIDIA driver or GPU here"
    try:
        handle, selector = _resolve_handle(pynvml, cuda_index)
    except Exception as e:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
        return None, f"NVML skipped: no NVML device for cuda:{cuda_index} ({type(e).__name__}: {e})"
    return Nvml(pynvml, handle, selector), f"NVML ok ({selector})"


def _resolve_handle(pynvml: Any, cuda_index: int) -> tuple[Any, str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip():
        entries = [e.strip() for e in visible.split(",") if e.strip()]
        if cuda_index >= len(entries):
            raise IndexError(f"CUDA_VISIBLE_DEVICES={visible!r} has no entry {cuda_index}")
        entry = entries[cuda_index]
        if entry.startswith(("GPU-", "MIG-")):
            return pynvml.nvmlDeviceGetHandleByUUID(entry), f"uuid {entry}"
        return pynvml.nvmlDeviceGetHandleByIndex(int(entry)), f"index {int(entry)} (CUDA_VISIBLE_DEVICES)"
    return pynvml.nvmlDeviceGetHandleByIndex(cuda_index), f"index {cuda_index}"


def _text(value: Any) -> Any:
    """Older pynvml returns bytes for strings."""
    return value.decode() if isinstance(value, bytes) else value
