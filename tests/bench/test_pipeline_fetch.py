"""bench run --fetch: the one opt-in that downloads a plan's missing inputs, before anything is checked or run.

No test downloads: bench.fetch.fetch_for_configs is replaced by a recorder (its own tests fetch from a local
server)."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner

import bench.fetch
from bench.cli import cli
from bench.fetch import FetchError
from bench.pipeline import EXIT_BAD_PLAN, run
from bench.plan import RunRequest


@pytest.fixture
def fetched(monkeypatch):
    """What fetch_for_configs was asked: (run ids, dry_run) per call."""
    calls = []

    def record(configs, echo=print, dry_run=False, **kwargs):
        calls.append(([c.run_id for c in configs], dry_run))
        echo("fetch: (recorded)")

    monkeypatch.setattr(bench.fetch, "fetch_for_configs", record)
    return calls


def paper_request(tmp_path, **changes) -> RunRequest:
    return RunRequest("paper", only="drnet-resnet50", seeds="0", runs_dir=tmp_path / "runs", **changes)


def test_fetch_is_never_implied(tmp_path, fetched):
    assert RunRequest("paper").fetch is False
    run(paper_request(tmp_path, dry_run=True), io.StringIO())
    assert fetched == []


def test_fetch_with_dry_run_lists_what_the_runs_lack_then_the_plan(tmp_path, fetched):
    out = io.StringIO()
    run(paper_request(tmp_path, dry_run=True, fetch=True), out)
    assert fetched == [(["paper-drnet-resnet50-s0"], True)]
    text = out.getvalue()
    assert text.index("fetch: (recorded)") < text.index("suite paper: 1 training run(s)")  # before the checks


def test_a_failed_download_stops_before_anything_runs(tmp_path, monkeypatch):
    def fail(configs, echo=print, dry_run=False, **kwargs):
        raise FetchError("rside-data: the server said 403")

    monkeypatch.setattr(bench.fetch, "fetch_for_configs", fail)
    out = io.StringIO()
    assert run(paper_request(tmp_path, fetch=True), out) == EXIT_BAD_PLAN
    assert out.getvalue().strip() == (
        "error: --fetch: rside-data: the server said 403; nothing was run (the same command resumes the downloads)"
    )
    assert not (tmp_path / "runs").exists()


def test_fetch_is_refused_under_torchrun(tmp_path, fetched, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    out = io.StringIO()
    assert run(paper_request(tmp_path, fetch=True), out) == EXIT_BAD_PLAN
    assert "would download in every torchrun process: run `bench fetch` first" in out.getvalue() and fetched == []


def test_the_command_line_option(tmp_path, fetched):
    args = ["run", "--suite", "paper", "--only", "drnet-resnet50", "--seeds", "0", "--runs-dir", str(tmp_path)]
    result = CliRunner().invoke(cli, [*args, "--fetch", "--dry-run"])
    assert fetched == [(["paper-drnet-resnet50-s0"], True)] and "fetch: (recorded)" in result.output
