"""Figures: valid PNGs from speed.csv points and predictions.h5 files; clear errors when nothing matches."""

from __future__ import annotations

import io

import h5py
import matplotlib.pyplot as plt
import pytest
from PIL import Image

from bench.report.build import grid_clipping_text
from bench.report.plots import GridColumn, memory_column, predictions_figure, predictions_grid, speed_figure
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
    png, grid = predictions_grid(cols)
    assert grid.frames == [2, 3]  # predictions.h5 keeps the first three frames of each run
    png_size(png)
    with h5py.File(b / "predictions.h5", "r+") as h:
        h["frame"][...] = [10, 11, 12]
    with pytest.raises(ValueError, match="share no frame"):
        predictions_grid(cols)


def six_frame_columns(runs_dir, make_eval_run, drnet_bias=0.0):
    a = make_eval_run(runs_dir, "s", "rside-resnet18", "rside", "resnet18", frames=range(1, 9), prediction_frames=6)
    b = make_eval_run(
        runs_dir, "s", "drnet-resnet18", "drnet", "resnet18", frames=range(1, 9), prediction_frames=6, bias=drnet_bias
    )
    return [GridColumn("RSIDE", a / "predictions.h5", {}), GridColumn("DRNet", b / "predictions.h5", {})]


def test_grid_shows_every_stored_frame_with_error_maps_and_colour_bars(runs_dir, make_eval_run):
    grid = predictions_figure(six_frame_columns(runs_dir, make_eval_run))
    try:
        assert grid.frames == [1, 2, 3, 4, 5, 6]  # all six stored frames, not the first four
        images = [ax for ax in grid.figure.axes if ax.images and ax.get_label() != "<colorbar>"]
        bars = [ax for ax in grid.figure.axes if ax.get_label() == "<colorbar>"]
        assert len(images) == 6 * 6  # image, ground truth, 2 predictions, 2 error maps per frame
        assert len(bars) == 6 * 3  # per row: the shared depth bar and one per error map
        assert sorted({ax.get_ylabel() for ax in bars}) == ["depth (m)", "error (m)"]
        titles = [ax.get_title() for ax in images[:6]]
        assert titles[:2] == ["image", "ground truth"] and titles[4:] == ["|RSIDE - gt|", "|DRNet - gt|"]
    finally:
        plt.close(grid.figure)


def test_depth_scale_comes_from_ground_truth_and_clipping_is_counted(runs_dir, make_eval_run):
    grid = predictions_figure(six_frame_columns(runs_dir, make_eval_run, drnet_bias=3.0))
    try:
        row = [ax for ax in grid.figure.axes if ax.images and ax.get_label() != "<colorbar>"][:6]
        gt_clim = row[1].images[0].get_clim()
        assert row[2].images[0].get_clim() == gt_clim == row[3].images[0].get_clim()
        assert row[4].images[0].get_clim()[0] == 0.0  # error maps start at 0 m, each on its own scale
        assert row[4].images[0].get_clim()[1] < row[5].images[0].get_clim()[1]
        assert row[3].get_title().endswith("100% of pixels clipped")  # a solid panel says why
        n_drnet, total = grid.clipped["DRNet"]
        assert total == 6 * 12 * 16 and n_drnet == total  # 20x too far: every pixel clipped
        assert grid.clipped["RSIDE"][0] < total
    finally:
        plt.close(grid.figure)
    text = grid_clipping_text(grid.clipped)
    assert "DRNet 1,152 of 1,152 valid pixels (100.0%)" in text
