"""The code fingerprint: which files it covers, that it follows their content (not git), and that runs record it."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
from runner_fixtures import tiny_config

import architectures
import bench
from bench.codeprint import ARCHITECTURES_EXCLUDED, BENCH_NUMERICS, code_fingerprint, fingerprint_changes
from bench.codeprint import numerics_files as listed
from bench.lifecycle import execute_run
from bench.rundir import RunDir

TORCH = "2.14.1+cu130"
SHA256 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of the two packages outside any git checkout."""
    root = tmp_path_factory.mktemp("code")
    for package in (architectures, bench):
        src = Path(package.__file__).parent
        shutil.copytree(src, root / src.name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_fingerprint_covers_the_numerics_and_nothing_else():
    files = listed()
    for rel in (
        "architectures/drnet.py",
        "architectures/rside.py",
        "architectures/backbones.py",
        "architectures/losses.py",
        "architectures/data/transforms.py",
        "architectures/data/protocols.py",
        "architectures/data/synthetic.py",
        "architectures/data/splits/nyu_test_indices_1based.txt",
        *BENCH_NUMERICS,
    ):
        assert rel in files, rel
    assert not set(ARCHITECTURES_EXCLUDED) & set(files)
    assert not [k for k in files if k.startswith("bench/report/") or k in ("bench/cli.py", "bench/config.py")]
    assert list(files) == sorted(files)


def test_format_torch_files_and_digest(tree):
    fp = code_fingerprint(tree, torch_version=TORCH)
    assert set(fp) == {"torch", "files", "digest"} and fp["torch"] == TORCH
    assert set(fp["files"]) == set(listed(tree)) and all(SHA256.fullmatch(h) for h in fp["files"].values())
    assert SHA256.fullmatch(fp["digest"])
    # the copy outside git has the same fingerprint as the imported packages
    assert code_fingerprint(torch_version=TORCH)["digest"] == fp["digest"]


def test_a_numerics_edit_changes_the_digest_and_is_named(tree, tmp_path):
    before = code_fingerprint(tree, torch_version=TORCH)
    copy = tmp_path / "edited"
    shutil.copytree(tree, copy)
    (copy / "architectures/drnet.py").write_text((copy / "architectures/drnet.py").read_text() + "\n# tweak\n")
    (copy / "bench/report/claims.py").write_text("# not numerics\n")  # ignored
    (copy / "architectures/data/downloads.py").write_text("# messages only\n")  # ignored
    after = code_fingerprint(copy, torch_version=TORCH)
    assert after["digest"] != before["digest"]
    assert fingerprint_changes(before, after) == ["architectures/drnet.py"]
    newer_torch = code_fingerprint(tree, torch_version="2.15.0")
    assert newer_torch["digest"] != before["digest"]
    assert fingerprint_changes(before, newer_torch) == [f"torch {TORCH} vs 2.15.0"]
    assert fingerprint_changes(before, before) == []


def test_added_and_removed_modules_and_line_endings(tree, tmp_path):
    before = code_fingerprint(tree, torch_version=TORCH)
    copy = tmp_path / "edited"
    shutil.copytree(tree, copy)
    (copy / "architectures/newblock.py").write_text("X = 1\n")
    losses = copy / "architectures/losses.py"
    losses.write_bytes(losses.read_bytes().replace(b"\n", b"\r\n"))  # a Windows checkout: same code
    after = code_fingerprint(copy, torch_version=TORCH)
    assert fingerprint_changes(before, after) == ["architectures/newblock.py (only in the second)"]
    assert fingerprint_changes(after, before) == ["architectures/newblock.py (only in the first)"]


def test_a_listed_bench_module_that_is_gone_is_an_error(tree, tmp_path):
    copy = tmp_path / "broken"
    shutil.copytree(tree, copy)
    (copy / "bench/metrics.py").unlink()
    with pytest.raises(FileNotFoundError, match="bench/metrics.py"):
        code_fingerprint(copy, torch_version=TORCH)


def test_a_run_records_the_fingerprint_and_its_process_count(tmp_path, tiny_data):
    config = tiny_config(epochs=1)
    execute_run(config, tmp_path, stream=io.StringIO())
    _, provenance = RunDir.for_config(config, tmp_path).read_config()
    assert provenance["code"] == code_fingerprint()
    assert provenance["processes"] == 1


def test_a_run_resumed_under_other_code_says_so_and_the_report_sees_mixed_code(tmp_path, tiny_data, monkeypatch):
    import bench.codeprint
    import bench.lifecycle as lifecycle
    from bench.launchers.inline import run_plan
    from bench.report.regime import _code_identity

    real = lifecycle.evaluate_run
    calls = {"n": 0}

    def crash_at_the_first_evaluation(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("killed during the first evaluation")
        return real(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "evaluate_run", crash_at_the_first_evaluation)
    config = tiny_config(epochs=2)
    [failed] = run_plan([config], tmp_path, stream=io.StringIO())
    assert failed.status == "failed"
    started = RunDir.for_config(config, tmp_path).read_config()[1]["code"]

    edited = {**started, "files": {**started["files"], "bench/train.py": "0" * 64}, "digest": "f" * 64}
    monkeypatch.setattr(bench.codeprint, "code_fingerprint", lambda: edited)
    out = io.StringIO()
    [resumed] = run_plan([config], tmp_path, resume=True, stream=out)
    assert resumed.status == "trained", resumed.message
    assert "continues under other code than it started with (bench/train.py)" in out.getvalue()
    provenance = RunDir.for_config(config, tmp_path).read_config()[1]
    assert provenance["resumes"][-1]["code"]["digest"] == "f" * 64
    label, _ = _code_identity(provenance)
    assert label == f"mixed {started['digest'][:12]}+{'f' * 12}"
