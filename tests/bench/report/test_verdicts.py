"""Verdicts a reviewer can trust, on hand-made run directories (no training): comparability, two-sided parity,
seeds, suite purpose, and the regime columns of Tables 1 and 3."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.report.build import ReportConfig, make_report
from bench.report.claims import (
    BETTER_THAN_MARGIN,
    INCONCLUSIVE,
    NOT_COMPARABLE,
    NOT_JUDGED,
    NOT_REPRODUCED,
    REPRODUCED,
    TOLERANCES,
    evaluate_claims,
)
from bench.report.records import PairedRow, Table1Row, Table3Row, frame
from bench.report.regime import Regime, paper_differences, regime_of, short_regime
from bench.report.runs import group_runs, load_runs
from bench.report.tables import build_tables

N_BOOT = 300
CONVERGED = (0.9, 0.6, 0.45, 0.4, 0.38, 0.37, 0.37, 0.37)  # history.csv's test RMSE: a flat tail
FRAMES = tuple(range(1, 41))
TRAINED_795 = {
    "metrics_extra": {
        "source": "train",
        "steps": 2000,
        "epoch": 20,
        "data": {"source": "nyu-labeled", "split": "test", "train_variant": "nyu-labeled-795", "frames": len(FRAMES)},
    },
    "config_extra": {
        "source": "train",
        "weights": "imagenet",
        "batch_size": 8,
        "epochs": 20,
        "lr_schedule": "step",
        "amsgrad": True,
    },
}
IMPORTED = {
    "metrics_extra": {
        "source": "imported",
        "steps": 0,
        "epoch": 0,
        "checkpoint": "imported",
        "data": {"source": "nyu-labeled", "split": "test", "train_variant": "rside-official", "frames": len(FRAMES)},
    },
    "config_extra": {
        "source": "imported",
        "weights": "/ckpt/model_resnet.pth.tar",
        "batch_size": 8,
        "epochs": 0,
        "lr_schedule": "step",
        "amsgrad": True,
    },
}


def write_pair(
    runs_dir,
    make_eval_run,
    seeds,
    drnet_noise=0.1,
    rside_noise=0.1,
    rside_bias=0.0,
    drnet_regime=TRAINED_795,
    rside_regime=TRAINED_795,
    suite="paper",
    history=CONVERGED,
):
    for s in seeds:
        make_eval_run(
            runs_dir,
            suite,
            "drnet-resnet50",
            "drnet",
            "resnet50",
            seed=s,
            frames=FRAMES,
            noise=drnet_noise,
            predictions=False,
            history=history,
            **drnet_regime,
        )
        make_eval_run(
            runs_dir,
            suite,
            "rside-resnet50",
            "rside",
            "resnet50",
            seed=s,
            frames=FRAMES,
            noise=rside_noise,
            bias=rside_bias,
            predictions=False,
            history=history if rside_regime is not IMPORTED else None,
            **rside_regime,
        )


def parity(runs_dir, purpose=None):
    tables = build_tables(load_runs(runs_dir).evals, [], n_boot=N_BOOT)
    claims = [c for c in evaluate_claims(tables, purpose) if c.claim.startswith("Accuracy parity")]
    assert len(claims) == 1
    return tables, claims[0]


def test_imported_official_rside_vs_drnet_trained_on_795_frames_is_not_comparable(runs_dir, make_eval_run):
    """The issue's case: a far better 'DRNet' against imported weights, silently paired before."""
    write_pair(runs_dir, make_eval_run, [0], rside_bias=1.5, rside_regime=IMPORTED)
    tables, claim = parity(runs_dir)
    row = frame(tables.paired, PairedRow).iloc[0]
    assert row["rmse_rel_diff"] < -0.5  # the numbers are still shown
    assert claim.outcome == NOT_COMPARABLE and claim.verdict.startswith("not comparable: ")
    for field in (
        "source train vs imported",
        "train_variant nyu-labeled-795 vs rside-official",
        "steps 2000 vs 0",
        "init imagenet vs official checkpoint",
    ):
        assert field in claim.verdict
    assert row["rside_regime"] == "imported official"
    assert row["drnet_regime"] == "labeled-795, 2.0k steps, 1 seed"


def test_summary_csv_and_html_show_not_comparable(runs_dir, make_eval_run, tmp_path):
    write_pair(runs_dir, make_eval_run, [0], rside_bias=1.5, rside_regime=IMPORTED)
    make_report(ReportConfig(runs_dir=runs_dir, out_dir=tmp_path / "out", html=True, n_boot=N_BOOT), log=lambda _: None)
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    parity_row = summary[summary["claim"].str.startswith("Accuracy parity")].iloc[0]
    assert parity_row["outcome"] == NOT_COMPARABLE and "steps 2000 vs 0" in parity_row["verdict"]
    html = (tmp_path / "out" / "report.html").read_text()
    assert "not comparable: " in html and "imported official" in html
    t1 = pd.read_csv(tmp_path / "out" / "table1.csv")
    assert {"regime", "paper_regime"} <= set(t1.columns)


