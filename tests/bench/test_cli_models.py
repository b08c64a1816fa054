from __future__ import annotations

import re

from click.testing import CliRunner

from bench.cli import cli


def test_models_prints_params_flops_time_and_ratio():
    result = CliRunner().invoke(
        cli,
        [
            "models",
            "--backbones",
            "resnet18",
            "--flops",
            "--time",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--size",
            "64x96",
            "--threads",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"rside-resnet18\s+14,883,825\s+\(1, 1, 32, 48\)", out)
    assert re.search(r"drnet-resnet18\s+[\d,]+\s+\(1, 1, 64, 96\)", out)
    assert "drnet/rside" in out


def test_models_rejects_unknown_names_clearly():
    result = CliRunner().invoke(cli, ["models", "--backbones", "resnet19"])
    assert result.exit_code != 0
    assert "resnet19" in result.output and "resnet18" in result.output


def test_input_size_defaults_in_help_are_the_data_layers_crop():
    from architectures.data.transforms import RSIDE_CROP_HW

    shown = f"[default: {RSIDE_CROP_HW[0]}x{RSIDE_CROP_HW[1]}]"
    for command in ("models", "speed"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and shown in " ".join(result.output.split()), command


def test_models_rejects_a_bad_size_clearly():
    for size, message in (("228", "HxW"), ("16x64", "at least 32")):
        result = CliRunner().invoke(cli, ["models", "--size", size])
        assert result.exit_code != 0 and message in result.output and "--size" in result.output
