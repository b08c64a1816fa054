"""Documentation generated from the code, so that no table is written twice.

``python -m bench.docgen`` rewrites, from the code that defines them:

- ``docs/verdicts.md``: the verdict rules, ``bench.report.claims.TOLERANCES`` (the report's "Tolerances"
  block), the verdict outcomes, and the constants the rules are built from;
- ``docs/speed-columns.md``: every column of speed.csv and speed_summary.csv
  (``bench.speed.records.columns_markdown``, the text each sweep also writes as ``speed_columns.md``);
- ``bench/report/report_columns.md``: every column of the report's CSVs (``bench.report.records.columns_markdown``);
- the suite table in README.md, between the ``<!-- BEGIN suites`` and ``<!-- END suites -->`` markers, from
  ``bench/suites/*.toml``.

``python -m bench.docgen --check`` writes nothing: it exits 1 naming every generated text that is out of
date, every relative link in README.md, runs/README.md or docs/*.md whose file or heading does not exist,
and every ``bench`` command those files show (in code blocks and code spans) that the CLI does not have,
subcommand or long option. ``tests/bench/test_docgen.py`` runs the same checks.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "CONSTANTS",
    "README_BLOCKS",
    "REPO",
    "bench_commands",
    "broken_links",
    "generated_files",
    "main",
    "slug",
    "report_columns_markdown",
    "speed_columns_markdown",
    "stale",
    "suites_markdown",
    "unknown_commands",
    "verdicts_markdown",
    "write",
]

REPO = Path(__file__).resolve().parents[1]  # the checkout: README.md, docs/, bench/
DO_NOT_EDIT = "do not edit: change the code and run `python -m bench.docgen`"
LINKED_DOCS = ("README.md", "runs/README.md", "docs/*.md")  # the files whose links and commands are checked

# The constants the verdict rules are built from, by module (docs/verdicts.md lists value and comment).
CONSTANTS = (
    (
        "bench.report.claims",
        (
            "PARITY_MARGIN_REL",
            "MIN_SEEDS",
            "EQUIVALENCE_MARGIN_REL",
            "SPEED_CLAIM_RATIO_B1",
            "MEMORY_CLAIM_RATIO",
            "RATIO_REL_TOL",
            "REAL_TIME_FPS",
            "REAL_TIME_MODEL",
        ),
    ),
    ("bench.report.curves", ("STILL_MOVING_REL",)),
    ("bench.config", ("MIN_EVALS_FOR_CHECK",)),
    ("bench.report.stats", ("N_BOOTSTRAP", "CI_LEVEL", "MAX_SEEDS_ESTIMATE")),
    (
        "bench.report.regime",
        (
            "PAPER_DATA",
            "PAPER_TRAIN_FRAMES_MIN",
            "PAPER_EPOCHS",
            "PAPER_BATCH",
            "PAPER_INIT",
            "PAPER_PROTOCOL",
            "PAPER_EVAL_FRAMES",
            "REGIME_FIELDS",
        ),
    ),
)
OUTCOMES = (  # bench.report.claims: each verdict's category, in the order the report explains them
    "REPRODUCED",
    "NOT_REPRODUCED",
    "INCONCLUSIVE",
    "BETTER_THAN_MARGIN",
    "DEPENDS_ON_DEFINITION",
    "DEPENDS_ON_SETUP",
    "NOT_COMPARABLE",
    "NOT_JUDGED",
    "NOT_MEASURED",
)


# --- the generated texts ------------------------------------------------------------------------------------


def verdicts_markdown() -> str:
    """docs/verdicts.md: the rules of ``claims.TOLERANCES``, the outcomes and the constants behind them."""
    from bench.report import claims

    lines = [
        f"<!-- Generated from bench/report/claims.py (TOLERANCES) and the constants below; {DO_NOT_EDIT}. -->",
        "",
        "# Verdict rules",
        "",
        "How `bench report` judges each claim of the paper (`summary.csv`, and the top of `report.html`, whose",
        '"Tolerances" block shows the same rules). The rules are `TOLERANCES` in `bench/report/claims.py`, built',
        "from the constants listed at the end; regimes are defined in `bench/report/regime.py`, intervals in",
        "`bench/report/stats.py`, the convergence check in `bench/report/curves.py`.",
        "",
        "## Rules",
        "",
    ]
    lines += [f"{i}. {_prose(rule)}" for i, rule in enumerate(claims.TOLERANCES, 1)]
    lines += ["", "## Outcomes", "", "The `outcome` column of `summary.csv` is one of:", ""]
    lines += [f"- `{getattr(claims, name)}` (`claims.{name}`)" for name in OUTCOMES]
    lines += [
        "",
        f"A verdict's text (`verdict` column) adds its reason, e.g. `{claims.NOT_COMPARABLE}: <fields>`,",
        f"`{claims.INCONCLUSIVE}: 1 seed(s), {claims.MIN_SEEDS} needed` or `{claims.PIPELINE_VERDICT}`.",
        "",
        "## Constants",
        "",
        "| constant | value | meaning (the comment in the code) |",
        "|---|---|---|",
    ]
    for module_name, names in CONSTANTS:
        module = importlib.import_module(module_name)
        comments = _trailing_comments(module)
        for name in names:
            if not hasattr(module, name):
                raise AttributeError(f"{module_name} has no {name}; update CONSTANTS in bench/docgen.py")
            value = _cell(_value_text(getattr(module, name)))
            lines.append(f"| `{module_name}.{name}` | {value} | {_cell(comments.get(name, ''))} |")
    return "\n".join(lines) + "\n"


def report_columns_markdown() -> str:
    """bench/report/report_columns.md: the column definitions of the report's CSVs (typed row records)."""
    from bench.report.records import columns_markdown

    return columns_markdown()