def test_drnet_twenty_percent_better_is_not_reproduced(runs_dir, make_eval_run):
    write_pair(runs_dir, make_eval_run, [0, 1, 2], drnet_noise=0.08, rside_noise=0.1)
    tables, claim = parity(runs_dir)
    assert frame(tables.paired, PairedRow).iloc[0]["rmse_rel_diff"] == pytest.approx(-0.2, abs=0.03)
    assert claim.outcome == BETTER_THAN_MARGIN and claim.outcome != REPRODUCED
    assert "check the RSIDE run" in claim.verdict


def test_pair_within_margin_with_three_seeds_is_reproduced_and_with_one_seed_inconclusive(
    runs_dir, make_eval_run, tmp_path
):
    write_pair(runs_dir, make_eval_run, [0, 1, 2])
    tables, claim = parity(runs_dir)
    row = frame(tables.paired, PairedRow).iloc[0]
    assert -0.05 < row["rmse_rel_ci_low"] < row["rmse_rel_ci_high"] < 0.05
    assert row["ci_covers"] == "training seeds and test frames"
    assert claim.outcome == REPRODUCED and claim.verdict == REPRODUCED

    one = tmp_path / "one"
    one.mkdir()
    write_pair(one, make_eval_run, [0])
    _, claim1 = parity(one)
    assert claim1.outcome == INCONCLUSIVE and claim1.verdict == "inconclusive: 1 seed(s), 3 needed"


def test_pipeline_suites_do_not_judge_accuracy(runs_dir, make_eval_run):
    write_pair(runs_dir, make_eval_run, [0, 1, 2], drnet_noise=0.2, rside_noise=0.1, suite="smoke")
    tables = build_tables(load_runs(runs_dir).evals, [], n_boot=N_BOOT)
    claims = evaluate_claims(tables, "pipeline")
    accuracy = [c for c in claims if c.claim.startswith(("Accuracy", "Table 3"))]
    assert all(c.outcome != NOT_REPRODUCED for c in claims)
    parity_claim = accuracy[0]
    assert parity_claim.outcome == NOT_JUDGED and parity_claim.verdict == "not judged: pipeline check"
    assert "pipeline check" in parity_claim.scope and "RMSE" in parity_claim.measured  # numbers still shown
    mini = [c for c in evaluate_claims(tables, "miniature") if c.claim.startswith("Accuracy")][0]
    assert mini.outcome == NOT_REPRODUCED and "in miniature" in mini.scope


def test_ablation_vs_full_model_needs_a_matching_regime_and_three_seeds(runs_dir, make_eval_run):
    for s in (0, 1, 2):
        make_eval_run(
            runs_dir,
            "ablations",
            "drnet-resnet152",
            "drnet",
            "resnet152",
            seed=s,
            predictions=False,
            options={"diagonal": True},
            **TRAINED_795,
        )
        steps = {**TRAINED_795, "metrics_extra": {**TRAINED_795["metrics_extra"], "steps": 500}}
        make_eval_run(
            runs_dir,
            "ablations",
            "drnet-resnet152-no-diagonal",
            "drnet",
            "resnet152",
            seed=s,
            predictions=False,
            options={"diagonal": False},
            **steps,
        )
    tables = build_tables(load_runs(runs_dir).evals, [], n_boot=N_BOOT)
    t3 = frame(tables.table3, Table3Row)
    row = t3[~t3["diagonal"].astype(bool)].iloc[0]
    assert row["vs_full_not_comparable"] == "steps 500 vs 2000"
    claim = [c for c in evaluate_claims(tables, "paper") if "diagonal" in c.claim][0]
    assert claim.outcome == NOT_COMPARABLE and "steps 500 vs 2000" in claim.verdict


def test_regime_columns_and_the_papers_regime(runs_dir, make_eval_run):
    write_pair(runs_dir, make_eval_run, [0, 1, 2])
    tables = build_tables(load_runs(runs_dir).evals, [], n_boot=N_BOOT)
    t1 = frame(tables.table1, Table1Row)
    row = t1[(t1["arch"] == "drnet") & (t1["backbone"] == "resnet50")].iloc[0]
    assert row["regime"] == "labeled-795, 2.0k steps, 3 seeds"
    assert row["paper_regime"].startswith("differs: trained on labeled-795 (paper: rside-csv ~50k frames)")
    assert "40 test frames (paper: NYU 654)" in row["paper_regime"]
    group = group_runs(load_runs(runs_dir).evals)[0]
    regime = regime_of(group.first)
    paper_like = Regime(**{**regime.__dict__, "data": "rside-csv", "train_variant": "rside-50688", "steps": 126_720})
    assert paper_differences(paper_like, 654) == []
    assert paper_differences(regime_of(group.first).__class__(**{**paper_like.__dict__, "batch": 4}), 654) == [
        "batch 4 (paper: 8)"
    ]
    assert short_regime(group).endswith("3 seeds")


