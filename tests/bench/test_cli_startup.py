"""Commands that never run a model (argument errors, --help, list, report) must not import torch.

Each case runs ``python -m bench ...`` in a fresh interpreter and reports whether torch ended up in
``sys.modules``; importing torch costs seconds, which is what a mistyped suite name used to take.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# run the CLI in-process, then print whether torch (or torchvision) was imported on the way
PROBE = """
import json, runpy, sys
sys.argv = ["bench", *json.loads(sys.argv[1])]
code = 0
try:
    runpy.run_module("bench", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "heavy": sorted(m for m in ("torch", "torchvision") if m in sys.modules)}))
"""


def probe(*args: str) -> tuple[dict, str]:
    """(exit code and heavy modules imported, the whole stdout) of ``bench *args`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("list",),
        ("run", "--help"),
        ("report", "--help"),
        ("speed", "--help"),
        ("import", "rside-checkpoint", "--help"),
    ],
    ids=" ".join,
)
def test_help_and_list_do_not_import_torch(args):
    result, out = probe(*args)
    assert result == {"code": 0, "heavy": []}, out


def test_unknown_suite_is_reported_without_importing_torch():
    result, out = probe("run", "--suite", "typo")
    assert "unknown suite 'typo'" in out
    assert result == {"code": 2, "heavy": []}


def test_bad_option_is_reported_without_importing_torch():
    result, out = probe("run", "--suite", "regression", "--seeds", "a,b")
    assert "--seeds 'a,b'" in out
    assert result == {"code": 2, "heavy": []}


def report_fixtures():
    """tests/bench/report/conftest.py as a module (its run-directory writers; they use torch, here only)."""
    spec = importlib.util.spec_from_file_location("report_fixtures", ROOT / "tests/bench/report/conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_writes_its_tables_and_html_without_importing_torch(tmp_path):
    fixtures = report_fixtures()
    runs, out_dir = tmp_path / "runs", tmp_path / "reports"
    for arch in ("rside", "drnet"):
        fixtures.write_eval_run(runs, "smoke", f"{arch}-resnet18", arch, "resnet18")
    result, out = probe("report", "--runs", str(runs), "--out", str(out_dir), "--html")
    assert result == {"code": 0, "heavy": []}, out
    assert {"table1.csv", "report.html"} <= {p.name for p in out_dir.iterdir()}
