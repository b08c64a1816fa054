"""``bench run --dry-run``: the plan as text (every run, its config, data, state on disk and cost) and its
problems. Nothing is written; the cost comes from ``bench.estimate``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import MIN_EVALS_FOR_CHECK, RunConfig
from bench.datasets import DEFAULT_INPUT_SIZE
from bench.estimate import (
    CostEstimate,
    campaign_costs,
    estimate_cost,
    gpu_class_estimates,
    gpu_time_table,
    matmul_tflops,
)
from bench.outcomes import format_duration
from bench.plan import Plan
from bench.rundir import RunDir

__all__ = ["describe_plan", "run_warnings"]

HIDDEN_DEFAULTS = ("suite", "name", "tables")  # the same for every run, or said per run


def describe_plan(plan: Plan, problems: Sequence[str]) -> str:
    """The text ``--dry-run`` prints: defaults, each run with its cost, the speed sweeps, the paper tables the
    runs fill, what the seeds and the whole plan cost, and the problems to fix first."""
    base = plan.defaults.to_dict()
    lines = [f"suite {plan.suite.name}: {len(plan.configs)} training run(s), {len(plan.speed)} speed sweep(s)"]
    if plan.suite.description:
        lines.append(f"  {plan.suite.description}")
    lines += ["", "defaults (every run, unless it says otherwise):"]
    lines += [f"  {key} = {base[key]!r}" for key in sorted(base) if key not in HIDDEN_DEFAULTS]
    total = _Total()
    sizes: dict = {}  # the data's sizes, opened once per data source
    for c in plan.configs:
        lines += _run_lines(c, plan.runs_dir, base, total, sizes, judged=plan.suite.purpose != "pipeline")
    lines += _speed_lines(plan.speed) + _table_lines(plan.configs)
    lines += ["", *_seed_lines(plan.configs, total.seconds), *total.lines()]
    if total.unmeasured_gpu_tflop:  # per run and per paper table, before anything is downloaded or rented
        imported = lambda c: _safe_state(RunDir.for_config(c, plan.runs_dir)) == "imported"  # noqa: E731
        lines += gpu_time_table(campaign_costs(plan.configs, imported))
        lines.append("  (`bench doctor` checks the GPUs, disk, data and weights before a campaign)")
    if problems:
        lines += ["", f"{len(problems)} problem(s) to fix before this can run:", *(f"  - {p}" for p in problems)]
    return "\n".join(lines)


@dataclass
class _Total:
    """The plan's estimated time: seconds measured here, and FLOPs planned on a CUDA device that is not."""

    seconds: float = 0.0
    unknown: bool = False  # some run could not be timed here
    unmeasured_gpu_tflop: float = 0.0

    def add(self, cost: CostEstimate, config: RunConfig) -> None:
        if cost.seconds is not None:
            self.seconds += cost.seconds
            return
        self.unknown = True
        if config.device == "cuda" and cost.total_tflop is not None:
            self.unmeasured_gpu_tflop += cost.total_tflop

    def lines(self) -> list[str]:
        if self.seconds:
            out = [
                f"estimated time: {format_duration(self.seconds)}"
                + (" + the runs that could not be estimated" if self.unknown else "")
                + " (a lower bound: matmul throughput here)"
            ]
        elif self.unmeasured_gpu_tflop:
            out = ["estimated time on this machine: none (its runs are planned on a CUDA device it does not have)"]
        else:
            out = ["estimated time: not available (no run could be timed on this machine)"]
        return out + (gpu_class_estimates(self.unmeasured_gpu_tflop) if self.unmeasured_gpu_tflop else [])


def _run_lines(
    c: RunConfig, runs_dir: Path, base: dict[str, Any], total: _Total, sizes: dict, judged: bool = True
) -> list[str]:
    """One run: where it goes and its state there, model, data, what differs from the defaults, its cost, and
    what would keep the report from judging it (``judged``: the suite's accuracy verdicts are judged at all)."""
    rd = RunDir.for_config(c, runs_dir)
    state = _safe_state(rd)
    cost = estimate_cost(c, imported=state == "imported", sizes=sizes)
    total.add(cost, c)
    differ = {k: v for k, v in c.to_dict().items() if base.get(k) != v and k not in ("name", "seed", "suite")}
    lines = [
        "",
        f"{c.run_id}  [{', '.join(c.tables) or 'no table'}]  -> {rd.root}  ({state})",
        f"  model   {c.arch}-{c.backbone} options={dict(c.options)} weights={c.weights}",
        f"  data    {c.data}:{c.data_path or '(default)'} train={c.train_split} test={c.test_split} "
        f"protocol={c.protocol}",
    ]
    if differ:
        lines.append("  config  " + ", ".join(f"{k}={v!r}" for k, v in sorted(differ.items())))
    lines.append("  cost    " + _cost_text(cost, c))
    return lines + [f"  warning {w}" for w in run_warnings(c, imported=state == "imported", judged=judged)]


