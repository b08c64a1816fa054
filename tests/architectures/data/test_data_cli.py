"""The ``bench data`` commands (bench/cli.py), run in-process with click's CliRunner."""

from __future__ import annotations

import h5py
import numpy as np
from click.testing import CliRunner
from data_fixtures import write_mat_v5

from bench.cli import cli


def test_synth_then_info(tmp_path):
    out = tmp_path / "s.h5"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["data", "synth", "--out", str(out), "--frames", "4", "--seed", "3", "--height", "48", "--width", "64"]
    )
    assert result.exit_code == 0, result.output
    assert f"rendering {out}: 4/4" in result.output
    assert f"wrote {out}: 4 frames of 48x64, seed 3" in result.output
    with h5py.File(out, "r") as f:
        assert f["images"].shape == (4, 3, 64, 48) and f.attrs["seed"] == 3
    info = runner.invoke(cli, ["data", "info", str(out)])
    assert info.exit_code == 0, info.output
    assert "source   synthetic (synthetic rooms, generator v2, seed 3)" in info.output
    assert "status   OK" in info.output


def test_info_explains_a_wrong_file_and_fails(tmp_path):
    path = tmp_path / "splits.mat"
    write_mat_v5(path, {"testNdxs": np.arange(1, 655)[:, None]})
    result = CliRunner().invoke(cli, ["data", "info", str(path)])
    assert result.exit_code == 1 and "is a MATLAB v5 MAT-file, not MATLAB v7.3" in result.output


def test_info_fails_on_problems(tmp_path, write_labeled, tiny_frames):
    images, depths = tiny_frames
    path = write_labeled(tmp_path / "x.mat", images, depths * 0)
    result = CliRunner().invoke(cli, ["data", "info", str(path)])
    assert result.exit_code == 1 and "3 scanned frame(s) without any valid depth pixel" in result.output


def test_preview_writes_a_png(tmp_path):
    runner = CliRunner()
    data = tmp_path / "s.h5"
    assert (
        runner.invoke(
            cli, ["data", "synth", "--out", str(data), "--frames", "3", "--height", "24", "--width", "32"]
        ).exit_code
        == 0
    )
    result = runner.invoke(cli, ["data", "preview", str(data), "--out", str(tmp_path / "p.png"), "--frames", "2"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_prints_both_figures(tmp_path):
    data = tmp_path / "s.h5"
    runner = CliRunner()
    assert (
        runner.invoke(
            cli, ["data", "synth", "--out", str(data), "--frames", "4", "--height", "240", "--width", "320"]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        cli,
        [
            "data",
            "bench",
            "--data",
            f"synthetic:{data}",
            "--frames",
            "1",
            "--workers",
            "0",
            "--batch-size",
            "1",
            "--batches",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "synthetic rendering 640x480, 1 thread:" in result.output and "frames/s" in result.output
    assert "batch 1, 0 worker(s):" in result.output and "images/s" in result.output
