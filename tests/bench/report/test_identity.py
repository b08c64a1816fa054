"""Model identity: seeds built with other resolved options are never pooled nor compared as like with like."""

from __future__ import annotations

from bench.provenance import resolved_model_options
from bench.report.identity import identity_of, options_label, same_model
from bench.report.records import Table3Row, frame
from bench.report.regime import short_regime
from bench.report.runs import group_runs, load_runs
from bench.report.tables import build_tables

N_BOOT = 200


def old_default_record() -> dict:
    """What a DRNet run would have recorded while up2_init defaulted to PyTorch's init."""
    record = resolved_model_options("drnet", {})
    for part in ("resolved", "defaults"):
        record[part]["up2_init"] = "default"
    return record


def groups_of(runs_dir):
    return group_runs(load_runs(runs_dir).evals)


def test_seeds_without_a_record_are_not_pooled_with_recorded_drnet_seeds(runs_dir, make_eval_run):
    make_eval_run(runs_dir, "s", "drnet-resnet50", "drnet", "resnet50", seed=0, model_options=None)
    for seed in (1, 2):
        make_eval_run(runs_dir, "s", "drnet-resnet50", "drnet", "resnet50", seed=seed)
    groups = groups_of(runs_dir)
    assert [[r.seed for r in g.runs] for g in groups] == [[1, 2], [0]]  # recorded and more seeds first
    assert options_label(groups[0]) == ""  # today's defaults: nothing to say
    assert options_label(groups[1]) == "options not recorded: up2_init unknown"
    assert short_regime(groups[1]).endswith(", 1 seed, options not recorded: up2_init unknown")
    sel = build_tables(load_runs(runs_dir).evals, [], n_boot=N_BOOT).selection
    assert sel.table1[("drnet", "resnet50")] is not None
    assert [r.seed for r in sel.table1[("drnet", "resnet50")].runs] == [1, 2]
    assert any(
        "seed(s) 1,2 and seed(s) 0 were built with different models (model option up2_init zero vs not recorded)" in n
        for n in sel.notes
    )


def test_recorded_seeds_that_resolved_a_changed_default_differently_are_split(runs_dir, make_eval_run):
    make_eval_run(runs_dir, "s", "drnet-resnet50", "drnet", "resnet50", seed=0, model_options=old_default_record())
    make_eval_run(runs_dir, "s", "drnet-resnet50", "drnet", "resnet50", seed=1)
    groups = groups_of(runs_dir)
    assert len(groups) == 2
    assert {options_label(g) for g in groups} == {"", "up2_init=default"}


def test_what_is_known_without_a_record_is_pooled(runs_dir, make_eval_run):
    # RSIDE has no option whose default changed; a DRNet that set up2_init in its suite fixed it.
    make_eval_run(runs_dir, "s", "rside-resnet50", "rside", "resnet50", seed=0, model_options=None)
    make_eval_run(runs_dir, "s", "rside-resnet50", "rside", "resnet50", seed=1)
    make_eval_run(
        runs_dir, "s", "drnet-zero", "drnet", "resnet50", seed=0, options={"up2_init": "zero"}, model_options=None
    )
    make_eval_run(runs_dir, "s", "drnet-zero", "drnet", "resnet50", seed=1, options={"up2_init": "zero"})
    make_eval_run(runs_dir, "s", "drnet-old", "drnet", "resnet50", seed=0, model_options=None)
    make_eval_run(runs_dir, "s", "drnet-old", "drnet", "resnet50", seed=1, model_options=None)
    groups = {g.first.name: g for g in groups_of(runs_dir)}
    assert {k: [r.seed for r in g.runs] for k, g in groups.items()} == {
        "rside-resnet50": [0, 1],
        "drnet-zero": [0, 1],
        "drnet-old": [0, 1],
    }
    assert options_label(groups["rside-resnet50"]) == ""
    assert options_label(groups["drnet-zero"]) == ""  # seed 1's record speaks: today's default
    assert options_label(groups["drnet-old"]) == "options not recorded: up2_init unknown"


def test_identity_rule_pairwise(runs_dir, make_eval_run):
    old = identity_of(load_eval(make_eval_run(runs_dir, "s", "a", "drnet", "resnet50", model_options=None)))
    new = identity_of(load_eval(make_eval_run(runs_dir, "s", "b", "drnet", "resnet50")))
    then = identity_of(
        load_eval(make_eval_run(runs_dir, "s", "c", "drnet", "resnet50", model_options=old_default_record()))
    )
    assert not old.recorded and old.unknown == ("up2_init",) and new.recorded and new.unknown == ()
    assert not same_model(old, new) and not same_model(old, then) and not same_model(new, then)
    assert same_model(old, old) and same_model(new, new)


def test_an_ablation_with_other_options_than_the_full_model_is_not_comparable(runs_dir, make_eval_run):
    make_eval_run(runs_dir, "s", "drnet-resnet50", "drnet", "resnet50")
    make_eval_run(
        runs_dir,
        "s",
        "drnet-resnet50-no-diagonal",
        "drnet",
        "resnet50",
        options={"diagonal": False},
        model_options=None,
    )
    make_eval_run(runs_dir, "s", "drnet-resnet50-no-aux", "drnet", "resnet50", options={"aux_losses": False})
    t3 = frame(build_tables(load_runs(runs_dir).evals, [], n_boot=N_BOOT).table3, Table3Row)
    rows = {r["variant"]: r for _, r in t3[t3["run"] != ""].iterrows()}
    no_diag, no_aux = rows["no diagonal connections"], rows["no auxiliary losses"]
    assert no_diag["vs_full_not_comparable"] == "model option up2_init not recorded vs zero"
    assert no_diag["regime"].endswith(", options not recorded: up2_init unknown")
    assert no_aux["vs_full_not_comparable"] == ""  # recorded, same options besides its switch
    assert not no_aux["regime"].endswith("unknown")


def load_eval(path):
    from bench.report.runs import load_eval_run

    return load_eval_run(path)


def test_curves_give_seeds_of_another_model_their_own_colour(runs_dir, make_eval_run):
    from bench.report.curves import load_curves

    paths = [
        make_eval_run(runs_dir, "s", "drnet-resnet50", "drnet", "resnet50", seed=0, model_options=None),
        make_eval_run(runs_dir, "s", "drnet-resnet50", "drnet", "resnet50", seed=1),
    ]
    for p in paths:
        (p / "history.csv").write_text("epoch,step,train_loss,test_rmse\n1,4,2.0,1.5\n")
    curves, problems = load_curves(groups_of(runs_dir))
    assert problems == []
    assert {c.seed: c.model for c in curves} == {
        0: "drnet-resnet50 (options not recorded: up2_init unknown)",
        1: "drnet-resnet50",
    }
