"""Figures for the report as PNG bytes (matplotlib, Agg backend: no display needed).

- ``speed_figure``: fps and peak memory against batch size, one line per model, from one sweep's speed.csv.
- ``curves_figure``: train loss and test RMSE against optimiser steps, one colour per model, one line per seed,
  from each run's history.csv (``bench.report.curves``).
- ``predictions_grid``: a Table 4 style grid, rows = every stored frame, columns = image / ground truth / each
  model's prediction / each model's error map |pred - gt|, from predictions.h5 files (one depth colour scale
  per row, set by the ground truth, with its colour bar; predictions outside it are clipped and counted).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure as MplFigure  # noqa: E402

from bench.report.curves import RunCurve  # noqa: E402
from bench.report.runs import is_default_options  # noqa: E402

__all__ = [
    "GridColumn",
    "PredictionGrid",
    "curves_axes",
    "curves_figure",
    "memory_column",
    "predictions_figure",
    "predictions_grid",
    "speed_figure",
]

DPI = 110
LOSS_LINTHRESH = 0.01  # train-loss axis: log above |0.01|, linear below (RSIDE's loss can be negative)
DEPTH_CMAP = "magma_r"  # near = bright, far = dark, as in most depth figures
ERROR_CMAP = "viridis"  # |pred - gt|: dark = small error, bright = large


MEMORY_COLUMNS = {  # ram_per_img_source (speed_summary.csv) -> speed.csv column and label
    "allocated": ("peak_allocated_mib", "peak allocated (torch.cuda), MiB"),
    "reserved": ("peak_reserved_mib", "peak reserved (torch.cuda), MiB"),
    "nvml": ("nvml_used_mib", "device memory used (NVML), MiB"),
    "rss": ("rss_peak_mib", "peak process RSS, MiB"),
}


def memory_column(device_kind: str, source: str | None = None) -> tuple[str, str]:
    """The speed.csv column plotted as memory and its label: the sweep's own RAM / img source when known,
    else tensors on CUDA and process RSS on CPU."""
    key = str(source or "").split("_")[0].lower()
    if key in MEMORY_COLUMNS:
        return MEMORY_COLUMNS[key]
    return MEMORY_COLUMNS["allocated" if device_kind == "cuda" else "rss"]


def speed_figure(points: pd.DataFrame, title: str, memory_source: str | None = None) -> bytes:
    """fps (median, IQR bars) and peak memory vs batch size (log2 axis) per model; OOM batches marked x."""
    fig, (ax_fps, ax_mem) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=DPI)
    kind = str(points["device_kind"].iloc[0]) if len(points) else "cpu"
    mem_col, mem_label = memory_column(kind, memory_source)
    for label, df in _by_model(points):
        ok = df[df["status"] == "ok"].sort_values("batch")
        fps = pd.to_numeric(ok["fps_median"], errors="coerce")
        iqr = pd.to_numeric(ok["fps_iqr"], errors="coerce").fillna(0)
        line = ax_fps.errorbar(ok["batch"], fps, yerr=iqr / 2, marker="o", ms=3, capsize=2, label=label)
        ax_mem.plot(
            ok["batch"],
            pd.to_numeric(ok[mem_col], errors="coerce"),
            marker="o",
            ms=3,
            color=line[0].get_color(),
            label=label,
        )
        oom = df[df["status"] == "oom"]
        if len(oom) and len(ok):
            ax_fps.plot(oom["batch"], [fps.max()] * len(oom), "x", color=line[0].get_color(), ms=7)
    for ax, ylabel in ((ax_fps, "images / s (median)"), (ax_mem, mem_label)):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    ax_fps.set_yscale("log")
    ax_fps.set_title("throughput (x: out of memory)", fontsize=9)
    ax_mem.set_title("peak memory", fontsize=9)
    ax_mem.legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def curves_axes(curves: Sequence[RunCurve], title: str = "") -> MplFigure:
    """Two panels against optimiser steps: train loss (epoch mean, symmetric log axis) and test RMSE (m, log axis).
    One colour per model, one line per seed (marker o per test evaluation); the caller closes the figure."""
    fig, (ax_loss, ax_rmse) = plt.subplots(1, 2, figsize=(11, 4), dpi=DPI)
    models = list(dict.fromkeys(c.model for c in curves))
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(models)}
    labelled: set[str] = set()
    for c in sorted(curves, key=lambda c: (models.index(c.model), c.seed)):
        label = None if c.model in labelled else c.model
        labelled.add(c.model)
        h = c.history.sort_values("step")
        gid = c.run_id
        ax_loss.plot(
            h["step"], h["train_loss"], color=colours[c.model], lw=1, marker=".", ms=3, alpha=0.8, label=label, gid=gid
        )
        ev = c.evals
        ax_rmse.plot(
            ev["step"], ev["test_rmse"], color=colours[c.model], lw=1, marker="o", ms=2, alpha=0.8, label=label, gid=gid
        )
    for ax, ylabel in ((ax_loss, "train loss (epoch mean)"), (ax_rmse, "test RMSE (m)")):
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    ax_loss.set_yscale("symlog", linthresh=LOSS_LINTHRESH)  # RSIDE's log-depth loss can go below 0
    ax_rmse.set_yscale("log")
    ax_loss.set_title("train loss", fontsize=9)
    ax_rmse.set_title("test RMSE (one line per seed)", fontsize=9)
    ax_rmse.legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def curves_figure(curves: Sequence[RunCurve], title: str = "") -> bytes:
    """``curves_axes`` as PNG bytes."""
    return _png(curves_axes(curves, title))


@dataclass(frozen=True)
class GridColumn:
    """One predictions.h5 shown as a column of the grid."""

    label: str  # e.g. "RSIDE resnet50"
    path: Path
    rmse_by_frame: dict[int, float]  # per-image RMSE from per_image.csv, shown in the panel title


@dataclass(frozen=True)
class PredictionGrid:
    """The Table 4 figure and what its caption must say."""

    figure: MplFigure
    frames: list[int]  # the frames shown, one row each
    clipped: dict[str, tuple[int, int]]  # column label -> (valid prediction pixels outside the row's depth
    #                                      scale, valid prediction pixels), over all rows


def predictions_grid(columns: Sequence[GridColumn]) -> tuple[bytes, PredictionGrid]:
    """``predictions_figure`` as PNG bytes (the figure is closed); returns (png, grid)."""
    grid = predictions_figure(columns)
    return _png(grid.figure), grid


def predictions_figure(columns: Sequence[GridColumn]) -> PredictionGrid:
    """Every frame stored in all ``columns``' predictions.h5, one row each: image, ground truth, each model's
    prediction (sharing the row's depth scale: the ground truth's valid min..max, metres, one colour bar per
    row; predictions outside it are clipped and counted), then each model's error map |pred - gt| (metres,
    invalid pixels blank, each on its own scale from 0 with its own colour bar)."""
    files = [_read_predictions(c.path) for c in columns]
    frames = sorted(set.intersection(*(set(f["frame"]) for f in files))) if files else []
    if not frames:
        raise ValueError("the predictions.h5 files share no frame; nothing to show side by side")
    n_cols = 2 + 2 * len(columns)
    fig, axes = plt.subplots(
        len(frames),
        n_cols,
        figsize=(2.3 * n_cols + 1.2, 2.0 * len(frames)),
        dpi=DPI,
        squeeze=False,
        layout="constrained",
    )
    clipped = {c.label: (0, 0) for c in columns}
    for i, frame in enumerate(frames):
        row_clipped = _grid_row(fig, axes[i], int(frame), columns, files, first=i == 0)
        for label, (n_out, n_all) in row_clipped.items():
            clipped[label] = (clipped[label][0] + n_out, clipped[label][1] + n_all)
    return PredictionGrid(fig, [int(f) for f in frames], clipped)


def _grid_row(
    fig: MplFigure, axes: Sequence, frame: int, columns: Sequence[GridColumn], files: Sequence[dict], first: bool
) -> dict[str, tuple[int, int]]:
    """Draw one frame's row; returns column label -> (clipped, valid) prediction pixels."""
    ref = files[0]
    k = ref["index"][frame]
    gt, valid = ref["depth"][k], ref["valid"][k]
    vmin, vmax = (float(gt[valid].min()), float(gt[valid].max())) if valid.any() else (0.0, 1.0)
    preds = [f["pred"][f["index"][frame]] for f in files]
    for c, pred in zip(columns, preds, strict=True):
        if pred.shape != gt.shape:
            raise ValueError(f"{c.path}: frame {frame} prediction is {pred.shape}, ground truth {gt.shape}")
    errors = [np.where(valid, np.abs(pred - gt), np.nan) for pred in preds]
    _panel(axes[0], ref["image"][k], "image" if first else "", ylabel=f"frame {frame}")
    depth_im = _panel(axes[1], np.where(valid, gt, np.nan), "ground truth" if first else "", vmin=vmin, vmax=vmax)
    clipped = {}
    for j, (c, pred) in enumerate(zip(columns, preds, strict=True)):
        n_out = int(((pred[valid] < vmin) | (pred[valid] > vmax)).sum())
        clipped[c.label] = (n_out, int(valid.sum()))
        _panel(axes[2 + j], pred, _prediction_title(c, frame, n_out, int(valid.sum())), vmin=vmin, vmax=vmax)
    fig.colorbar(depth_im, ax=list(axes[1 : 2 + len(columns)]), label="depth (m)", shrink=0.9, pad=0.01)
    for j, (c, err) in enumerate(zip(columns, errors, strict=True)):
        ax = axes[2 + len(columns) + j]
        im = _panel(ax, err, f"|{c.label} - gt|" if first else "", vmin=0.0, vmax=_top(err), cmap=ERROR_CMAP)
        fig.colorbar(im, ax=ax, label="error (m)", shrink=0.9, pad=0.01)
    return clipped


