from __future__ import annotations

import pytest

from bench.config import ConfigError
from bench.suite import available_suites, load_suite, select_runs, with_overrides, with_seeds


def test_shipped_suites_load():
    assert {"smoke", "paper", "ablations", "regression"} <= set(available_suites())
    for name in available_suites():
        suite = load_suite(name)
        assert suite.runs or suite.speed
        assert all(r.suite == name for r in suite.runs)


def test_paper_has_table1_and_table3_runs_with_the_paper_recipe():
    paper = load_suite("paper")
    table1 = [r for r in paper.runs if "table1" in r.tables]
    table3 = [r for r in paper.runs if "table3" in r.tables]
    assert sorted((r.arch, r.backbone) for r in table1) == sorted(
        [
            ("rside", "resnet50"),
            ("rside", "densenet161"),
            ("rside", "senet154"),
            ("drnet", "resnet50"),
            ("drnet", "resnet152"),
            ("drnet", "densenet161"),
            ("drnet", "senet154"),
        ]
    )
    assert len(table3) == 4 and all((r.arch, r.backbone) == ("drnet", "resnet152") for r in table3)
    switches = sorted(tuple(sorted(r.options.items())) for r in table3)
    assert len(set(switches)) == 4  # the full model and each switch off once
    for r in paper.runs:
        assert (r.amsgrad, r.lr, r.weight_decay) == (True, 1e-4, 1e-4)
        assert (r.lr_schedule, r.lr_step_epochs, r.lr_gamma, r.epochs, r.batch_size) == ("step", 5, 0.1, 20, 8)
        assert r.weights == "imagenet" and r.data == "rside-csv" and r.protocol == "rside"
        assert r.train_variant == "rside-*"  # the paper regime: RSIDE's training set, nothing else


def test_ablations_suite_matches_papers_table3():
    paper = {r.name: r for r in load_suite("paper").runs if "table3" in r.tables}
    ablations = {r.name: r for r in load_suite("ablations").runs}
    assert paper.keys() == ablations.keys()
    for name, r in ablations.items():
        p = paper[name]
        assert r.replace(suite="paper", tables=p.tables) == p


def test_smoke_and_regression_are_small_cpu_and_download_free():
    for name in ("smoke", "regression"):
        for r in load_suite(name).runs:
            assert r.device == "cpu" and r.weights is None and r.data == "synthetic"
            assert r.train_frames and r.eval_frames and r.input_size
    assert all(r.deterministic for r in load_suite("regression").runs)


def test_mini_is_tables_1_and_3_in_miniature_on_one_recipe():
    from architectures.data.synthetic import settings_from_name, synthetic_split
    from bench.plan import plan_from_options

    suite = load_suite("mini")
    assert suite.purpose == "miniature" and suite.seeds == (0, 1, 2, 3, 4)  # seeds the parity verdict needs
    runs, _ = plan_from_options(suite)
    assert len(runs) == 25 and {r.seed for r in runs} == {0, 1, 2, 3, 4}
    assert {(r.arch, r.backbone) for r in suite.runs} == {("rside", "resnet18"), ("drnet", "resnet18")}
    table1 = sorted(r.arch for r in suite.runs if "table1" in r.tables)
    assert table1 == ["drnet", "rside"]
    table3 = [r for r in suite.runs if "table3" in r.tables]
    off = sorted(
        tuple(k for k in ("diagonal", "aux_losses", "second_branch") if not r.options.get(k, True)) for r in table3
    )
    assert off == [(), ("aux_losses",), ("diagonal",), ("second_branch",)]  # full model + each switch off once
    recipes = {
        (
            r.lr,
            r.betas,
            r.weight_decay,
            r.amsgrad,
            r.lr_schedule,
            r.lr_step_epochs,
            r.lr_gamma,
            r.epochs,
            r.batch_size,
            r.input_size,
            r.train_frames,
            r.eval_frames,
        )
        for r in suite.runs
    }
    assert len(recipes) == 1 and next(iter(recipes))[3] is True  # one recipe, Adam with amsgrad
    for r in suite.runs:
        assert r.device == "cpu" and r.weights is None and r.data == "synthetic"
        named = settings_from_name(r.data_path)  # generated on first use from its name
        assert named["frames"] == 256 and r.eval_frames == 64 == len(synthetic_split(named["frames"])["test"])
        assert r.input_size[0] % 32 == 0 and r.input_size[1] % 32 == 0  # DRNet's down branch
        assert r.eval_every_epochs == 1  # a test RMSE per epoch for the report's curves
    assert [(s["name"], s["arch"], s["backbone"]) for s in suite.speed] == [
        ("rside-resnet50", "rside", "resnet50"),
        ("drnet-resnet50", "drnet", "resnet50"),
    ]


