"""``bench list``: every shipped suite with its description, defaults, runs and speed entries. Torch-free."""

from __future__ import annotations

import textwrap

from bench.config import ConfigError
from bench.suite import available_suites, load_suite

__all__ = ["list_suites"]


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
