"""Where things are: the code root, the default runs directory, and the import path of child processes.

The one owner of these paths. ``DEFAULT_RUNS_DIR`` is relative to the working directory for every command
(``bench run``, ``bench speed`` without ``--out``, ``bench status``, ``bench report``, ``bench import``).
Child processes (submitit jobs, ``bench speed`` subprocesses) import the same code as their parent: the code
root goes first on their PYTHONPATH. Torch-free; imports nothing from ``bench``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_RUNS_DIR", "REPO_ROOT", "child_env", "code_pythonpath", "pythonpath_export_line"]

REPO_ROOT = Path(__file__).resolve().parents[1]  # holds the bench and architectures packages this process runs
DEFAULT_RUNS_DIR = Path("runs")  # run directories, relative to the working directory


def code_pythonpath(current: str | None) -> str:
    """``current`` (a PYTHONPATH value, or None) with the code root first."""
    return os.pathsep.join(p for p in (str(REPO_ROOT), current) if p)


def child_env() -> dict[str, str]:
    """A child process's environment: this process's, with the code root first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = code_pythonpath(env.get("PYTHONPATH"))
    return env


def pythonpath_export_line() -> str:
    """The shell line that puts the code root first on PYTHONPATH (sbatch scripts: the node's own value kept)."""
    return f"export PYTHONPATH={REPO_ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"
