"""nox sessions: tests, lint, smoke, ablations, paper, regression.

Each session installs the project into its own virtualenv. ``nox -s tests`` is what CI runs (via .ci/run,
which uses the README's test command directly).
"""

from __future__ import annotations

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
def lint(session: nox.Session) -> None:
    """ruff over the whole project."""
    session.install("ruff>=0.4")
    session.run("ruff", "check", ".")