def speed_columns_markdown() -> str:
    """docs/speed-columns.md: the column definitions of speed.csv and speed_summary.csv."""
    from bench.speed.records import columns_markdown

    note = (
        f"<!-- Generated from bench/speed/records.py (columns_markdown, the documented fields of SpeedPoint and "
        f"SpeedSummary); {DO_NOT_EDIT}. Every sweep also writes this text as speed_columns.md. -->"
    )
    return f"{note}\n\n{_prose(columns_markdown().rstrip())}\n"


def suites_markdown() -> str:
    """The README's suite table: one row per shipped suite, from its TOML file."""
    from bench.suite import available_suites, load_suite

    lines = [
        "| suite | purpose | training runs | seeds | speed sweeps | data | training |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in available_suites():
        suite = load_suite(name)
        d = suite.defaults
        tables = sorted({t for r in suite.runs for t in r.tables})
        runs = str(len(suite.runs))
        if tables:
            runs += f" ({', '.join(t.replace('table', 'Table ') for t in tables)})"
        seeds = ", ".join(map(str, suite.seeds)) if suite.seeds else str(d.seed)
        speed = f"{len(suite.speed)}" if suite.speed else "-"
        data = d.data + (f":{d.data_path}" if d.data_path else "")
        if d.train_frames or d.eval_frames:
            data += f", {d.train_frames or 'all'} train / {d.eval_frames or 'all'} test frames"
        if d.input_size:
            data += f", {d.input_size[0]}x{d.input_size[1]} input"
        steps = f"{d.epochs} epoch{'s' if d.epochs > 1 else ''}"
        steps += f" (at most {d.max_steps:,} steps)" if d.max_steps else ""
        lr = f"lr {_number(d.lr)}"
        if d.lr_schedule == "step":
            lr += f", x{_number(d.lr_gamma)} every {d.lr_step_epochs} epochs"
        else:
            lr = f"constant {lr}"
        training = f"{d.device}, {d.weights or 'random'} init, {steps}, batch {d.batch_size}, {lr}"
        lines.append(f"| `{name}` | {suite.purpose} | {runs} | {seeds} | {speed} | {data} | {training} |")
    return "\n".join(lines) + "\n"


# Whole files, relative to the checkout, and blocks inside README.md (between the markers).
GENERATED_FILES: dict[str, Callable[[], str]] = {
    "docs/verdicts.md": verdicts_markdown,
    "docs/speed-columns.md": speed_columns_markdown,
    "bench/report/report_columns.md": report_columns_markdown,
}
README_BLOCKS: dict[str, Callable[[], str]] = {"suites": suites_markdown}


def _begin(block: str) -> str:
    return f"<!-- BEGIN {block}: generated from the code; {DO_NOT_EDIT} -->"


def _end(block: str) -> str:
    return f"<!-- END {block} -->"


def _with_blocks(text: str, where: str) -> str:
    """``text`` with every README block replaced by its generated content."""
    for block, make in README_BLOCKS.items():
        pattern = rf"^<!-- BEGIN {re.escape(block)}\b.*?-->\n.*?^<!-- END {re.escape(block)} -->$"
        found = re.search(pattern, text, re.S | re.M)
        if not found:
            raise ValueError(f"{where}: no '<!-- BEGIN {block} ... -->' / '{_end(block)}' markers")
        text = f"{text[: found.start()]}{_begin(block)}\n{make()}{_end(block)}{text[found.end() :]}"
    return text


def generated_files(root: Path = REPO) -> dict[Path, str]:
    """Every generated file under ``root`` with the content it should have."""
    out = {root / rel: make() for rel, make in GENERATED_FILES.items()}
    readme = root / "README.md"
    out[readme] = _with_blocks(readme.read_text(encoding="utf-8"), str(readme))
    return out


def stale(root: Path = REPO) -> list[Path]:
    """The generated files whose content on disk differs from what the code generates."""
    return [path for path, text in generated_files(root).items() if _differs(path, text)]


def write(root: Path = REPO) -> list[Path]:
    """Write every stale generated file; returns the files written."""
    written = []
    for path, text in generated_files(root).items():
        if _differs(path, text):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def _differs(path: Path, text: str) -> bool:
    return not path.exists() or path.read_text(encoding="utf-8") != text


# --- relative links -----------------------------------------------------------------------------------------

_FENCE = re.compile(r"^(```|~~~)([^\n]*)\n(.*?)^\1[^\n]*$", re.S | re.M)  # info string, body
_CODE_SPAN = re.compile(r"`[^`]+`")  # may wrap onto the next line, as in Markdown
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of every heading in a Markdown text (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for heading in _HEADING.findall(_FENCE.sub("", text)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(root: Path = REPO) -> list[str]:
    """``file: target (why)`` for every relative link whose file or heading anchor does not exist."""
    problems = []
    for pattern in LINKED_DOCS:
        for doc in sorted(root.glob(pattern)):
            text = doc.read_text(encoding="utf-8")
            prose = _CODE_SPAN.sub("", _FENCE.sub("", text))
            for target in _LINK.findall(prose):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                    continue
                path, _, anchor = target.partition("#")
                dest = (doc.parent / path).resolve() if path else doc
                where = f"{doc.relative_to(root)}: {target}"
                if not dest.exists():
                    problems.append(f"{where} (no such file)")
                elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
                    problems.append(f"{where} (no heading with that anchor in {dest.name})")
    return problems


# --- bench commands shown in the documentation --------------------------------------------------------------

SHELL_BLOCKS = ("bash", "sh", "shell", "console")  # code blocks whose lines are commands (plain ``` is output)


def bench_commands(text: str) -> list[list[str]]:
    """The ``bench`` command lines of a Markdown text (bash code blocks and code spans), each as its words
    from the subcommand on: ``bench run --suite smoke && bench report`` gives two."""
    blocks = [body for _, info, body in _FENCE.findall(text) if info.strip() in SHELL_BLOCKS]
    snippets = [body.replace("\\\n", " ") for body in blocks]
    spans = [span.strip("`").replace("\n", " ") for span in _CODE_SPAN.findall(_FENCE.sub("", text))]
    snippets += [span for span in spans if "bench " in span]
    commands = []
    for snippet in snippets:
        for line in snippet.splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:  # an unbalanced quote in prose: not a command
                continue
            segment: list[str] = []
            for word in [*words, "&&"]:
                if word in ("&&", "||", "|", ";"):
                    if "bench" in segment:
                        commands.append(segment[segment.index("bench") + 1 :])
                    segment = []
                else:
                    segment.append(word)
    return commands


def unknown_commands(root: Path = REPO) -> list[str]:
    """``file: bench ... has no ...`` for every documented ``bench`` subcommand or long option the CLI lacks."""
    from bench.cli import cli

    problems = []
    for pattern in LINKED_DOCS:
        for doc in sorted(root.glob(pattern)):
            for words in bench_commands(doc.read_text(encoding="utf-8")):
                problem = _command_problem(cli, words)
                if problem:
                    problems.append(f"{doc.relative_to(root)}: {problem}")
    return problems


def _command_problem(cli, words: list[str]) -> str:
    """What ``bench <words>`` asks of the CLI that it does not have ("" if nothing)."""
    import click

    command, path = cli, ["bench"]
    for word in words:
        if isinstance(command, click.Group) and not word.startswith("-"):
            if word not in command.commands:
                return f"{' '.join(path)} has no command {word!r}"
            command = command.commands[word]
            path.append(word)
        elif word.startswith("--") and len(word) > 2:
            option = word.split("=")[0]
            if option not in {"--help", *(o for p in command.params for o in (*p.opts, *p.secondary_opts))}:
                return f"{' '.join(path)} has no option {option}"
    return ""


# --- formatting ---------------------------------------------------------------------------------------------


def _trailing_comments(module) -> dict[str, str]:
    """NAME -> the comment at the end of its one-line assignment in ``module``'s source."""
    source = inspect.getsource(module)
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)\s*=\s*[^\n#]*?\s+#\s*(.+)$", source, re.M))


def _value_text(value) -> str:
    if isinstance(value, tuple):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:g}"


def _number(x: float) -> str:
    """1e-4 rather than 0.0001; 0.1 stays 0.1."""
    if x == 0 or 1e-2 <= abs(x) < 1e4:
        return f"{x:g}"
    mantissa, exponent = f"{x:.6e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _prose(text: str) -> str:
    """``text`` with every ``<`` that would open an HTML tag (``<fields>``) escaped, outside code spans."""
    parts = re.split(r"(`[^`\n]*`)", text)
    return "".join(p if p.startswith("`") else re.sub(r"<(?=[A-Za-z/])", "&lt;", p) for p in parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.docgen", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is out of date")
    parser.add_argument("--root", type=Path, default=REPO, help="the checkout (default: this one)")
    args = parser.parse_args(argv)
    problems = []
    if args.check:
        problems += [
            f"out of date: {p.relative_to(args.root)} (run `python -m bench.docgen`)" for p in stale(args.root)
        ]
    else:
        for path in write(args.root):
            print(f"wrote {path.relative_to(args.root)}")
    problems += [f"broken link: {problem}" for problem in broken_links(args.root)]
    problems += [f"unknown command: {problem}" for problem in unknown_commands(args.root)]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