def write(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def test_unknown_keys_name_the_file_and_the_run(tmp_path):
    with pytest.raises(ConfigError, match=r"s.toml \[\[runs\]\] 'a': unknown key\(s\) 'epoch'"):
        load_suite(write(tmp_path, '[[runs]]\nname = "a"\nepoch = 3\n'))
    with pytest.raises(ConfigError, match=r"s.toml \[defaults\]: unknown key\(s\) 'lrr'"):
        load_suite(write(tmp_path, '[defaults]\nlrr = 1\n[[runs]]\nname = "a"\n'))
    with pytest.raises(ConfigError, match="unknown top-level key"):
        load_suite(write(tmp_path, 'run = 1\n[[runs]]\nname = "a"\n'))
    with pytest.raises(ConfigError, match="duplicate run name"):
        load_suite(write(tmp_path, '[[runs]]\nname = "a"\n[[runs]]\nname = "a"\n'))
    with pytest.raises(ConfigError, match="each run needs a name"):
        load_suite(write(tmp_path, '[[runs]]\narch = "rside"\n'))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_suite(write(tmp_path, "[[runs]\n"))
    with pytest.raises(ConfigError, match="unknown suite 'nope'; available: .*smoke"):
        load_suite("nope")


def test_speed_entries_are_validated(tmp_path):
    suite = load_suite(write(tmp_path, '[[speed]]\nname = "x"\narch = "rside"\nbackbone = "resnet50"\n'))
    assert suite.runs == () and suite.speed[0]["name"] == "x"
    with pytest.raises(ConfigError, match=r"\[\[speed\]\] entry 1 \('x'\): missing required key 'backbone'"):
        load_suite(write(tmp_path, '[[speed]]\nname = "x"\narch = "rside"\n'))
    with pytest.raises(ConfigError, match=r"\[\[speed\]\] entry 2 \('x'\): duplicate name 'x'"):
        load_suite(write(tmp_path, '[[speed]]\nname = "x"\narch = "a"\nbackbone = "b"\n' * 2))


def test_options_merge_over_defaults(tmp_path):
    suite = load_suite(
        write(
            tmp_path,
            '[defaults]\narch = "drnet"\noptions = {diagonal = true, aux_losses = true}\n'
            '[[runs]]\nname = "a"\noptions = {diagonal = false}\n',
        )
    )
    assert suite.runs[0].options == {"diagonal": False, "aux_losses": True}


def test_select_seeds_overrides():
    runs = list(load_suite("paper").runs)
    assert [r.name for r in select_runs(runs, "rside-*")] == ["rside-resnet50", "rside-densenet161", "rside-senet154"]
    assert len(select_runs(runs, "rside-resnet50,drnet-resnet50")) == 2
    with pytest.raises(ConfigError, match="matches no run"):
        select_runs(runs, "nothing*")
    seeded = with_seeds(select_runs(runs, "rside-resnet50"), [0, 1, 2])
    assert [r.run_id for r in seeded] == [f"paper-rside-resnet50-s{s}" for s in (0, 1, 2)]
    over = with_overrides(seeded, device="cpu", epochs=None)
    assert all(r.device == "cpu" and r.epochs == 20 for r in over)


def test_suites_declare_purpose_and_verdict_suites_default_to_three_seeds():
    from bench.plan import plan_from_options

    for name in ("smoke", "regression"):
        suite = load_suite(name)
        assert suite.purpose == "pipeline" and suite.seeds is None
        runs, _ = plan_from_options(suite)
        assert len(runs) == 2  # CI time: one seed per run, as before
    for name in ("paper", "ablations"):
        suite = load_suite(name)
        assert suite.purpose == "paper" and suite.seeds == (0, 1, 2)
        runs, _ = plan_from_options(suite, device="cpu")
        assert len(runs) == 3 * len(suite.runs)
        assert {r.seed for r in runs} == {0, 1, 2}
        overridden, _ = plan_from_options(suite, device="cpu", seeds="4")
        assert len(overridden) == len(suite.runs) and {r.seed for r in overridden} == {4}


@pytest.mark.parametrize(
    ("line", "match"),
    [('purpose = "vibes"', "purpose must be one of"), ("seeds = [0, 0]", "distinct"), ("seeds = []", "non-empty")],
)
def test_bad_purpose_or_seeds_are_rejected(tmp_path, line, match):
    path = tmp_path / "s.toml"
    path.write_text(f'{line}\n[[runs]]\nname = "a"\n')
    with pytest.raises(ConfigError, match=match):
        load_suite(path)
