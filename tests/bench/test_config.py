from __future__ import annotations

import json

import pytest

from bench.config import OPERATIONAL_FIELDS, ConfigError, RunConfig, config_diff


def test_defaults_follow_the_paper_recipe():
    c = RunConfig()
    assert (c.lr, c.weight_decay, c.amsgrad, c.betas) == (1e-4, 1e-4, True, (0.9, 0.999))
    assert (c.lr_schedule, c.lr_step_epochs, c.lr_gamma, c.epochs, c.batch_size) == ("step", 5, 0.1, 20, 8)
    assert c.checkpoint_select == "last" and c.weights is None


def test_round_trip_through_json(tmp_path):
    c = RunConfig(
        suite="s",
        name="n",
        arch="drnet",
        backbone="resnet152",
        options={"diagonal": False},
        input_size=(120, 160),
        tables=("table1", "table3"),
        max_steps=7,
        grad_clip_norm=1.0,
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"config": c.to_dict(), "provenance": {}}))
    back = RunConfig.from_json_file(path)
    assert back == c
    assert back.input_size == (120, 160) and isinstance(back.input_size, tuple)
    assert json.loads(json.dumps(c.to_dict())) == c.to_dict()  # plain JSON types only


def test_old_config_json_with_the_retired_optimizer_key_still_loads(tmp_path):
    c = RunConfig(suite="s", name="n")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"config": {**c.to_dict(), "optimizer": "adam"}, "provenance": {}}))
    assert "optimizer" not in c.to_dict()
    assert RunConfig.from_json_file(path) == c
    with pytest.raises(ConfigError, match=r"config.json: optimizer = 'sgd'; .*could only be 'adam'"):
        RunConfig.from_dict({"optimizer": "sgd"}, where="config.json")


def test_unknown_key_is_an_error_with_a_hint():
    with pytest.raises(ConfigError, match=r"suite.toml: unknown key\(s\) 'epoch' \(did you mean 'epochs'\?\)"):
        RunConfig.from_dict({"epoch": 3}, where="suite.toml")
    with pytest.raises(ConfigError, match="unknown key"):
        RunConfig().replace(learning_rate=1.0)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"epochs": "3"}, "epochs = '3': expected an integer"),
        ({"epochs": 2.5}, "expected an integer"),
        ({"lr": True}, "lr = True: expected a number"),
        ({"amsgrad": 1}, "expected true or false"),
        ({"input_size": [1, 2, 3]}, "expected 2 values"),
        ({"options": [1]}, "expected a table"),
        ({"weights": 3}, "expected a string"),
        ({"amp": "bf16"}, "needs device = 'cuda'"),
        ({"amp": "int8", "device": "cuda"}, "amp = 'int8'; expected one of none, bf16, fp16"),
        ({"batch_size": 0}, "batch_size = 0 must be positive"),
        ({"epochs": 0}, "only makes sense for an imported run"),
        ({"max_steps": 0}, "max_steps = 0 must be positive"),
        ({"name": "a b"}, "without spaces or slashes"),
        ({"betas": [0.9, 1.0]}, r"betas = \(0.9, 1.0\)"),
        ({"input_size": [16, 16]}, ">= 32 pixels"),
    ],
)
def test_bad_values_are_rejected(bad, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(bad)


def test_int_is_accepted_for_float_fields():
    assert RunConfig(lr=1).lr == 1.0 and isinstance(RunConfig(lr=1).lr, float)


def test_run_id():
    assert (
        RunConfig(suite="paper", name="drnet-resnet152-no-diagonal", seed=2).run_id
        == "paper-drnet-resnet152-no-diagonal-s2"
    )


def test_imported_runs_may_have_zero_epochs():
    assert RunConfig(source="imported", epochs=0).epochs == 0


def test_config_diff_ignores_operational_fields():
    a = RunConfig()
    b = a.replace(num_workers=4, log_every_steps=1, lr=2e-4, epochs=3)
    assert {k for k, _, _ in config_diff(a, b)} == {"lr", "epochs"}
    assert "num_workers" in OPERATIONAL_FIELDS
    assert config_diff(a, a) == []
