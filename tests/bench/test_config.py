from __future__ import annotations

import dataclasses
import json

import pytest

import bench.config as config_module
from bench.config import (
    FIELD_ROLES,
    IDENTITY_FIELDS,
    OPERATIONAL_FIELDS,
    REGIME_CONFIG_FIELDS,
    ConfigError,
    Role,
    RunConfig,
    config_diff,
)


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
        ({"amp": "fp16"}, "needs device = 'cuda'"),
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


def test_every_field_has_exactly_one_declared_role():
    """Adding a RunConfig field without a role in FIELD_ROLES fails here (and at import)."""
    names = [f.name for f in dataclasses.fields(RunConfig)]
    assert list(FIELD_ROLES) == names  # one entry per field, in declaration order, nothing else
    assert all(isinstance(role, Role) for role in FIELD_ROLES.values())
    groups = (set(IDENTITY_FIELDS), set(REGIME_CONFIG_FIELDS), set(OPERATIONAL_FIELDS))
    assert set().union(*groups) == set(names) and sum(map(len, groups)) == len(names)


def test_a_field_without_a_role_is_an_error_naming_it(monkeypatch):
    monkeypatch.delitem(config_module.FIELD_ROLES, "grad_clip_norm")
    with pytest.raises(TypeError, match=r"no role for \['grad_clip_norm'\]"):
        config_module._check_roles()


def test_roles_of_the_fields_that_shape_the_recipe():
    # the case: every one of these changed the numbers and yet passed for "comparable"
    recipe = ["lr", "weight_decay", "betas", "lr_gamma", "lr_step_epochs", "grad_clip_norm", "amp"]
    assert set(recipe + ["checkpoint_select", "train_split", "device", "eval_every_epochs"]) <= set(
        REGIME_CONFIG_FIELDS
    )
    assert set(IDENTITY_FIELDS) == {"suite", "name", "tables", "arch", "backbone", "options", "seed"}
    assert OPERATIONAL_FIELDS == {
        "num_workers",
        "eval_batch_size",
        "checkpoint_every_steps",
        "log_every_steps",
        "keep_checkpoints",
    }
