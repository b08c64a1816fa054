"""What ``bench run`` was asked (``RunRequest``) and what it will do (``Plan``), built by ``make_plan``.

A plan is the suite's runs selected and overridden as the command line says (suite -> ``--only`` ->
``--seeds`` -> ``--device`` / ``--epochs`` / ... -> ``--data`` -> ``--weights``), the suite's Table 2 speed
entries, and where and how the runs go. Torch-free: a mistyped suite or option is reported at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import ConfigError, RunConfig
from bench.paths import DEFAULT_RUNS_DIR
from bench.suite import Suite, load_suite, matches, select_runs, with_overrides, with_seeds

__all__ = ["Plan", "RunRequest", "make_plan", "parse_seeds", "plan_from_options"]


@dataclass(frozen=True)
class RunRequest:
    """Everything ``bench run`` was asked, as given on its command line (checked by ``make_plan``)."""

    suite: str  # a name from `bench list` or a path to a suite .toml file
    data_spec: str | None = None  # SOURCE[:PATH] for every run (None: the suite's)
    device: str | None = None  # cuda | cpu for every run and the speed sweeps (None: the suite's / auto)
    epochs: int | None = None
    max_steps: int | None = None
    only: str | None = None  # shell patterns, comma-separated, matched against run and speed entry names
    seeds: str | None = None  # "0,1,2": every run once per seed (None: the suite's seeds)
    weights: str | None = None  # none | imagenet | PATH (None: the suite's)
    workers: int | None = None  # DataLoader worker processes
    runs_dir: Path = DEFAULT_RUNS_DIR
    dry_run: bool = False  # print the plan and its cost; run nothing
    resume: bool = False  # continue interrupted runs from their checkpoints
    rerun: bool = False  # move existing run directories aside and train again
    speed: bool = True  # run the suite's [[speed]] sweeps after the runs
    fetch: bool = False  # download the data and ImageNet weights the runs lack first (bench.fetch; never implied)
    launch: Mapping[str, Any] = field(default_factory=dict)  # launcher options given (bench.launchers.options)


@dataclass(frozen=True)
class Plan:
    """The runs to carry out, the speed sweeps after them, and where and how."""

    suite: Suite
    configs: tuple[RunConfig, ...]
    speed: tuple[dict[str, Any], ...]  # [[speed]] entries to sweep (none with --no-speed)
    runs_dir: Path
    resume: bool = False
    rerun: bool = False
    device: str | None = None  # --device, also for the speed sweeps (None: auto)

    @property
    def defaults(self) -> RunConfig:
        """The suite defaults with the command-line overrides every run shares (the dry run's header)."""
        if not self.configs:
            return self.suite.defaults
        first = self.configs[0]
        shared = {
            k: getattr(first, k)
            for k in ("data", "data_path", "device", "weights", "num_workers", "epochs", "max_steps")
            if all(getattr(c, k) == getattr(first, k) for c in self.configs)
        }
        return self.suite.defaults.replace(**_cpu_without_amp(shared))


def make_plan(request: RunRequest) -> Plan:
    """The plan of ``request``; ConfigError (or ValueError / KeyError from the suite) says what is wrong."""
    suite = load_suite(request.suite)
    configs, speed = plan_from_options(
        suite,
        request.data_spec,
        request.device,
        request.epochs,
        request.max_steps,
        request.only,
        request.seeds,
        request.weights,
        request.workers,
    )
    return Plan(
        suite=suite,
        configs=tuple(configs),
        speed=tuple(speed) if request.speed else (),
        runs_dir=Path(request.runs_dir),
        resume=request.resume,
        rerun=request.rerun,
        device=request.device,
    )


def plan_from_options(
    suite: Suite,
    data_spec: str | None = None,
    device: str | None = None,
    epochs: int | None = None,
    max_steps: int | None = None,
    only: str | None = None,
    seeds: str | None = None,
    weights: str | None = None,
    workers: int | None = None,
) -> tuple[list[RunConfig], list[dict[str, Any]]]:
    """(training runs, speed entries) of ``suite`` selected and overridden as the command line asks."""
    speed = [e for e in suite.speed if matches(e["name"], only)] if only else list(suite.speed)
    runs = list(suite.runs)
    if only:
        try:
            runs = select_runs(runs, only)
        except ConfigError:
            if not speed:
                raise ConfigError(
                    f"--only {only!r} matches nothing in suite {suite.name}; runs: "
                    f"{', '.join(suite.run_names()) or 'none'}; speed: "
                    f"{', '.join(s['name'] for s in suite.speed) or 'none'}"
                ) from None
            runs = []
    chosen_seeds = parse_seeds(seeds)  # --seeds overrides the suite's seeds
    runs = with_seeds(runs, chosen_seeds if chosen_seeds is not None else (list(suite.seeds) if suite.seeds else None))
    changes = {"device": device, "epochs": epochs, "max_steps": max_steps, "num_workers": workers}
    runs = with_overrides(runs, **_cpu_without_amp(changes))
    if data_spec is not None:
        from architectures.data import parse_data_spec

        source, path = parse_data_spec(data_spec)
        runs = [r.replace(data=source, data_path=path, train_variant=None) for r in runs]  # the data decides
    if weights is not None:
        runs = [r.replace(weights=None if weights.lower() == "none" else weights) for r in runs]
    return runs, speed


def parse_seeds(text: str | None) -> list[int] | None:
    """ "0,1,2" -> [0, 1, 2]; None -> None."""
    if text is None:
        return None
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r}: expected distinct non-negative integers, e.g. 0,1,2")
    return seeds


def _cpu_without_amp(changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` plus ``amp = "none"`` when they move a config to the CPU (fp16 is CUDA-only; a suite's bf16 is
    meant for its GPU), applied with the device in one replace so the config never holds an invalid pair."""
    return {**changes, "amp": "none"} if changes.get("device") == "cpu" else changes
