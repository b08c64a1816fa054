from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import docgen
from bench.report.claims import MIN_SEEDS, TOLERANCES
from bench.speed.records import POINT_COLUMNS, SUMMARY_COLUMNS
from bench.suite import available_suites

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = (
    "python -m pip install -e . && bench run --suite smoke && bench report --html",
    "python -m pip install -e '.[test]' && python -m pytest -q",
)


# --- the checked-in documentation ------------------------------------------------------------------------


def test_generated_docs_are_current():
    stale = [str(p.relative_to(REPO)) for p in docgen.stale(REPO)]
    assert not stale, f"out of date: {', '.join(stale)}; run `python -m bench.docgen` and commit the result"


def test_relative_links_resolve():
    assert not docgen.broken_links(REPO)


def test_documented_bench_commands_exist():
    assert not docgen.unknown_commands(REPO)


def test_quickstart_is_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    assert all(command in readme for command in QUICKSTART)
    assert QUICKSTART[1] in (REPO / ".ci" / "run").read_text()


# --- what the generators write ---------------------------------------------------------------------------


def test_verdicts_state_every_rule_and_the_constants():
    text = docgen.verdicts_markdown()
    assert all(docgen._prose(rule) in text for rule in TOLERANCES)
    assert f"| `bench.report.claims.MIN_SEEDS` | {MIN_SEEDS} |" in text
    assert "not comparable: &lt;fields>" in text  # would be an HTML tag on GitHub


def test_speed_columns_define_every_column():
    text = docgen.speed_columns_markdown()
    assert all(f"`{c}`" in text for c in (*POINT_COLUMNS, *SUMMARY_COLUMNS))


def test_suite_table_has_every_suite():
    rows = docgen.suites_markdown().splitlines()[2:]
    assert [r.split("|")[1].strip(" `") for r in rows] == available_suites()
    smoke = next(r for r in rows if r.startswith("| `smoke`"))
    assert "pipeline" in smoke and "120x160 input" in smoke and "constant lr 1e-3" in smoke


# --- write / check on a scratch checkout -----------------------------------------------------------------


@pytest.fixture
def checkout(tmp_path):
    """A copy of the documentation with a stale suite table, without verdicts.md and report_columns.md."""
    readme = (REPO / "README.md").read_text()
    begin = readme.index("<!-- BEGIN suites")
    end = readme.index("<!-- END suites -->")
    (tmp_path / "README.md").write_text(readme[:begin] + "<!-- BEGIN suites -->\nold\n" + readme[end:])
    shutil.copytree(REPO / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("verdicts.md"))
    for rel in (
        "runs/README.md",
        "architectures/drnet.py",
        *(f"reports/figures/{p.name}" for p in (REPO / "reports/figures").iterdir()),
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp_path / rel)
    return tmp_path


def test_check_finds_stale_files_and_write_fixes_them(checkout, capsys):
    assert {p.name for p in docgen.stale(checkout)} == {"README.md", "verdicts.md", "report_columns.md"}
    assert docgen.main(["--check", "--root", str(checkout)]) == 1
    assert "out of date: README.md" in capsys.readouterr().err
    assert docgen.main(["--root", str(checkout)]) == 0
    assert docgen.stale(checkout) == [] and docgen.main(["--check", "--root", str(checkout)]) == 0
    assert docgen.suites_markdown() in (checkout / "README.md").read_text()


def test_a_readme_without_the_markers_is_an_error(checkout):
    (checkout / "README.md").write_text("# drnet-bench\n")
    with pytest.raises(ValueError, match="no '<!-- BEGIN suites"):
        docgen.stale(checkout)


def test_broken_links_and_anchors_are_named(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Speed and memory (Table 2)\n\n## `bench status`\n")
    (tmp_path / "README.md").write_text(
        "# Top\n\n"
        "[ok](docs/a.md) [ok](docs/a.md#speed-and-memory-table-2) [ok](docs/a.md#bench-status) [ok](#top)\n"
        "[web](https://example.org/x) `[span](nowhere.md)`\n\n"
        "```\n[fenced](nowhere.md)\n```\n\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#speed) [bad local](#bottom) ![img](figures/x.png)\n"
    )
    assert docgen.broken_links(tmp_path) == [
        "README.md: docs/b.md (no such file)",
        "README.md: docs/a.md#speed (no heading with that anchor in a.md)",
        "README.md: #bottom (no heading with that anchor in README.md)",
        "README.md: figures/x.png (no such file)",
    ]


@pytest.mark.parametrize(
    "heading, anchor",
    [
        ("Reproducing the paper's tables", "reproducing-the-papers-tables"),
        ("Table 2: speed and memory", "table-2-speed-and-memory"),
        ("Why DRNet started badly (issue 17)", "why-drnet-started-badly-issue-17"),
        ("`bench status`", "bench-status"),
        ("Run directories: reuse and resume", "run-directories-reuse-and-resume"),
    ],
)
def test_anchors_follow_github(heading, anchor):
    assert docgen.slug(heading) == anchor


def test_repeated_headings_get_numbered_anchors():
    assert docgen.anchors("# Notes\n## Notes\n```\n# not a heading\n```\n") == {"notes", "notes-1"}


def test_documented_commands_are_checked_against_the_cli(tmp_path):
    (tmp_path / "README.md").write_text(
        "```bash\n"
        "OMP_NUM_THREADS=1 bench run --suite smoke --no-speed && bench report --html   # fine\n"
        "bench run --suite paper \\\n    --no-such-option\n"
        "torchrun --nproc_per_node 4 -m bench run --suite paper\n"
        "```\n\n"
        "Inline: `bench data info PATH`, `bench frobnicate`, `bench data nope`.\n"
    )
    assert docgen.bench_commands((tmp_path / "README.md").read_text())[:3] == [
        ["run", "--suite", "smoke", "--no-speed"],
        ["report", "--html"],
        ["run", "--suite", "paper", "--no-such-option"],
    ]
    assert docgen.unknown_commands(tmp_path) == [
        "README.md: bench run has no option --no-such-option",
        "README.md: bench has no command 'frobnicate'",
        "README.md: bench data has no command 'nope'",
    ]
