"""A stand-in for ``pynvml`` (nvidia-ml-py), so the NVML code runs in CI without a GPU or driver.

It has the names ``bench.speed.gpu`` and ``bench.doctor`` call, with pynvml's signatures and return shapes
(memory info with total / used / free in bytes, versions as strings, old pynvml's bytes for names). Inject it
with ``monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(...))``. Every call is recorded in ``calls``.
"""

from __future__ import annotations

import types
from types import SimpleNamespace

MIB = 2**20
H100 = ("NVIDIA H100 80GB HBM3", 80 * 1024)  # (name, memory in MiB)


class NVMLError(Exception):
    pass


def fake_pynvml(
    used_mib=(1000,),
    processes=(),
    fail_init=False,
    unsupported=(),
    devices=(H100,),
    driver="550.54.15",
    cuda_driver=12040,
):
    """A module with pynvml's names: ``devices`` GPUs (name, MiB), whose used memory follows ``used_mib`` (then
    stays at its last value); ``processes`` (pid, MiB) run on each; queries named in ``unsupported`` raise
    NVMLError("Not Supported") as real GPUs do for what they lack; ``fail_init`` is a machine without a driver."""
    m = types.ModuleType("pynvml")
    m.NVMLError = NVMLError
    m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM, m.NVML_TEMPERATURE_GPU = 0, 1, 0
    m.calls = []
    used = list(used_mib)
    state = {"init": 0}

    def api(name, result):
        def fn(*args):
            m.calls.append((name, args))
            if name in unsupported:
                raise NVMLError("Not Supported")
            return result(*args) if callable(result) else result

        setattr(m, name, fn)

    def init():
        if fail_init:
            raise NVMLError("NVML Shared Library Not Found")
        state["init"] += 1

    def index(handle):
        return int(str(handle).rsplit("-", 1)[1])

    def by_index(i):
        if not 0 <= i < len(devices):
            raise NVMLError("Invalid Argument")
        return f"handle-{i}"

    def memory(handle):
        value = used.pop(0) if len(used) > 1 else used[0]
        total = devices[index(handle)][1] if str(handle).startswith("handle-") else devices[0][1]
        return SimpleNamespace(total=total * MIB, used=value * MIB, free=(total - value) * MIB)

    def name(handle):
        return devices[index(handle)][0].encode() if str(handle).startswith("handle-") else devices[0][0].encode()

    api("nvmlInit", init)
    api("nvmlShutdown", None)
    api("nvmlDeviceGetCount", len(devices))
    api("nvmlDeviceGetHandleByIndex", by_index)
    api("nvmlDeviceGetHandleByUUID", lambda u: f"uuid-handle-{u}")
    api("nvmlDeviceGetMemoryInfo", memory)
    api("nvmlDeviceGetName", name)  # old pynvml returns bytes
    api("nvmlDeviceGetUUID", lambda h: f"GPU-{1234 + index(h)}" if str(h).startswith("handle-") else "GPU-1234")
    api("nvmlSystemGetDriverVersion", driver)
    api("nvmlSystemGetCudaDriverVersion", cuda_driver)
    api("nvmlDeviceGetPciInfo", SimpleNamespace(busId=b"00000000:3B:00.0"))
    api("nvmlDeviceGetPowerManagementLimit", 700000)
    api("nvmlDeviceGetEnforcedPowerLimit", 700000)
    api("nvmlDeviceGetMaxClockInfo", lambda h, clock: 1980 if clock == 0 else 2619)
    api("nvmlDeviceGetClockInfo", lambda h, clock: 1755 if clock == 0 else 2619)
    api("nvmlDeviceGetPersistenceMode", 1)
    api("nvmlDeviceGetTemperature", 41)
    api("nvmlDeviceGetPowerUsage", 71234)
    api("nvmlDeviceGetPerformanceState", 0)
    api("nvmlDeviceGetCurrentClocksEventReasons", 0)
    api(
        "nvmlDeviceGetComputeRunningProcesses",
        [SimpleNamespace(pid=p, usedGpuMemory=mib * MIB) for p, mib in processes],
    )
    api("nvmlDeviceGetGraphicsRunningProcesses", [])
    m.state = state
    return m
