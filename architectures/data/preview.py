"""A picture of a few frames and their depths (RGB above, depth below), for docs and for eyeballing data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import atomic_path
from .nyu import NYUv2Labeled

__all__ = ["plot_frames"]


def plot_frames(
    path: str | Path, out: str | Path, frames: int = 4, split: str = "all", max_depth_m: float | None = None
) -> Path:
    """Write a PNG of ``frames`` evenly spaced frames of ``split``: RGB row, depth row (one scale, metres).

    Invalid depth pixels are grey; the depth scale ends at ``max_depth_m`` (None: the largest shown depth,
    rounded up to a metre). The PNG is written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = NYUv2Labeled(path, split)
    picks = np.linspace(0, len(ds) - 1, num=min(frames, len(ds))).round().astype(int)
    samples = [ds[int(i)] for i in picks]
    depths = [np.ma.masked_where(~s["valid"][0].numpy(), s["depth"][0].numpy()) for s in samples]
    if max_depth_m is None:
        max_depth_m = float(np.ceil(max(float(d.max()) if d.count() else 1.0 for d in depths)))
    fig, axes = plt.subplots(2, len(picks), figsize=(3.2 * len(picks), 5.0), squeeze=False, layout="constrained")
    cmap = matplotlib.colormaps["magma_r"].with_extremes(bad="0.6")
    for col, (sample, depth) in enumerate(zip(samples, depths, strict=True)):
        axes[0, col].imshow(sample["image"].permute(1, 2, 0).numpy())
        axes[0, col].set_title(f"frame {sample['frame']}", fontsize=9)
        shown = axes[1, col].imshow(depth, cmap=cmap, vmin=0.0, vmax=max_depth_m)
        for ax in axes[:, col]:
            ax.set_axis_off()
    fig.colorbar(shown, ax=axes[1, :].tolist(), shrink=0.9, label="depth (m)")
    out = Path(out)
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=80)
    finally:
        plt.close(fig)
    return out
