"""nox sessions: tests, lint, gpu, smoke, ablations, paper, regression.

Each session installs the project into its own virtualenv. ``nox -s tests`` is what CI runs (via .ci/run,
which uses the README's test command directly).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = ["3.11"]


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit and integration tests on CPU (extra pytest args after --)."""
    session.install("-e", ".[test]")
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session(python=PYTHON)
def gpu(session: nox.Session) -> None:
    """The GPU self-test: the tests marked gpu (every CUDA path in minutes; skipped without CUDA).

    AMP training, NVML sampling, the OOM search, channels_last, compile, CUDA vs CPU evaluation, DDP on 2 GPUs.
    Run it on the first machine with a GPU, before a campaign. Not a default session: CI has no GPU."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-m", "gpu", *(session.posargs or ["-q", "-rs"]))


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the whole project: lint rules, then the formatter in check mode (CI runs both)."""
    session.install("ruff>=0.4")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


# --- end-to-end sessions: bench run + bench report (README "Reproducing the paper's tables") ---------------


def _bench_run_args(session: nox.Session, default_data: str | None = None) -> list[str]:
    """Extra `bench run` options from `nox -s NAME -- ...`; adds --data DEFAULT when none is given."""
    args = list(session.posargs)
    if default_data and not any(a == "--data" or a.startswith("--data=") for a in args):
        args = ["--data", default_data, *args]
    return args


@nox.session(python=PYTHON)
def smoke(session: nox.Session) -> None:
    """The README's quickstart: bench run --suite smoke, then bench report --html (writes reports/)."""
    session.install("-e", ".")
    session.run("bench", "run", "--suite", "smoke", *_bench_run_args(session))
    session.run("bench", "report", "--suite", "smoke", "--html")


@nox.session(python=PYTHON)
def ablations(session: nox.Session) -> None:
    """Table 3: the ablations suite, then its report in reports/ablations/.

    Synthetic data by default; the paper regime with `nox -s ablations -- --data rside-csv:RSIDE_ROOT`.
    """
    session.install("-e", ".")
    session.run("bench", "run", "--suite", "ablations", *_bench_run_args(session, default_data="synthetic"))
    session.run("bench", "report", "--suite", "ablations", "--html", "--out", "reports/ablations")


@nox.session(python=PYTHON)
def paper(session: nox.Session) -> None:
    """Tables 1-3 as in the paper (GPU, RSIDE's training set, ImageNet weights), then the report in reports/paper/.

    Options after `--` go to `bench run`, e.g. `nox -s paper -- --data rside-csv:RSIDE_ROOT`.
    """
    session.install("-e", ".")
    session.run("bench", "run", "--suite", "paper", *_bench_run_args(session))
    session.run("bench", "report", "--suite", "paper", "--html", "--out", "reports/paper")


@nox.session(python=PYTHON)
def regression(session: nox.Session) -> None:
    """Tiny deterministic CPU runs compared with tests/baselines/regression.json (fails past tolerance)."""
    session.install("-e", ".")
    tmp = Path(session.create_tmp())
    shutil.rmtree(tmp / "runs", ignore_errors=True)  # never compare stale runs
    one_thread = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # the baselines were made with 1 thread
    session.run(
        "bench", "run", "--suite", "regression", "--runs-dir", str(tmp / "runs"), *session.posargs, env=one_thread
    )
    session.run(
        "bench",
        "report",
        "--suite",
        "regression",
        "--runs",
        str(tmp / "runs"),
        "--out",
        str(tmp / "reports"),
        "--check-baselines",
    )