def _prediction_title(column: GridColumn, frame: int, n_clipped: int, n_valid: int) -> str:
    """The model, its per-image RMSE when known, and the share of pixels clipped to the row's depth scale."""
    rmse = column.rmse_by_frame.get(frame)
    title = column.label + (f"\nRMSE {rmse:.3f} m" if rmse is not None else "")
    if n_clipped:
        title += f"\n{100 * n_clipped / max(n_valid, 1):.0f}% of pixels clipped"
    return title


def _top(values: np.ndarray) -> float:
    """The largest finite value (the top of an error map's own scale); 1.0 when there is none above 0."""
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def _panel(
    ax,
    data: np.ndarray,
    title: str,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = DEPTH_CMAP,
    ylabel: str = "",
):
    """One image panel without ticks; an RGB image as is, a 2-D map with ``cmap`` on [vmin, vmax]."""
    im = ax.imshow(data) if data.ndim == 3 else ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=7)
    return im


def _read_predictions(path: Path) -> dict:
    with h5py.File(path, "r") as h:
        missing = [k for k in ("frame", "image", "depth", "valid", "pred") if k not in h]
        if missing:
            raise ValueError(f"{path}: missing dataset(s) {', '.join(missing)} (runs/README.md predictions.h5)")
        data = {k: h[k][()] for k in ("frame", "image", "depth", "valid", "pred")}
    data["frame"] = [int(f) for f in data["frame"]]
    data["index"] = {f: i for i, f in enumerate(data["frame"])}
    data["valid"] = data["valid"].astype(bool)
    return data


def _by_model(points: pd.DataFrame):
    """(label, rows) per model and sweep mode; the mode is named when a sweep has any mode but inference."""
    points = points.assign(mode=points["mode"].fillna("inference") if "mode" in points else "inference")
    name_mode = set(points["mode"]) != {"inference"}
    keys = ["arch", "backbone", "mode"]
    is_default = [is_default_options(o) for o in points["options"]]
    default = points[is_default]
    other = points[[not d for d in is_default]]

    def label(arch: str, backbone: str, mode: str, extra: str = "") -> str:
        return f"{arch} {backbone}{extra}" + (f" [{mode}]" if name_mode else "")

    for (arch, backbone, mode), df in default.groupby(keys, sort=True):
        yield label(arch, backbone, mode), df
    for (arch, backbone, mode), df in other.groupby(keys, sort=True):
        yield label(arch, backbone, mode, " " + json.dumps(df["options"].iloc[0], sort_keys=True)), df


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