def run_warnings(c: RunConfig, imported: bool = False, judged: bool = True) -> list[str]:
    """What in a run's config keeps ``bench report`` from judging a claim on it (one line each); ``judged``
    False (a pipeline suite, whose accuracy verdicts are never judged): only the test-set selection."""
    out = []
    if c.checkpoint_select == "best":
        out.append(
            "checkpoint_select = 'best' evaluates the epoch with the best test RMSE and reports that test RMSE: "
            "weights selected on the test set, an optimistic number; the report never judges a claim on it "
            "(use 'last')"
        )
    evals = _history_evaluations(c)
    if judged and not imported and c.source != "imported" and evals < MIN_EVALS_FOR_CHECK:
        why = "eval_every_epochs = 0" if not c.eval_every_epochs else f"{c.epochs} epochs / {c.eval_every_epochs}"
        out.append(
            f"{evals} test evaluation(s) in history.csv ({why}), {MIN_EVALS_FOR_CHECK} needed for the convergence "
            "check: the report's accuracy verdicts on this run read 'not judged: convergence unknown'"
        )
    return out


def _history_evaluations(c: RunConfig) -> int:
    """Test evaluations history.csv will hold: every eval_every_epochs-th epoch and the last (bench.train)."""
    if not c.eval_every_epochs:
        return 0
    return sum(1 for e in range(1, c.epochs + 1) if e % c.eval_every_epochs == 0 or e == c.epochs)


def _speed_lines(speed: Sequence[dict[str, Any]]) -> list[str]:
    if not speed:
        return []
    lines = ["", f"Table 2 speed sweeps ({len(speed)}; run after the training runs via bench.speed):"]
    for s in speed:
        extra = "".join(f" {key}={','.join(map(str, s[key]))}" for key in ("batch_sizes", "modes") if key in s)
        lines.append(f"  {s['name']}: {s['arch']}-{s['backbone']} options={s.get('options', {})}{extra}")
    return lines


def _table_lines(configs: Sequence[RunConfig]) -> list[str]:
    """Per paper table: the runs that fill it (and their seeds)."""
    tables: dict[str, dict[str, int]] = {}  # table -> run name -> seeds
    for c in configs:
        for t in c.tables:
            names = tables.setdefault(t, {})
            names[c.name] = names.get(c.name, 0) + 1
    lines = [""] if tables else []
    for t in sorted(tables):
        counts = sorted(set(tables[t].values()))
        seeds = f" (x {', '.join(map(str, counts))} seed(s))" if max(counts) > 1 else ""
        lines.append(f"{t.replace('table', 'Table ')}: {len(tables[t])} run(s): {', '.join(tables[t])}{seeds}")
    return lines


def _seed_lines(configs: Sequence[RunConfig], total_s: float) -> list[str]:
    """What the seeds cost: entries x seeds = runs, and the time one seed of every entry takes."""
    seeds: dict[str, list[int]] = {}
    for c in configs:
        seeds.setdefault(c.name, []).append(c.seed)
    if not seeds:
        return []
    counts = sorted({len(v) for v in seeds.values()})
    per_entry = ", ".join(str(n) for n in counts)
    text = (
        f"seeds: {len(seeds)} run entr{'y' if len(seeds) == 1 else 'ies'} x {per_entry} seed(s) = "
        f"{len(configs)} training run(s)"
    )
    if max(counts) > 1 and total_s:
        text += f"; one seed of each would take ~{format_duration(total_s / max(counts))}"
    out = [text]
    if min(counts) < 3:
        out.append("  (accuracy verdicts need >= 3 seeds per compared model; with fewer they are 'inconclusive')")
    return out


def _cost_text(cost: CostEstimate, c: RunConfig) -> str:
    parts = []
    if cost.train_images is not None:
        parts.append(
            f"{cost.train_images:,} train images ({c.epochs} epochs"
            + (f", <= {c.max_steps} steps" if c.max_steps else "")
            + f", batch {c.batch_size})"
        )
    if cost.eval_images is not None:
        parts.append(f"{cost.eval_images:,} eval images")
    if cost.gflop_per_image is not None:
        h, w = c.input_size or DEFAULT_INPUT_SIZE
        parts.append(f"{cost.gflop_per_image:.1f} GFLOP/image fwd at {h}x{w}")
    if cost.total_tflop is not None:
        parts.append(f"{cost.total_tflop:,.1f} TFLOP")
    if cost.seconds is not None:
        parts.append(
            f"~{format_duration(cost.seconds)} on {c.device} (matmul {matmul_tflops(c.device):.2f} TFLOP/s here)"
        )
    if cost.note:
        parts.append(cost.note)
    return "; ".join(parts) or "unknown"


def _safe_state(rd: RunDir) -> str:
    try:
        return rd.describe()
    except Exception as exc:  # damaged config.json: say so, the preflight reports it
        return f"unreadable: {exc}"
