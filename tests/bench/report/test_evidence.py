"""What an accuracy verdict may rest on (issue 22 items 2-5), each case built from hand-made run directories and
judged through ``bench report``: weights selected on the test set, code drift accepted by the user, runs whose
convergence cannot be told, and copied run directories that must not count as seeds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.report.claims import NOT_COMPARABLE, NOT_JUDGED, REPRODUCED

CONVERGED = (0.9, 0.6, 0.45, 0.4, 0.38, 0.37, 0.37, 0.37)  # history.csv's test RMSE: a flat tail
FRAMES = tuple(range(1, 31))
PARITY = "Accuracy parity"
CODE_A = {"torch": "2.14.1", "files": {"architectures/drnet.py": "1" * 64, "bench/train.py": "2" * 64}}
CODE_B = {**CODE_A, "files": {**CODE_A["files"], "architectures/drnet.py": "3" * 64}}


@pytest.fixture(scope="module")
def pair_template(tmp_path_factory, make_eval_run) -> Path:
    """DRNet and RSIDE ResNet-50 of the paper suite, equally accurate, 3 seeds each, converged: written once (the
    fixture computes every frame's statistics), copied by ``pair``."""
    root = tmp_path_factory.mktemp("pair")
    for arch in ("drnet", "rside"):
        for s in (0, 1, 2):
            make_eval_run(
                root,
                "paper",
                f"{arch}-resnet50",
                arch,
                "resnet50",
                seed=s,
                frames=FRAMES,
                predictions=False,
                history=CONVERGED,
                metrics_extra={"steps": 96, "epoch": 8},
            )
    return root


@pytest.fixture
def pair(pair_template, runs_dir) -> dict[str, list[Path]]:
    """A copy of ``pair_template`` in ``runs_dir``: arch -> its run directories by seed."""
    out: dict[str, list[Path]] = {"drnet": [], "rside": []}
    for src in sorted(pair_template.iterdir()):
        shutil.copytree(src, runs_dir / src.name)
        out[src.name.split("-")[1]].append(runs_dir / src.name)
    return out


def bench_report(runs_dir: Path, out: Path, *extra: str) -> pd.DataFrame:
    """``bench report`` on ``runs_dir``; its summary.csv."""
    args = ["report", "--runs", str(runs_dir), "--out", str(out), "--n-boot", "100", *extra]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return pd.read_csv(out / "summary.csv", keep_default_na=False)


def parity_row(summary: pd.DataFrame) -> pd.Series:
    """The parity verdict of the one backbone (its row under the parity headline)."""
    rows = summary[summary["claim"].str.startswith(PARITY) & (summary["level"] == 1)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def edit_json(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


# ------------------------------------------------------------------------- item 2: selected on the test set


def select_best(path: Path, epoch: int = 17) -> None:
    """The run evaluated the epoch with the best test RMSE, as bench run records checkpoint_select = "best"."""
    edit_json(path / "metrics.json", lambda m: m.update(checkpoint="best", epoch=epoch))
    edit_json(path / "config.json", lambda c: c["config"].update(checkpoint_select="best"))


def test_weights_selected_on_the_test_set_are_never_judged(pair, runs_dir, tmp_path):
    runs = pair
    assert parity_row(bench_report(runs_dir, tmp_path / "before"))["outcome"] == REPRODUCED
    for path in runs["drnet"] + runs["rside"]:  # both models alike: their regimes still match
        select_best(path)
    row = parity_row(bench_report(runs_dir, tmp_path / "best", "--html"))
    assert row["outcome"] == NOT_JUDGED
    assert row["verdict"].startswith(
        "not judged: weights selected on the test set (paper-drnet-resnet50-s0: the epoch with the best test RMSE "
        "(epoch 17); paper-drnet-resnet50-s1"
    )
    t1 = pd.read_csv(tmp_path / "best" / "table1.csv", keep_default_na=False).set_index(["arch", "backbone", "source"])
    assert t1.loc[("drnet", "resnet50", "drnet-paper"), "test_selected"].startswith("paper-drnet-resnet50-s0: ")
    assert t1.loc[("rside", "resnet50", "rside-paper"), "status"] == "measured"  # the numbers are still shown
    html = (tmp_path / "best" / "report.html").read_text()
    assert "paper-drnet-resnet50-s{0,1,2} †" in html and "weights selected on the test set (checkpoint best)" in html


def test_one_model_selected_on_the_test_set_reads_so_before_its_regime(pair, runs_dir, tmp_path):
    runs = pair
    for path in runs["drnet"]:
        select_best(path)
    row = parity_row(bench_report(runs_dir, tmp_path / "out"))
    assert row["outcome"] == NOT_JUDGED and row["verdict"].startswith("not judged: weights selected on the test set")


def test_a_config_selecting_best_counts_as_selected_unless_the_last_epoch_was_evaluated(pair, runs_dir, tmp_path):
    for path in pair["drnet"] + pair["rside"]:
        edit_json(path / "config.json", lambda c: c["config"].update(checkpoint_select="best"))
    # metrics.json says "last" at history.csv's last epoch (8): no best.pt was written, the last weights count
    assert parity_row(bench_report(runs_dir, tmp_path / "last"))["outcome"] == REPRODUCED
    edit_json(pair["rside"][2] / "metrics.json", lambda m: m.update(epoch=5))  # "last", but not the last epoch
    row = parity_row(bench_report(runs_dir, tmp_path / "edited"))
    assert row["verdict"] == (
        "not judged: weights selected on the test set (paper-rside-resnet50-s2: checkpoint_select best, and "
        "nothing shows the last epoch was evaluated (epoch 5))"
    )


def test_the_dry_run_warns_per_run_that_selects_on_the_test_set(tmp_path):
    from runner_fixtures import register_tiny_model

    suite = tmp_path / "best.toml"
    suite.write_text(
        f'purpose = "miniature"\n[defaults]\narch = "{register_tiny_model()}"\nbackbone = "none"\ndevice = "cpu"\n'
        'input_size = [64, 80]\nepochs = 2\n[[runs]]\nname = "a"\ncheckpoint_select = "best"\n'
        '[[runs]]\nname = "b"\neval_every_epochs = 0\nepochs = 5\n'
    )
    args = ["run", "--suite", str(suite), "--dry-run", "--runs-dir", str(tmp_path / "runs")]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    a, b = result.output.split(f"\n{suite.stem}-b-s0  [")
    assert "warning checkpoint_select = 'best' evaluates the epoch with the best test RMSE" in a
    assert "warning 2 test evaluation(s) in history.csv (2 epochs / 1), 4 needed" in a
    assert "checkpoint_select" not in b and "warning 0 test evaluation(s) in history.csv (eval_every_epochs = 0)" in b


# ------------------------------------------------------------------------------- item 3: code drift accepted


def test_code_drift_is_not_comparable_unless_accepted_and_then_every_verdict_says_so(pair, runs_dir, tmp_path):
    runs = pair
    for arch, code in (("drnet", CODE_B), ("rside", CODE_A)):
        for path in runs[arch]:
            record = {**code, "digest": ("b" if code is CODE_B else "a") * 64}
            edit_json(path / "config.json", lambda c, r=record: c["provenance"].update(code=r))
    drift = "bbbbbbbbbbbb vs aaaaaaaaaaaa (architectures/drnet.py)"  # DRNet's code first
    refused = parity_row(bench_report(runs_dir, tmp_path / "refused"))
    assert refused["outcome"] == NOT_COMPARABLE and refused["verdict"] == f"not comparable: code {drift}"

    accepted = parity_row(bench_report(runs_dir, tmp_path / "accepted", "--accept-code-drift", "--html"))
    assert accepted["outcome"] == REPRODUCED
    assert accepted["verdict"] == f"reproduced within tolerance; code drift accepted: {drift}"
    assert accepted["notes"] == f"code drift accepted: {drift}"
    paired = pd.read_csv(tmp_path / "accepted" / "paired.csv", keep_default_na=False)
    assert paired.loc[0, "notes"] == f"code drift accepted: {drift}" and paired.loc[0, "not_comparable"] == ""
    assert "code drift accepted" in (tmp_path / "accepted" / "report.html").read_text()


# ------------------------------------------------------------------------------ item 4: convergence unknown


def no_history(path: Path) -> None:
    (path / "history.csv").unlink()


def malformed_history(path: Path) -> None:
    (path / "history.csv").write_text("epoch,train_loss\n1,0.5\n")


def evaluated_at_the_end_only(path: Path) -> None:
    """eval_every_epochs = 0 (a regime field: every run of the pair has it, or they would not be comparable)."""
    rows = [f"{e},{12 * e},{1 / e},0.001," for e in range(1, 9)]
    (path / "history.csv").write_text("epoch,step,train_loss,lr,test_rmse\n" + "\n".join(rows) + "\n")
    edit_json(path / "config.json", lambda c: c["config"].update(eval_every_epochs=0))


def three_points_falling_fast(path: Path) -> None:
    rows = [f"{e},{12 * e},1.0,0.001,{0.6 ** (e - 1)}" for e in range(1, 4)]  # -40 % per evaluation
    (path / "history.csv").write_text("epoch,step,train_loss,lr,test_rmse\n" + "\n".join(rows) + "\n")


def no_reference(path: Path) -> None:
    edit_json(path / "metrics.json", lambda m: m.pop("reference"))


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (no_history, "paper-rside-resnet50-s1: no history.csv"),
        (malformed_history, "paper-rside-resnet50-s1: history.csv unreadable (missing column(s) step"),
        (
            evaluated_at_the_end_only,
            "paper-drnet-resnet50-s0: 0 test evaluation(s) in history.csv, 4 needed (eval_every_epochs = 0: "
            "evaluated at the end only)",
        ),
        (three_points_falling_fast, "paper-rside-resnet50-s1: 3 test evaluation(s) in history.csv, 4 needed"),
        (no_reference, "paper-rside-resnet50-s1: metrics.json has no reference.constant_rmse"),
    ],
    ids=["no-history", "malformed", "eval-every-0", "3-falling-points", "no-reference"],
)
def test_a_trained_run_whose_convergence_cannot_be_told_is_not_judged(damage, why, pair, runs_dir, tmp_path):
    for path in pair["drnet"] + pair["rside"] if damage is evaluated_at_the_end_only else [pair["rside"][1]]:
        damage(path)
    row = parity_row(bench_report(runs_dir, tmp_path / "out"))
    assert row["outcome"] == NOT_JUDGED
    assert row["verdict"].startswith(f"not judged: convergence unknown ({why}"), row["verdict"]
    paired = pd.read_csv(tmp_path / "out" / "paired.csv", keep_default_na=False)
    assert paired.loc[0, "convergence_unknown"].startswith(why)


def test_a_curve_falling_fast_over_four_points_or_more_has_not_converged(pair, runs_dir, tmp_path):
    for path in pair["drnet"]:
        rows = [f"{e},{12 * e},1.0,0.001,{0.6 ** (e - 1)}" for e in range(1, 6)]
        (path / "history.csv").write_text("epoch,step,train_loss,lr,test_rmse\n" + "\n".join(rows) + "\n")
    row = parity_row(bench_report(runs_dir, tmp_path / "out"))
    assert row["outcome"] == NOT_JUDGED and row["verdict"].startswith(
        "not judged: not converged: paper-drnet-resnet50-s0: still moving"
    )


def test_imported_weights_have_no_curve_by_design_and_stay_judged(pair, runs_dir, tmp_path):
    for path in pair["drnet"] + pair["rside"]:  # official weights, imported and evaluated only
        edit_json(path / "metrics.json", lambda m: m.update(source="imported", checkpoint="imported", steps=0, epoch=0))
        edit_json(path / "config.json", lambda c: c["config"].update(source="imported", epochs=0))
        no_history(path)
    row = parity_row(bench_report(runs_dir, tmp_path / "out"))
    assert row["outcome"] == REPRODUCED
    note = "imported weights: no training curve (paper-drnet-resnet50-s0, paper-drnet-resnet50-s1"
    assert row["verdict"].startswith(f"reproduced within tolerance; {note}") and row["notes"].startswith(note)


# ------------------------------------------------------------------------------ item 5: a seed counts once


def test_a_copied_run_directory_does_not_count_as_a_seed(pair, runs_dir, tmp_path):
    shutil.rmtree(pair["drnet"][2])  # two DRNet seeds, three RSIDE seeds
    before = parity_row(bench_report(runs_dir, tmp_path / "two"))
    assert before["verdict"].startswith("inconclusive: 2 seed(s), 3 needed")

    copy = runs_dir / "paper-drnet-resnet50-s1-relaunched"  # a job re-launched under another directory
    shutil.copytree(pair["drnet"][1], copy)
    renamed = runs_dir / "paper-drnet-resnet50-s7"  # a copy whose metrics.json was edited to another seed
    shutil.copytree(pair["drnet"][0], renamed)
    edit_json(renamed / "metrics.json", lambda m: m.update(seed=7, run_id="paper-drnet-resnet50-s7"))
    edit_json(renamed / "config.json", lambda c: c["config"].update(seed=7))

    row = parity_row(bench_report(runs_dir, tmp_path / "copies", "--html"))
    assert row["verdict"].startswith("inconclusive: 2 seed(s), 3 needed")  # before: 4 seeds, judged
    assert (
        "counted once: paper-drnet-resnet50-s1-relaunched (same suite entry and seed as paper-drnet-resnet50-s1)"
        in (row["notes"])
    )
    assert "counted once: paper-drnet-resnet50-s7 (identical per_image.csv as paper-drnet-resnet50-s0)" in row["notes"]
    assert "counted once: " in row["verdict"]
    repeated = pd.read_csv(tmp_path / "copies" / "repeated_runs.csv")
    assert repeated[["directory", "used_instead", "why"]].values.tolist() == [
        ["paper-drnet-resnet50-s1-relaunched", "paper-drnet-resnet50-s1", "same suite entry and seed"],
        ["paper-drnet-resnet50-s7", "paper-drnet-resnet50-s0", "identical per_image.csv"],
    ]
    paired = pd.read_csv(tmp_path / "copies" / "paired.csv")
    assert (paired.loc[0, "seeds_drnet"], paired.loc[0, "seeds_rside"]) == (2, 3)
    assert 'id="repeated-runs"' in (tmp_path / "copies" / "report.html").read_text()
