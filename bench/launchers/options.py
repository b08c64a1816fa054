"""``bench run``'s launcher options: ``LaunchOptions`` from the command line, and which options go with which
launcher. Torch-free."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.config import ConfigError

__all__ = [
    "LAUNCHERS",
    "LaunchOptions",
    "check_options",
    "launch_options",
    "parse_slurm_args",
    "parse_time_minutes",
]

LAUNCHERS = ("inline", "local", "slurm")
SUBMITIT_MISSING = (
    "--launcher local/slurm needs submitit: pip install 'drnet-bench[cluster]' (or pip install 'submitit>=1.5')"
)


@dataclass(frozen=True)
class LaunchOptions:
    """How runs are handed out: launcher, resources per run, and whether to wait for the results."""

    launcher: str = "inline"  # inline | local | slurm
    gpus_per_run: int = 1  # > 1: one DDP task per GPU (on the CPU: that many gloo processes)
    max_parallel: int | None = None  # local: runs at once (default: one per GPU group, 1 on the CPU)
    partition: str | None = None
    cpus_per_gpu: int | None = None  # SLURM --cpus-per-task of each task (one task per GPU)
    mem: str | None = None  # SLURM --mem, e.g. 64G
    time_min: int | None = None  # SLURM --time in minutes (local: each job's limit)
    account: str | None = None
    qos: str | None = None
    slurm_args: dict[str, str] = field(default_factory=dict)  # any other sbatch option, key -> value
    wait: bool = False  # slurm: wait for the jobs, then print the summary (local always waits)


FLAGS = {  # LaunchOptions field -> its command-line option
    "partition": "--partition",
    "mem": "--mem",
    "cpus_per_gpu": "--cpus-per-gpu",
    "account": "--account",
    "qos": "--qos",
    "time_min": "--time",
    "max_parallel": "--max-parallel",
    "slurm_args": "--slurm-arg",
    "wait": "--wait",
    "gpus_per_run": "--gpus-per-run",
}
NOT_INLINE = ("partition", "mem", "account", "qos", "time_min", "max_parallel", "slurm_args", "wait", "gpus_per_run")
SLURM_ONLY = ("partition", "mem", "cpus_per_gpu", "account", "qos", "slurm_args")


def launch_options(
    launcher: str = "inline",
    gpus_per_run: int = 1,
    max_parallel: int | None = None,
    partition: str | None = None,
    cpus_per_gpu: int | None = None,
    mem: str | None = None,
    time: str | None = None,
    account: str | None = None,
    qos: str | None = None,
    slurm_args: Sequence[str] = (),
    wait: bool = False,
) -> LaunchOptions:
    """LaunchOptions from command-line values (--time as SLURM writes it, --slurm-arg KEY=VALUE)."""
    return LaunchOptions(
        launcher=launcher,
        gpus_per_run=gpus_per_run,
        max_parallel=max_parallel,
        partition=partition,
        cpus_per_gpu=cpus_per_gpu,
        mem=mem,
        time_min=parse_time_minutes(time),
        account=account,
        qos=qos,
        slurm_args=parse_slurm_args(slurm_args),
        wait=wait,
    )


def parse_time_minutes(text: str | None) -> int | None:
    """SLURM time ("90", "1:30:00", "2-00:00:00", "45:00") -> whole minutes (rounded up); None -> None."""
    if text is None:
        return None
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise ConfigError(f"--time {text!r}: expected minutes, MM:SS, HH:MM:SS or D-HH:MM:SS, e.g. 2-00:00:00")
    days, a, b, c = (int(g) if g is not None else None for g in match.groups())
    if c is not None:
        seconds = a * 3600 + b * 60 + c  # HH:MM:SS
    elif b is not None:
        seconds = a * 3600 + b * 60 if days is not None else a * 60 + b  # D-HH:MM or MM:SS
    else:
        seconds = a * 3600 if days is not None else a * 60  # D-HH or minutes
    seconds += (days or 0) * 86400
    if seconds <= 0:
        raise ConfigError(f"--time {text!r}: must be positive")
    return -(-seconds // 60)


def parse_slurm_args(items: Sequence[str]) -> dict[str, str]:
    """["constraint=a100", "mail-type=END"] -> {"constraint": "a100", "mail-type": "END"}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key):
            raise ConfigError(
                f"--slurm-arg {item!r}: expected KEY=VALUE with an sbatch option name, "
                f"e.g. constraint=a100 or exclude=node[01-03]"
            )
        out[key] = value
    return out


def check_options(options: LaunchOptions) -> list[str]:
    """Problems with the launcher options themselves (empty list: fine)."""
    out = []
    if options.launcher not in LAUNCHERS:
        out.append(f"--launcher {options.launcher!r}: expected one of {', '.join(LAUNCHERS)}")
    if options.mem is not None and not re.fullmatch(r"\d+(\.\d+)?[KMGT]?B?", options.mem, flags=re.I):
        out.append(f"--mem {options.mem!r}: expected a SLURM size such as 64G or 500M")
    if options.launcher == "inline" and (given := _given(options, NOT_INLINE)):
        out.append(f"{', '.join(given)} need(s) --launcher local or slurm")
    if options.launcher == "local" and (given := _given(options, SLURM_ONLY)):
        out.append(f"{', '.join(given)} need(s) --launcher slurm")
    if options.launcher == "slurm" and options.max_parallel is not None:
        out.append("--max-parallel goes with --launcher local (SLURM schedules the jobs itself)")
    if options.launcher in ("local", "slurm") and importlib.util.find_spec("submitit") is None:
        out.append(SUBMITIT_MISSING)
    return out


def _given(options: LaunchOptions, fields: Sequence[str]) -> list[str]:
    """The command-line options among ``fields`` that ``options`` sets to other than their defaults."""
    default = LaunchOptions()
    return [FLAGS[f] for f in fields if getattr(options, f) != getattr(default, f)]
