from __future__ import annotations

import io
import json

import pytest
from runner_fixtures import register_tiny_model, tiny_config

from bench.config import ConfigError
from bench.lifecycle import execute_run
from bench.provenance import model_options_change, resolved_model_options
from bench.rundir import RunDir


def test_resolved_options_overlay_the_explicit_options_on_the_defaults():
    record = resolved_model_options("drnet", {"diagonal": False, "up_channels": (8, 8, 8, 8, 8)})
    assert record["defaults"]["diagonal"] is True and record["defaults"]["up2_init"] == "zero"
    resolved = record["resolved"]
    assert resolved["diagonal"] is False and resolved["up2_init"] == "zero"
    assert resolved["up_channels"] == [8, 8, 8, 8, 8]  # as it reads back from JSON
    assert set(resolved) == set(record["defaults"])
    assert json.loads(json.dumps(record)) == record


def test_options_change_names_what_a_rebuilt_model_would_do_differently():
    recorded = {"model_options": resolved_model_options("drnet", {"up2_init": "default"})}
    assert model_options_change(recorded, "drnet", {"up2_init": "default"}) is None
    assert model_options_change(recorded, "drnet", {}) == "up2_init 'default' -> 'zero'"
    assert model_options_change({}, "drnet", {}) is None  # nothing recorded: nothing to compare


def test_a_run_records_the_options_its_model_was_built_with(tmp_path, tiny_data):
    register_tiny_model()
    config = tiny_config(epochs=1, options={"width": 4})
    execute_run(config, tmp_path, stream=io.StringIO())
    _, provenance = RunDir.for_config(config, tmp_path).read_config()
    assert provenance["model_options"] == {"resolved": {"width": 4}, "defaults": {"width": 8}}
    default = tiny_config(epochs=1, name="tiny-default")
    execute_run(default, tmp_path, stream=io.StringIO())
    _, provenance = RunDir.for_config(default, tmp_path).read_config()
    assert provenance["model_options"]["resolved"] == {"width": 8}


def test_resume_refuses_a_run_started_with_other_resolved_options(tmp_path, tiny_data):
    config = tiny_config(epochs=1)
    rd = RunDir.for_config(config, tmp_path)
    rd.root.mkdir(parents=True)
    rd.write_config(
        config.replace(train_variant="tiny-6"),
        {"model_options": {"resolved": {"width": 16}, "defaults": {"width": 16}}},
    )
    with pytest.raises(ConfigError, match=r"other model options than this code builds \(width 16 -> 8\)"):
        execute_run(config, tmp_path, resume=True, stream=io.StringIO())


def test_reusing_a_complete_run_built_with_other_options_says_so(tmp_path, tiny_data):
    from bench.launchers.inline import run_plan

    config = tiny_config(epochs=1)
    execute_run(config, tmp_path, stream=io.StringIO())
    rd = RunDir.for_config(config, tmp_path)
    rd.update_provenance(model_options={"resolved": {"width": 16}, "defaults": {"width": 16}})
    out = io.StringIO()
    [outcome] = run_plan([config], tmp_path, stream=out)
    assert outcome.status == "reused"
    assert "its model was built with other options (width 16 -> 8)" in out.getvalue()
