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


# --- suites: `nox -s smoke` etc. run `bench run --suite <name>` (extra bench options after --) ------------

def _suite(session: nox.Session, name: str) -> None:
    session.install("-e", ".")
    session.run("bench", "run", "--suite", name, *session.posargs)


@nox.session(python=PYTHON)
def smoke(session: nox.Session) -> None:
    """RSIDE + DRNet on ResNet-18, synthetic rooms, CPU: minutes."""
    _suite(session, "smoke")


@nox.session(python=PYTHON)
def regression(session: nox.Session) -> None:
    """Tiny deterministic CPU runs (CI-sized)."""
    _suite(session, "regression")


@nox.session(python=PYTHON)
def ablations(session: nox.Session) -> None:
    """Table 3: DRNet-ResNet-152 with each switch off (GPU, NYU data, ImageNet weights)."""
    _suite(session, "ablations")


@nox.session(python=PYTHON)
def paper(session: nox.Session) -> None:
    """Tables 1-3 (GPU, NYU data, ImageNet weights); e.g. `nox -s paper -- --dry-run`."""
    _suite(session, "paper")
