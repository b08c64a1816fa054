"""Figures for the report as PNG bytes (matplotlib, Agg backend: no display needed).

- ``speed_figure``: fps and peak memory against batch size, one line per model, from one sweep's speed.csv.
- ``curves_figure``: train loss and test RMSE against optimiser steps, one colour per model, one line per seed,
  from each run's history.csv (``bench.report.curves``).
- ``predictions_grid``: a Table 4 style grid, rows = frames, columns = image / ground truth / RSIDE / DRNet,
  from predictions.h5 files (one colour scale per row, taken from the ground truth).
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

__all__ = ["GridColumn", "curves_axes", "curves_figure", "memory_column", "predictions_grid", "speed_figure"]

DPI = 110
MAX_GRID_FRAMES = 4
LOSS_LINTHRESH = 0.01  # train-loss axis: log above |0.01|, linear below (RSIDE's loss can be negative)
DEPTH_CMAP = "magma_r"  # near = bright, far = dark, as in most depth figures


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
        ax_loss.plot(h["step"], h["train_loss"], color=colours[c.model], lw=1, marker=".", ms=3, alpha=0.8, label=label,
                     gid=gid)
        ev = c.evals
        ax_rmse.plot(ev["step"], ev["test_rmse"], color=colours[c.model], lw=1, marker="o", ms=2, alpha=0.8,
                     label=label, gid=gid)
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


def predictions_grid(columns: Sequence[GridColumn], max_frames: int = MAX_GRID_FRAMES) -> tuple[bytes, list[int]]:
    """Image / ground truth / one prediction per column for frames common to all files. Returns (png, frames)."""
    files = [_read_predictions(c.path) for c in columns]
    common = sorted(set.intersection(*(set(f["frame"]) for f in files))) if files else []
    frames = common[:max_frames]
    if not frames:
        raise ValueError("the predictions.h5 files share no frame; nothing to show side by side")
    ref = files[0]
    n_cols = 2 + len(columns)
    fig, axes = plt.subplots(len(frames), n_cols, figsize=(2.6 * n_cols, 2.1 * len(frames)), dpi=DPI, squeeze=False)
    for i, frame in enumerate(frames):
        k = ref["index"][frame]
        gt, valid = ref["depth"][k], ref["valid"][k]
        vmin, vmax = np.percentile(gt[valid], [1, 99]) if valid.any() else (0.0, 1.0)
        panels = [("image", ref["image"][k], None), ("ground truth", np.where(valid, gt, np.nan), None)]
        for c, f in zip(columns, files, strict=True):
            rmse = c.rmse_by_frame.get(int(frame))
            title = c.label + (f"\nRMSE {rmse:.3f} m" if rmse is not None else "")
            panels.append((title, f["pred"][f["index"][frame]], None))
        for j, (title, data, _) in enumerate(panels):
            ax = axes[i, j]
            if data.ndim == 3:
                ax.imshow(data)
            else:
                ax.imshow(data, cmap=DEPTH_CMAP, vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title if i == 0 or j >= 2 else "", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"frame {frame}", fontsize=7)
    fig.tight_layout()
    return _png(fig), [int(f) for f in frames]


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
