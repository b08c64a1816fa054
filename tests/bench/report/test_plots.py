"""Figures: valid PNGs from speed.csv points and predictions.h5 files; clear errors when nothing matches."""

from __future__ import annotations

import io

import h5py
import pytest
from PIL import Image

from bench.report.plots import GridColumn, memory_column, predictions_grid, speed_figure
from bench.report.runs import load_runs


def png_size(data: bytes) -> tuple[int, int]:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    return img.size


def test_speed_figure_is_a_png(runs_dir, make_speed_sweep):
    make_speed_sweep(runs_dir, "s", {("rside", "resnet50"): (2.0, 900.0), ("drnet", "resnet50"): (30.0, 90.0)})
    sweep = load_runs(runs_dir).sweeps[0]
    w, h = png_size(speed_figure(sweep.points, "title"))
    assert w > 500 and h > 200


def test_memory_column_follows_the_sweeps_source():
    assert memory_column("cuda")[0] == "peak_allocated_mib"
    assert memory_column("cpu")[0] == "rss_peak_mib"
    assert memory_column("cuda", "nvml")[0] == "nvml_used_mib"
    assert memory_column("cuda", "reserved")[0] == "peak_reserved_mib"


def test_predictions_grid_uses_common_frames(runs_dir, make_eval_run):
    a = make_eval_run(runs_dir, "s", "rside-resnet18", "rside", "resnet18", frames=range(1, 6))
    b = make_eval_run(runs_dir, "s", "drnet-resnet18", "drnet", "resnet18", frames=range(2, 7))
    cols = [GridColumn("RSIDE", a / "predictions.h5", {}), GridColumn("DRNet", b / "predictions.h5", {2: 0.5})]
    png, frames = predictions_grid(cols)
    assert frames == [2, 3]  # predictions.h5 keeps the first three frames of each run
    png_size(png)
    with h5py.File(b / "predictions.h5", "r+") as h:
        h["frame"][...] = [10, 11, 12]
    with pytest.raises(ValueError, match="share no frame"):
        predictions_grid(cols)
