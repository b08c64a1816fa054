"""What produced a result: code version, library versions, device, data file, seed, time.

Recorded in every run directory so any number in a report can be traced back.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import socket
import subprocess
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.paths import REPO_ROOT

if TYPE_CHECKING:  # imported where used, so that utc_now & co. cost no torch import (bench report)
    import torch

__all__ = [
    "BUSY_LOAD_PER_CPU",
    "busy_cpu_load",
    "collect_provenance",
    "cpu_model",
    "device_info",
    "file_fingerprint",
    "git_info",
    "library_versions",
    "load_average",
    "model_options_change",
    "resolved_model_options",
    "UTC_STAMP_SUFFIX",
    "utc_now",
    "utc_stamp",
]

# CPU timings are disturbed when the 1-minute load average exceeds this per core: a sweep's own work is one
# process whose torch threads fill the cores (<= 1 per core), so more means other work shares them.
BUSY_LOAD_PER_CPU = 1.5
HEADER_BYTES = 1 << 20  # fingerprint the first MiB: identifies a multi-GB .mat without reading it all


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (os.getloadavg), rounded; None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def busy_cpu_load(loads: list[float], cpu_count: int | None) -> float | None:
    """The highest of ``loads`` (1-minute load averages) when it exceeds BUSY_LOAD_PER_CPU x ``cpu_count``, else
    None: CPU timings taken then are disturbed by other work, and DRNet / RSIDE fps ratios with them."""
    if not loads or not cpu_count:
        return None
    peak = max(loads)
    return peak if peak > BUSY_LOAD_PER_CPU * cpu_count else None


def git_info(root: Path = REPO_ROOT) -> dict[str, Any]:
    """Commit hash and whether the working tree had uncommitted changes (None outside a git checkout)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def library_versions() -> dict[str, str | None]:
    """Versions of Python and the libraries that can change a number."""

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "timm": version("timm"),
        "numpy": version("numpy"),
        "h5py": version("h5py"),
        "cuda": torch.version.cuda,
        "cudnn": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None,
        "drnet-bench": version("drnet-bench"),
    }


def device_info(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Name of the device computations ran on (GPU name and driver, or the CPU model and thread count)."""
    import torch

    device = torch.device(device)
    info: dict[str, Any] = {"device": str(device), "hostname": socket.gethostname()}
    if device.type == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(device)
        info.update(
            name=props.name,
            total_memory_mib=props.total_memory // 2**20,
            capability=f"{props.major}.{props.minor}",
            driver=_nvidia_driver(),
        )
    else:
        info.update(name=cpu_model(), threads=torch.get_num_threads())
    return info


def file_fingerprint(path: str | Path) -> dict[str, Any]:
    """Size, mtime and sha256 of the first MiB of a data file (cheap identity for multi-GB files)."""
    path = Path(path)
    stat = path.stat()
    with open(path, "rb") as f:
        head = hashlib.sha256(f.read(HEADER_BYTES)).hexdigest()
    return {
        "path": str(path.resolve()),
        "bytes": stat.st_size,
        "header_sha256": head,
        "header_bytes": min(HEADER_BYTES, stat.st_size),
    }


def resolved_model_options(arch: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a model of ``arch`` is built with, as JSON: {"resolved": this code version's defaults
    (``architectures.model_options``) overlaid with the explicit ``options``, "defaults": those defaults}.

    config.json's options hold only what the suite set; a default that changes between code versions (DRNet's
    ``up2_init``) would otherwise leave two different models with identical records.
    """
    from architectures import model_options

    defaults = _json_ready(model_options(arch))
    return {"resolved": {**defaults, **_json_ready(dict(options))}, "defaults": defaults}


def model_options_change(provenance: Mapping[str, Any], arch: str, options: Mapping[str, Any]) -> str | None:
    """How the options this code would build ``arch`` with differ from those recorded in ``provenance``
    ("up2_init 'default' -> 'zero'"); None when they agree or when nothing was recorded (runs started
    before the record existed)."""
    recorded = provenance.get("model_options")
    if not isinstance(recorded, Mapping) or not isinstance(recorded.get("resolved"), Mapping):
        return None
    before, now = recorded["resolved"], resolved_model_options(arch, options)["resolved"]
    changed = [
        f"{k} {_show(before, k)} -> {_show(now, k)}"
        for k in sorted({*before, *now})
        if before.get(k, _ABSENT) != now.get(k, _ABSENT)
    ]
    return ", ".join(changed) or None


def collect_provenance(
    device: str | torch.device = "cpu",
    seed: int | None = None,
    data: dict[str, Any] | None = None,
    model_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything above in one record, with a UTC timestamp; ``model_options`` (``resolved_model_options``)
    is added when given. ``code`` is the fingerprint of the code that decides the numbers
    (``bench.codeprint.code_fingerprint``: works without git), ``processes`` the number of training processes
    torchrun started (WORLD_SIZE, as ``bench.distributed.init_distributed`` reads it): with DDP each process
    computes BatchNorm's training statistics on its share of the batch, so it can change the numbers."""
    import os

    from bench.codeprint import code_fingerprint

    record = {
        "created_utc": utc_now(),
        "git": git_info(),
        "versions": library_versions(),
        "code": code_fingerprint(),
        "processes": int(os.environ.get("WORLD_SIZE", "1")),
        "device": device_info(device),
        "platform": platform.platform(),
        "seed": seed,
        "data": data,
    }
    if model_options is not None:
        record["model_options"] = model_options
    return record


UTC_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # the UTC time that ends speed-sweep ids and moved-aside run directories
UTC_STAMP_SUFFIX = re.compile(r"-\d{8}T\d{6}Z$")  # that time at the end of a name, with its dash


def utc_stamp(now: datetime | None = None) -> str:
    """``now`` (default: the current time) as a compact UTC stamp for names, e.g. ``20261202T015918Z``."""
    return (now or datetime.now(timezone.utc)).strftime(UTC_STAMP_FORMAT)


def utc_now() -> str:
    """The current UTC time to the second, ISO 8601 (``2025-01-31T12:00:00+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


_ABSENT = object()


def _show(options: Mapping[str, Any], key: str) -> str:
    return repr(options[key]) if key in options else "(no such option)"


def _json_ready(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists), so recorded and rebuilt options compare."""
    return json.loads(json.dumps(obj, default=str))


def _nvidia_driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return None