def test_tolerance_block_states_every_rule():
    text = " ".join(TOLERANCES)
    for needle in (
        "[-5%, +5%]",
        "not comparable",
        ">= 3 seeds",
        "Welch-Satterthwaite",
        "pipeline check",
        "in miniature",
        BETTER_THAN_MARGIN,
    ):
        assert needle in text, needle


def write_history(run_dir, rmse_per_epoch, steps_per_epoch=12):
    lines = ["epoch,step,train_loss,test_rmse"]
    lines += [f"{e},{e * steps_per_epoch},1.0,{r}" for e, r in enumerate(rmse_per_epoch, start=1)]
    (run_dir / "history.csv").write_text("\n".join(lines) + "\n")


def test_a_run_still_moving_or_no_better_than_a_constant_is_not_judged(runs_dir, make_eval_run):
    write_pair(runs_dir, make_eval_run, [0, 1, 2], suite="mini")
    flat = [1.0, 0.5, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
    for path in sorted(runs_dir.iterdir()):
        write_history(path, flat)
    _, claim = parity(runs_dir, "miniature")
    assert claim.outcome == REPRODUCED  # flat curves, better than one constant depth: judged

    write_history(runs_dir / "mini-rside-resnet50-s1", [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.33])
    tables, claim = parity(runs_dir, "miniature")
    assert claim.outcome == NOT_JUDGED and claim.verdict.startswith("not judged: not converged: mini-rside-resnet50-s1")
    assert "still moving, test RMSE 0.330 m at the end, -17.5% from 0.400 m, the median of its last 3 of 8" in (
        claim.verdict
    )
    assert "RMSE" in claim.measured  # the numbers are still shown
    assert frame(tables.paired, PairedRow).iloc[0]["not_converged"].startswith("mini-rside-resnet50-s1")


def test_a_run_no_better_than_one_constant_depth_is_not_judged(runs_dir, make_eval_run):
    write_pair(runs_dir, make_eval_run, [0, 1, 2], suite="mini")
    metrics_path = runs_dir / "mini-drnet-resnet50-s2" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    pooled = metrics["reductions"]["pooled"]["rmse"]
    metrics["reference"] = {"constant_depth_m": 2.5, "constant_rmse": pooled * 0.99}
    metrics_path.write_text(json.dumps(metrics))
    _, claim = parity(runs_dir, "miniature")
    assert claim.outcome == NOT_JUDGED
    assert "mini-drnet-resnet50-s2: pooled RMSE" in claim.verdict and "constant depth" in claim.verdict

    metrics["reference"]["constant_rmse"] = pooled * 1.5  # a network that beats the constant: judged
    metrics_path.write_text(json.dumps(metrics))
    _, claim = parity(runs_dir, "miniature")
    assert claim.outcome == REPRODUCED


def test_the_second_branch_claim_is_not_judged_when_its_ablation_did_not_learn(runs_dir, make_eval_run):
    variants = {
        "drnet-resnet18": {},
        "drnet-resnet18-no-diagonal": {"diagonal": False},
        "drnet-resnet18-no-aux-losses": {"aux_losses": False},
        "drnet-resnet18-no-second-branch": {"second_branch": False},
    }
    for s in (0, 1, 2):
        for name, options in variants.items():
            noise = 0.5 if "second" in name else 0.1
            path = make_eval_run(
                runs_dir,
                "mini",
                name,
                "drnet",
                "resnet18",
                seed=s,
                predictions=False,
                options=options,
                noise=noise,
                history=CONVERGED,
            )
            if "second" in name:  # the 4-channel head still far from the depths: worse than a constant
                metrics = json.loads((path / "metrics.json").read_text())
                metrics["reference"] = {"constant_depth_m": 2.0, "constant_rmse": 0.1}
                (path / "metrics.json").write_text(json.dumps(metrics))
    tables = build_tables(load_runs(runs_dir).evals, [], n_boot=N_BOOT)
    claims = {c.claim: c for c in evaluate_claims(tables, "miniature") if c.claim.startswith("Table 3")}
    second = claims["Table 3: the second upsampling branch gives the largest improvement"]
    assert second.outcome == NOT_JUDGED and "not converged" in second.verdict
    assert second.verdict.count("no better than one constant depth") == 3  # one line per seed, not repeated
    aux = claims["Table 3: auxiliary losses improve the result a bit"]
    assert aux.outcome != NOT_JUDGED  # the other ablations converged: still judged
