"""The summary of verdicts (issue 22 items 8-11), each case built from hand-made run directories and judged
through ``bench report``: Table 3's "second branch matters most" decided on intervals of the differences
between ablations, the paper's own DRNet-RSIDE gap beside ours, what would decide an inconclusive verdict,
and one headline row per claim of the paper with its detail rows folded under it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.report.claims import (
    DEPENDS_ON_SETUP,
    INCONCLUSIVE,
    NOT_COMPARABLE,
    NOT_JUDGED,
    NOT_REPRODUCED,
    REPRODUCED,
)
from bench.report.claims import (
    PARITY_CLAIM as PARITY,
)
from bench.report.records import Claim
from bench.report.summary import summarise

CONVERGED = (0.9, 0.6, 0.45, 0.4, 0.38, 0.37, 0.37, 0.37)  # history.csv's test RMSE: a flat tail
SECOND_BRANCH = "Table 3: the second upsampling branch gives the largest improvement"
ABLATIONS = {  # suite entry -> its options
    "drnet-resnet18": {},
    "drnet-resnet18-no-diagonal": {"diagonal": False},
    "drnet-resnet18-no-aux-losses": {"aux_losses": False},
    "drnet-resnet18-no-second-branch": {"second_branch": False},
}


def bench_report(runs_dir: Path, out: Path, *extra: str) -> pd.DataFrame:
    """``bench report`` on ``runs_dir``; its summary.csv."""
    args = ["report", "--runs", str(runs_dir), "--out", str(out), "--n-boot", "300", *extra]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return pd.read_csv(out / "summary.csv", keep_default_na=False)


def write_ablations(runs_dir: Path, make_eval_run, noise: dict[str, float]) -> None:
    """The mini suite's Table 3 runs on ResNet-18, 3 seeds each, converged; ``noise``: entry -> the spread of
    its prediction errors (the full model and no-diagonal at 0.10 unless given)."""
    for name, options in ABLATIONS.items():
        for seed in (0, 1, 2):
            make_eval_run(
                runs_dir,
                "mini",
                name,
                "drnet",
                "resnet18",
                seed=seed,
                options=options,
                noise=noise.get(name, 0.10),
                predictions=False,
                history=CONVERGED,
            )


# ---------------------------------------------------------------- item 10: second branch, on differences


def test_second_branch_not_decided_by_a_point_estimate_when_the_difference_is_not_resolved(
    runs_dir, make_eval_run, tmp_path
):
    # removing aux losses hurts 0.1 % more than removing the second branch: the old rule said "not reproduced"
    write_ablations(
        runs_dir,
        make_eval_run,
        {"drnet-resnet18-no-second-branch": 0.116, "drnet-resnet18-no-aux-losses": 0.117},
    )
    summary = bench_report(runs_dir, tmp_path / "out")
    row = summary[summary["claim"] == SECOND_BRANCH].iloc[0]
    assert row["outcome"] == INCONCLUSIVE
    assert "others: aux_losses +17.5%" in row["measured"] and "RMSE change +17.4%" in row["measured"]
    assert "RMSE(no second branch) - RMSE(other), paired: aux_losses -0.0003 m [-0.0094, +0.0088]" in row["measured"]
    t3 = pd.read_csv(tmp_path / "out" / "table3.csv")
    aux = t3[(t3["variant"] == "no auxiliary losses") & (t3["backbone"] == "resnet18")].iloc[0]
    assert aux["second_branch_gap_ci_low"] < 0 < aux["second_branch_gap_ci_high"]


def test_second_branch_decided_by_the_paired_difference_where_the_two_changes_overlap(
    runs_dir, make_eval_run, tmp_path
):
    write_ablations(
        runs_dir,
        make_eval_run,
        {"drnet-resnet18-no-second-branch": 0.119, "drnet-resnet18-no-aux-losses": 0.116},
    )
    summary = bench_report(runs_dir, tmp_path / "out")
    row = summary[summary["claim"] == SECOND_BRANCH].iloc[0]
    t3 = pd.read_csv(tmp_path / "out" / "table3.csv").query("backbone == 'resnet18'").set_index("variant")
    second, aux = t3.loc["no second branch"], t3.loc["no auxiliary losses"]
    assert second["rmse_vs_full_rel_ci_low"] < aux["rmse_vs_full_rel_ci_high"]  # the changes' CIs overlap
    assert aux["second_branch_gap_ci_low"] > 0  # the paired difference does not
    assert row["outcome"] == REPRODUCED


# ------------------------------------------------------------------ item 11: what would decide it


def write_pair(runs_dir: Path, make_eval_run, drnet_noise: float, seeds=(0, 1, 2), wall_s=(600.0, 900.0)) -> None:
    """DRNet and RSIDE ResNet-50 of the paper suite on 20 frames, converged, with recorded wall times."""
    for (arch, noise), wall in zip((("drnet", drnet_noise), ("rside", 0.10)), wall_s, strict=True):
        for seed in seeds:
            path = make_eval_run(
                runs_dir,
                "paper",
                f"{arch}-resnet50",
                arch,
                "resnet50",
                seed=seed,
                noise=noise,
                frames=tuple(range(1, 21)),
                predictions=False,
                history=CONVERGED,
            )
            config = json.loads((path / "config.json").read_text())
            config["provenance"]["wall_time_s"] = wall
            (path / "config.json").write_text(json.dumps(config))


def parity_row(summary: pd.DataFrame) -> pd.Series:
    rows = summary[summary["claim"].str.startswith("Accuracy parity") & (summary["level"] == 1)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_an_inconclusive_verdict_says_how_many_seeds_would_decide_it_and_what_they_cost(
    runs_dir, make_eval_run, tmp_path
):
    write_pair(runs_dir, make_eval_run, drnet_noise=0.102)  # DRNet +3.6 % [+1.5 %, +5.8 %]: straddles +5 %
    row = parity_row(bench_report(runs_dir, tmp_path / "out"))
    estimate = (
        "estimate: 12 seeds per model would decide it (9 more DRNet runs and 9 more RSIDE runs, ~3h45m at their "
        "recorded wall times)"
    )
    assert row["outcome"] == INCONCLUSIVE and row["verdict"] == f"inconclusive; {estimate}"
    assert row["to_decide"] == estimate
    paired = pd.read_csv(tmp_path / "out" / "paired.csv")
    assert paired.loc[0, "rmse_rel_spread_wall_s_a"] == 600.0 and paired.loc[0, "rmse_rel_spread_frame_var"] > 0


def test_an_estimate_at_the_margin_says_that_seeds_alone_cannot_decide_it(runs_dir, make_eval_run, tmp_path):
    write_pair(runs_dir, make_eval_run, drnet_noise=0.104, seeds=(0, 1))  # +5.7 %: at the margin
    row = parity_row(bench_report(runs_dir, tmp_path / "out"))
    assert row["verdict"].startswith(
        "inconclusive: 2 seed(s), 3 needed; estimate: no number of seeds would decide it: the test frames' own "
        "noise alone gives an interval that reaches a boundary of the rule"
    )


# ---------------------------------------------------------------------------- item 9: the paper's own gap

GAP = "The paper's own DRNet - RSIDE gap (Table 1's numbers)"


def test_a_reproduction_of_the_papers_own_gap_reads_so_beside_the_parity_claim(runs_dir, make_eval_run, tmp_path):
    write_pair(runs_dir, make_eval_run, drnet_noise=0.104)  # DRNet +5.7 % worse, as the paper's ResNet-50 (+5.8 %)
    summary = bench_report(runs_dir, tmp_path / "out")
    parity = parity_row(summary)
    assert parity["outcome"] == INCONCLUSIVE  # the paper's claim in its words: its own numbers miss the margin
    gap = summary[(summary["claim"] == GAP) & (summary["level"] == 1)].iloc[0]
    assert gap["outcome"] == REPRODUCED and gap["verdict"] == "the paper's gap reproduced: our interval contains +5.8%"
    assert gap["paper"] == "RMSE 0.587 vs 0.555 m: +5.8% (DRNet's Table 1 row against RSIDE's paper)"
    assert gap["measured"].startswith("ours +5.7% [+3.5%, +7.9%]") and gap["measured"].endswith("the paper's +5.8%")
    paired = pd.read_csv(tmp_path / "out" / "paired.csv")
    assert paired.loc[0, "rmse_rel_paper"] == pytest.approx((0.587 - 0.555) / 0.555)


def test_parity_without_the_papers_gap_reads_as_a_gap_not_reproduced(runs_dir, make_eval_run, tmp_path):
    write_pair(runs_dir, make_eval_run, drnet_noise=0.10)
    summary = bench_report(runs_dir, tmp_path / "out")
    assert parity_row(summary)["outcome"] == REPRODUCED
    gap = summary[(summary["claim"] == GAP) & (summary["level"] == 1)].iloc[0]
    assert gap["outcome"] == NOT_REPRODUCED
    assert gap["verdict"] == "the paper's gap not reproduced: our interval excludes +5.8%"


# ------------------------------------------------------------------------ item 8: one headline per claim


def test_the_summary_leads_with_one_headline_per_claim_of_the_paper(
    runs_dir, make_eval_run, make_speed_sweep, tmp_path
):
    """The mini suite's shape: RSIDE and DRNet ResNet-18 and DRNet's three ablations, 3 seeds each, and a CPU speed
    sweep of the ResNet-50 pair."""
    write_ablations(runs_dir, make_eval_run, {"drnet-resnet18-no-second-branch": 0.2})
    for seed in (0, 1, 2):
        make_eval_run(
            runs_dir, "mini", "rside-resnet18", "rside", "resnet18", seed=seed, predictions=False, history=CONVERGED
        )
    make_speed_sweep(  # a sweep of this suite: the report judges no other suite's sweeps
        runs_dir,
        "mini-speed",
        {("rside", "resnet50"): (2.0, 1000.0), ("drnet", "resnet50"): (6.0, 500.0)},
        suite="mini",
    )
    summary = bench_report(runs_dir, tmp_path / "out", "--html")
    heads = summary[summary["level"] == 0]
    assert heads["claim"].tolist() == [
        "Accuracy parity: DRNet matches RSIDE (Table 1)",
        GAP,
        "Up to 15x faster per image at batch 1 (Table 2)",
        "10x less memory per image (Table 2)",
        "Real-time fps rate: DRNet resnet50 at batch 1 >= 25 images/s (summary)",
        SECOND_BRANCH,
        "Table 3: auxiliary losses improve the result a bit",
        "Table 3: diagonal connections may be useless",
    ]
    levels = {h: summary.loc[summary["headline"] == h, "level"].tolist() for h in heads["claim"]}
    assert (
        levels
        == {  # the detail rows, folded under their headline (the fixture sweep has one definition)
            heads["claim"].iloc[0]: [0, 1],  # parity: per backbone
            GAP: [0, 1],  # not measured: no backbone of the paper's
            heads["claim"].iloc[2]: [0, 1, 2],  # speed: per sweep and mode, then per backbone
            heads["claim"].iloc[3]: [0, 1, 2, 2, 3, 2],  # memory: per sweep and mode, per definition, per backbone
            heads["claim"].iloc[4]: [0, 1],  # real time: per sweep
            **{c: [0] for c in heads["claim"].iloc[5:]},  # each Table 3 finding is one verdict
        }
    )
    # headlines say what they rest on; the resnet18 pair is not the paper's backbone, the speed ratio 3x misses 12x
    parity = heads.iloc[0]
    assert parity["outcome"] == REPRODUCED and parity["verdict"] == parity_row(summary)["verdict"]
    assert heads.iloc[1]["outcome"] == "not measured here"
    assert heads.iloc[2]["outcome"] == NOT_REPRODUCED
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count('<tr class="headline">') == 8 and html.count("<details><summary>") == 5


def row(claim: str, scope: str, outcome: str, level: int = 1, verdict: str = "") -> Claim:
    return Claim(claim, scope, "paper", "measured", verdict or outcome, outcome, headline=claim, level=level)


def test_a_parity_headline_holds_only_if_every_judged_backbone_reproduces_it():
    rows = [
        row(PARITY, "resnet50 · rside-csv · the paper's regime", REPRODUCED),
        row(PARITY, "densenet161 · rside-csv · the paper's regime", NOT_COMPARABLE, verdict="not comparable: lr"),
        row(PARITY, "senet154 · rside-csv · the paper's regime", INCONCLUSIVE),
    ]
    head = summarise(rows)[0]
    assert (head.level, head.outcome) == (0, INCONCLUSIVE)
    assert head.verdict == (
        "inconclusive on senet154; reproduced within tolerance on resnet50 (not comparable: densenet161)"
    )
    assert head.scope == "3 backbones, 2 judged; rule: every"
    rows[2] = row(PARITY, "senet154 · rside-csv · the paper's regime", REPRODUCED)
    head = summarise(rows)[0]
    assert head.outcome == REPRODUCED
    assert head.verdict == (
        "reproduced within tolerance on every judged backbone (resnet50, senet154) (not comparable: densenet161)"
    )
    rows[0] = row(PARITY, "resnet50 · rside-csv · the paper's regime", NOT_REPRODUCED)
    assert summarise(rows)[0].outcome == NOT_REPRODUCED


def test_a_speed_headline_is_what_every_judged_sweep_and_mode_agrees_on():
    speed = "Up to 15x faster per image at batch 1 (Table 2)"
    rows = [
        row(speed, "resnet50 · A100 (cuda) · inference", REPRODUCED),
        row(speed, "resnet50 · A100 (cuda) · inference", REPRODUCED, level=2),
        row(speed, "resnet50 · Xeon (cpu) · inference", NOT_REPRODUCED),
        row(speed, "resnet18 (not in paper) · inference", NOT_JUDGED, level=2),
    ]
    out = summarise(rows)
    assert [c.level for c in out] == [0, 1, 2, 1, 2]
    assert (out[0].outcome, out[0].verdict) == (
        DEPENDS_ON_SETUP,
        "depends on the device or mode: reproduced within tolerance on resnet50 · A100 (cuda) · inference; "
        "not reproduced on resnet50 · Xeon (cpu) · inference",
    )
    assert summarise([rows[0], rows[1]])[0].verdict == REPRODUCED  # one setup: its verdict word for word


def test_nothing_judged_gives_the_shared_outcome_or_not_judged():
    pipeline = [
        row(PARITY, f"{b} · synthetic · pipeline check", NOT_JUDGED, verdict="not judged: pipeline check")
        for b in ("resnet18", "resnet34")
    ]
    assert summarise(pipeline)[0].verdict == "not judged: pipeline check (resnet18, resnet34)"
    mixed = [pipeline[0], row(PARITY, "resnet50 · x · y", NOT_COMPARABLE)]
    assert summarise(mixed)[0].outcome == NOT_JUDGED
    assert summarise(mixed)[0].verdict == "not judged: resnet18 not judged; resnet50 not comparable"
    finding = row("Table 3: diagonal connections may be useless", "resnet152", REPRODUCED, level=0)
    assert summarise([finding]) == [finding]  # one verdict: its own headline
