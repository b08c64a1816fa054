"""The report: runs/ -> the paper's Tables 1-3 (CSV), report.html, verdicts on the paper's claims.

Modules, in data-flow order: ``runs`` (read run directories), ``repeats`` (a seed counts once), ``paper`` (the
paper's values), ``stats`` (bootstrap), ``records`` (the tables' typed rows: one documented field per CSV column,
report_columns.md), ``tables`` (Tables 1-3 and paired tests, as those rows), ``claims`` (verdicts), ``summary``
(one headline per claim of the paper), ``plots`` (matplotlib), ``html`` (jinja2), ``build`` (the ``bench
report`` pipeline), ``baselines`` (regression checks).
"""

from __future__ import annotations

from bench.report.baselines import BaselineCheck, BaselineError, check_baselines, write_baselines
from bench.report.build import NoUsableRunsError, ReportConfig, ReportResult, make_report
from bench.report.runs import RunFormatError, load_runs

__all__ = [
    "BaselineCheck",
    "BaselineError",
    "NoUsableRunsError",
    "ReportConfig",
    "ReportResult",
    "RunFormatError",
    "check_baselines",
    "load_runs",
    "make_report",
    "write_baselines",
]
