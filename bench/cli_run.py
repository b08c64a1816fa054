"""What ``bench run`` and ``bench list`` do, behind the thin click commands in ``bench/cli.py``.

``run_command`` turns options into RunConfigs (suite -> --only -> --seeds -> overrides), checks the whole
plan before anything starts (exit code 2 with every problem listed; ``--dry-run`` too), moves existing run
directories aside with ``--rerun``, runs it (exit code 1 if any run failed; complete runs with the same
config are reused), runs the suite's Table 2 speed sweeps through ``bench.speed``, and prints a summary table.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any, TextIO

from bench.config import ConfigError, RunConfig
from bench.suite import Suite, available_suites, load_suite, matches, select_runs, with_overrides, with_seeds

__all__ = ["list_suites", "parse_seeds", "plan_from_options", "run_command"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_PLAN = 0, 1, 2


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
    """(training runs, speed entries) selected and overridden as the command line asks."""
    speed = _select_speed(suite.speed, only)
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


def run_command(
    suite_name: str,
    data_spec: str | None = None,
    device: str | None = None,
    epochs: int | None = None,
    max_steps: int | None = None,
    only: str | None = None,
    seeds: str | None = None,
    weights: str | None = None,
    workers: int | None = None,
    runs_dir: str | Path = "runs",
    dry_run: bool = False,
    resume: bool = False,
    speed: bool = True,
    stream: TextIO | None = None,
    rerun: bool = False,
    launch: dict[str, Any] | None = None,
) -> int:
    """``bench run``; returns the exit code (0 ok, 1 a run failed, 2 the plan cannot run).

    ``rerun`` moves the planned runs' existing directories to runs/.old/ first and trains them again.
    ``launch``: launcher options (``bench.launch.launch_options``); None or launcher "inline" runs the plan
    in this process as always.
    """
    out = stream if stream is not None else sys.stdout
    runs_dir = Path(runs_dir)
    try:
        suite = load_suite(suite_name)
        configs, speed_entries = plan_from_options(
            suite, data_spec, device, epochs, max_steps, only, seeds, weights, workers
        )
    except (ConfigError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=out)
        return EXIT_BAD_PLAN
    # torch comes in only from here on: a mistyped suite or option is reported without loading it
    from bench.distributed import init_distributed, shutdown_distributed
    from bench.runner import preflight, run_plan, summary_table

    speed_entries = speed_entries if speed else []
    if dry_run:
        from bench.plan import describe_plan
        from bench.runner import check_data

        problems = preflight(configs, runs_dir, resume, with_data=False, rerun=rerun) + check_data(
            configs, generate=False
        )
        print(
            describe_plan(
                suite.name,
                suite.description,
                configs,
                _defaults_after(suite, configs),
                speed_entries,
                runs_dir,
                problems,
            ),
            file=out,
        )
        return EXIT_BAD_PLAN if problems else EXIT_OK
    if launch:
        from bench.launch import launch_command

        code = launch_command(suite, configs, speed_entries, runs_dir, resume, launch, out)
        if code >= 0:
            return code
    info = init_distributed(configs[0].device if configs else "cpu")
    try:
        problems, moved = _preflight_in_turn(configs, runs_dir, resume, info, rerun)
        if problems:
            if info.is_main:
                print(f"error: {len(problems)} problem(s); nothing was run:", file=out)
                for p in problems:
                    print(f"  - {p}", file=out)
            return EXIT_BAD_PLAN
        if info.is_main:
            for old, new in moved:
                print(f"moved {old} aside to {new} (--rerun)", file=out)
        outcomes = run_plan(configs, runs_dir, resume, info, out)
        speed_ok = True
        if speed_entries and info.is_main:
            if info.enabled:
                print("speed sweeps are not run under torchrun; run `bench speed` in one process", file=out)
            else:
                speed_ok = run_speed(suite, speed_entries, device, runs_dir, out, rerun)
        if info.is_main:
            if outcomes:
                print("\nsummary (headline = the protocol's own reduction)", file=out)
                print(summary_table(outcomes), file=out)
        failed = any(o.status == "failed" for o in outcomes) or not speed_ok
        return EXIT_FAILED if failed else EXIT_OK
    finally:
        shutdown_distributed()


def _preflight_in_turn(
    configs: list[RunConfig], runs_dir: Path, resume: bool, info, rerun: bool = False
) -> tuple[list[str], list[tuple[Path, Path]]]:
    """Rank 0 checks (and generates the default synthetic file if needed) and, with ``rerun`` and no problem,
    moves existing run directories aside; every rank gets (problems, moved)."""
    from bench.distributed import on_rank0
    from bench.runner import move_aside, preflight

    def check() -> tuple[list[str], list[tuple[Path, Path]]]:
        problems = preflight(configs, runs_dir, resume, rerun=rerun)
        return problems, (move_aside(configs, runs_dir) if rerun and not problems else [])

    return on_rank0(info, check)


def run_speed(
    suite: Suite, entries: list[dict[str, Any]], device: str | None, runs_dir: Path, out: TextIO, rerun: bool = False
) -> bool:
    """The suite's [[speed]] entries through bench.speed (Table 2); False if the sweep failed.

    A complete CPU sweep of the same setup on this CPU is reused, as complete training runs are, unless
    ``rerun``: then a new sweep is measured beside it, and the report uses the latest of the two."""
    from bench import speed as speed_lib

    names = [e["name"] for e in entries]

    print(f"\n=== speed sweeps: {', '.join(names)} ===", file=out, flush=True)
    try:
        targets = tuple(t for t in speed_lib.speed_targets(suite) if t.label in names)  # the parsed entries
        config = speed_lib.SpeedConfig(targets=targets, device=device or "auto", suite=suite.name)
        found = None if rerun else speed_lib.reusable_sweep(config, runs_dir)
        if found is not None:
            print(
                f"reusing {found}: complete, same settings on this CPU (--rerun measures again)", file=out, flush=True
            )
            return True
        out_dir = runs_dir / speed_lib.default_run_id(config)
        speed_lib.run_sweep(config, out_dir, progress=lambda msg: print(msg, file=out, flush=True))
    except Exception as exc:
        print(f"speed sweeps FAILED: {type(exc).__name__}: {exc}", file=out)
        return False
    print(f"speed results in {out_dir}", file=out)
    return True


def list_suites() -> str:
    """Every suite with its description, runs and speed entries."""
    lines = []
    for name in available_suites():
        try:
            suite = load_suite(name)
        except ConfigError as exc:
            lines += [f"{name}: INVALID: {exc}", ""]
            continue
        d = suite.defaults
        lines.append(f"{name}  ({len(suite.runs)} run(s), {len(suite.speed)} speed sweep(s))")
        lines += textwrap.wrap(suite.description, width=100, initial_indent="  ", subsequent_indent="  ")
        lines.append(
            f"  defaults: data {d.data}{':' + d.data_path if d.data_path else ''}, protocol {d.protocol}, "
            f"device {d.device}, weights {d.weights}, {d.epochs} epochs, batch {d.batch_size}, "
            f"lr {d.lr:g}, seed {d.seed}"
        )
        for r in suite.runs:
            options = ", ".join(f"{k}={v}" for k, v in r.options.items())
            tables = f"  [{', '.join(r.tables)}]" if r.tables else ""
            lines.append(f"    {r.name:<36} {r.arch}-{r.backbone}" + (f" ({options})" if options else "") + tables)
        for s in suite.speed:
            lines.append(f"    speed: {s['name']:<29} {s['arch']}-{s['backbone']}")
        lines.append("")
    return "\n".join(lines).rstrip()


def _select_speed(entries: tuple[dict[str, Any], ...], only: str | None) -> list[dict[str, Any]]:
    return [e for e in entries if matches(e["name"], only)] if only else list(entries)


def _defaults_after(suite: Suite, configs: list[RunConfig]) -> RunConfig:
    """The suite defaults with the same command-line overrides as the runs (for the dry-run's header)."""
    if not configs:
        return suite.defaults
    first = configs[0]
    shared = {
        k: getattr(first, k)
        for k in ("data", "data_path", "device", "weights", "num_workers", "epochs", "max_steps")
        if all(getattr(c, k) == getattr(first, k) for c in configs)
    }
    return suite.defaults.replace(**_cpu_without_amp(shared))


def _cpu_without_amp(changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` plus ``amp = "none"`` when they move a config to the CPU (AMP is CUDA-only), applied with the
    device in one replace so the config never holds the invalid pair."""
    return {**changes, "amp": "none"} if changes.get("device") == "cpu" else changes
