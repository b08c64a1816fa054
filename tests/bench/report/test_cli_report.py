"""``bench report`` through the CLI: bad inputs exit 1 with a message; the suite choice is said on the terminal
and in the HTML."""

from __future__ import annotations

from click.testing import CliRunner

from bench.cli import cli

FRAMES = range(1, 6)


def report(runs_dir, tmp_path, *extra):
    args = ["report", "--runs", str(runs_dir), "--out", str(tmp_path / "rep"), "--n-boot", "100", *extra]
    return CliRunner().invoke(cli, args)


def test_empty_runs_directory_exits_1_naming_the_problem(runs_dir, tmp_path):
    res = report(runs_dir, tmp_path)
    assert res.exit_code == 1
    assert f"nothing to report: {runs_dir} holds no run directories" in res.stderr
    assert not (tmp_path / "rep" / "table1.csv").exists()


def test_all_unreadable_exits_1_and_lists_each_directory(runs_dir, tmp_path, make_eval_run):
    (runs_dir / "smoke-a-s0").mkdir()
    broken = make_eval_run(runs_dir, "smoke", "b", "rside", "resnet18", frames=FRAMES)
    (broken / "metrics.json").write_text("{not json")
    res = report(runs_dir, tmp_path)
    assert res.exit_code == 1
    assert "none of the 2 run directories" in res.stderr
    assert "smoke-a-s0: " in res.stderr and "smoke-b-s0: " in res.stderr


def test_unreadable_directories_are_listed_on_the_terminal(runs_dir, tmp_path, make_eval_run):
    make_eval_run(runs_dir, "smoke", "rside-resnet18", "rside", "resnet18", frames=FRAMES)
    (runs_dir / "smoke-half-s0").mkdir()
    res = report(runs_dir, tmp_path)
    assert res.exit_code == 0, res.output
    assert "report: unusable run directory smoke-half-s0: " in res.stderr
    assert "smoke-half-s0" in (tmp_path / "rep" / "missing_runs.csv").read_text()


def test_several_suites_the_choice_is_said_first_and_in_the_html(runs_dir, tmp_path, make_eval_run):
    make_eval_run(runs_dir, "smoke", "rside-resnet18", "rside", "resnet18", frames=FRAMES)
    make_eval_run(runs_dir, "mini", "rside-resnet18", "rside", "resnet18", frames=FRAMES)
    make_eval_run(runs_dir, "paper", "rside-resnet50", "rside", "resnet50", frames=FRAMES)
    res = report(runs_dir, tmp_path, "--html")
    assert res.exit_code == 0, res.output
    note = f"{runs_dir} holds 3 suites (mini, paper, smoke); reporting 'paper' (the paper suite is preferred)"
    assert res.stderr.splitlines()[0].startswith("report: several suites: " + note)
    html = (tmp_path / "rep" / "report.html").read_text()
    assert 'id="suite-choice"' in html and note.replace("'", "&#39;") in html


def test_one_suite_or_an_explicit_one_needs_no_note(runs_dir, tmp_path, make_eval_run):
    make_eval_run(runs_dir, "smoke", "rside-resnet18", "rside", "resnet18", frames=FRAMES)
    make_eval_run(runs_dir, "mini", "rside-resnet18", "rside", "resnet18", frames=FRAMES)
    res = report(runs_dir, tmp_path, "--html", "--suite", "smoke")
    assert res.exit_code == 0, res.output
    assert "several suites" not in res.stderr
    assert 'id="suite-choice"' not in (tmp_path / "rep" / "report.html").read_text()
