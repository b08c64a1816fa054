"""Fixtures: fake-but-well-formed run directories (runs/README.md format) built from small depth maps.

Per-frame statistics are computed with bench.metrics from synthetic ground truth and predictions, so every
file is consistent with every other (metrics.json reductions == reductions of per_image.csv). These are
fixtures, not measurements.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from architectures import available_models
from bench.io import write_csv_atomic, write_json_atomic
from bench.metrics import (
    REDUCTIONS,
    boundary_metrics,
    depth_metrics,
    image_stats,
    reduce_boundary,
    reduce_metrics,
)
from bench.provenance import resolved_model_options
from bench.report.runs import SPEED_COLUMNS, SPEED_PAIR_COLUMNS, SPEED_SUMMARY_COLUMNS

SIZE = (12, 16)  # H, W of fixture depth maps


def fixture_depths(frames: Sequence[int], noise: float, bias: float = 0.0, seed: int = 0, noise_key: int = 0):
    """Ground truth and prediction (metres) per frame: a tilted plane; pred = gt * exp(bias + noise*e)."""
    out = []
    for f in frames:
        g = np.random.default_rng(1000 + int(f))  # the frame's content depends only on the frame
        yy, xx = np.mgrid[0 : SIZE[0], 0 : SIZE[1]]
        gt = 1.0 + 3.0 * g.random() + 0.1 * yy + 0.05 * xx * g.random()
        e = np.random.default_rng([seed, int(f), noise_key]).standard_normal(SIZE)
        pred = gt * np.exp(bias + noise * e)
        out.append((gt.astype(np.float32), pred.astype(np.float32)))
    return out


def write_eval_run(
    root: Path,
    suite: str,
    name: str,
    arch: str,
    backbone: str,
    seed: int = 0,
    options: dict | None = None,
    frames: Sequence[int] = tuple(range(1, 31)),
    noise: float = 0.1,
    bias: float = 0.0,
    predictions: bool = True,
    prediction_frames: int = 3,
    metrics_extra: dict | None = None,
    config_extra: dict | None = None,
    model_options: dict | None | str = "resolve",
    history: Sequence[float | None] | None = None,
    dirname: str | None = None,
) -> Path:
    """A complete evaluated run directory; returns its path (root/<suite>-<name>-s<seed>, or root/``dirname``).

    ``metrics_extra`` / ``config_extra`` are merged over metrics.json / config.json's ``config`` (regimes).
    ``model_options``: provenance.model_options as the runner writes it ("resolve", for a registered arch), a
    given record, or None for a directory written before that record existed. ``history``: the test RMSE per
    epoch written as history.csv (None: no history.csv). metrics.json records the constant-
    depth reference as the runner does (the test pixels' own standard deviation)."""
    run_id = f"{suite}-{name}-s{seed}"
    path = root / (dirname or run_id)
    options = dict(options or {})
    rows, stats, edges = [], [], []
    pairs = fixture_depths(frames, noise, bias, seed, zlib.crc32(name.encode()))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 12x16 maps: a second thread only waits for the first (10-30x slower on a busy CPU)
    try:
        for f, (gt, pred) in zip(frames, pairs, strict=True):
            p, t = torch.from_numpy(pred), torch.from_numpy(gt)
            s = image_stats(p, t)
            b = boundary_metrics(p, t)
            stats.append(s)
            edges.append(b)
            rows.append({"frame": int(f), **depth_metrics(p, t), **s.as_row(), **b})
    finally:
        torch.set_num_threads(threads)
    metrics = {
        "run_id": run_id,
        "suite": suite,
        "name": name,
        "arch": arch,
        "backbone": backbone,
        "options": options,
        "seed": seed,
        "checkpoint": "last",
        "epoch": 1,
        "protocol": {"name": "rside", "crop": None},
        "data": {"source": "synthetic", "split": "test", "train_variant": "synthetic", "frames": len(frames)},
        "n_frames": len(frames),
        "reductions": {r: reduce_metrics(stats, r) for r in REDUCTIONS},
        "boundary": reduce_boundary(edges),
        "reference": constant_reference([gt for gt, _ in pairs]),
    }
    config = {
        "config": {
            "arch": arch,
            "backbone": backbone,
            **options,
            "seed": seed,
            "suite": suite,
            "name": name,
            "data": {"source": "synthetic", "path": None},
            "protocol": "rside",
            "epochs": 1,
        },
        "provenance": {
            "created_utc": "2025-01-01T00:00:00+00:00",
            "git": {"commit": "abc1234", "dirty": False},
            "versions": {"python": "3.11", "torch": "2.14.1"},
            "device": {"device": "cpu", "name": "Fixture CPU"},
            "seed": seed,
            "data": {"source": "synthetic"},
            "wall_time_s": 1.5,
        },
    }
    if model_options == "resolve":
        model_options = resolved_model_options(arch, options) if arch in available_models() else None
    if model_options is not None:
        config["provenance"]["model_options"] = model_options
    metrics.update(metrics_extra or {})
    config["config"].update(config_extra or {})
    write_json_atomic(path / "config.json", config)
    write_json_atomic(path / "metrics.json", metrics)
    write_csv_atomic(path / "per_image.csv", rows)
    if history is not None:
        write_history(path, history)
    if predictions:
        k = min(prediction_frames, len(frames))
        with h5py.File(path / "predictions.h5", "w") as h:
            h["frame"] = np.array(frames[:k], dtype=np.int64)
            img = np.stack([(np.clip(gt / 5.0, 0, 1) * 255).astype(np.uint8) for gt, _ in pairs[:k]])
            h["image"] = np.repeat(img[..., None], 3, axis=-1)
            h["depth"] = np.stack([gt for gt, _ in pairs[:k]])
            h["valid"] = np.ones((k, *SIZE), dtype=bool)
            h["pred"] = np.stack([pr for _, pr in pairs[:k]])
            h.attrs.update(run_id=run_id, arch=arch, backbone=backbone)
    return path


def constant_reference(depths: Sequence[np.ndarray]) -> dict[str, float]:
    """metrics.json "reference": one constant depth (the pixels' mean) predicted everywhere, and its RMSE."""
    pixels = np.concatenate([d.ravel() for d in depths]).astype(np.float64)
    return {"constant_depth_m": float(pixels.mean()), "constant_rmse": float(pixels.std())}


def write_history(path: Path, rmse: Sequence[float | None], steps_per_epoch: int = 12) -> None:
    """history.csv as bench.train writes it: one row per epoch, test_rmse empty on epochs not evaluated."""
    lines = ["epoch,step,train_loss,lr,test_rmse"]
    lines += [
        f"{e},{e * steps_per_epoch},{1.0 / e},0.001,{'' if r is None else r}" for e, r in enumerate(rmse, start=1)
    ]
    (path / "history.csv").write_text("\n".join(lines) + "\n")


PAIR_FACTORS = (1 / 1.03, 1.0, 1.03)  # three pairs of timing sessions, +-3 %, geometric mean exactly 1


def write_speed_sweep(
    root: Path,
    sweep_id: str,
    models: dict[tuple[str, str], tuple[float, float]],
    device_kind: str = "cpu",
    device_name: str = "Fixture CPU",
    batches: Sequence[int] = (1, 2, 4, 8),
    suite: str | None = "smoke",
    pair_factors: Sequence[float] | None = PAIR_FACTORS,
    created_utc: str = "2025-01-01T00:00:00+00:00",
) -> Path:
    """A speed sweep dir. models: (arch, backbone) -> (fps at batch 1, memory per image MiB).

    ``pair_factors``: one pair of timing sessions each (speed_pairs.csv), DRNet / RSIDE fps and RSIDE / DRNet
    memory of pair k equal to the summary's ratios times factor k; None: a sweep written before timing sessions
    (no speed_pairs.csv, one session per model). ``suite`` goes into config.json (None: models named on the
    command line)."""
    path = root / sweep_id
    points, summary = [], []
    sessions = len(pair_factors) if pair_factors is not None else 1
    for (arch, backbone), (fps1, mem) in models.items():
        base = {
            "arch": arch,
            "backbone": backbone,
            "options": json.dumps({}),
            "device_kind": device_kind,
            "device_name": device_name,
            "dtype": "float32",
            "input": "228x304",
        }
        fps = {b: fps1 * b / (1 + 0.1 * (b - 1)) for b in batches}
        for b in batches:
            peak = 100.0 + mem * b
            points.append(
                {
                    **base,
                    "batch": b,
                    "status": "ok",
                    "fps_median": fps[b],
                    "fps_iqr": 0.01 * fps[b],
                    "n_repeats": 5,
                    "time_median_ms": 1000 * b / fps[b],
                    "peak_allocated_mib": peak,
                    "peak_reserved_mib": peak + 10,
                    "nvml_used_mib": peak + 300,
                    "rss_peak_mib": peak + 50,
                }
            )
        points.append({**base, "batch": 2 * batches[-1], "status": "oom", **{c: "" for c in SPEED_COLUMNS[9:]}})
        best = max(batches, key=lambda b: fps[b])
        summary.append(
            {
                **base,
                "name": f"{arch}-{backbone}",
                "sessions": sessions,
                "fps_b1": fps1,
                "fps_max": fps[best],
                "fps_max_batch": best,
                "max_batch_fit": batches[-1],
                "net_ram_mib": 100.0,
                "ram_per_img_mib": mem,
                "ram_per_img_r2": 1.0,
                "ram_per_img_source": "rss_peak_mib",
            }
        )
    write_csv_atomic(path / "speed.csv", points, columns=SPEED_COLUMNS)
    write_csv_atomic(path / "speed_summary.csv", summary, columns=[*SPEED_SUMMARY_COLUMNS, "name", "sessions"])
    write_json_atomic(
        path / "config.json",
        {
            "config": {"suite": suite},
            "provenance": {
                "created_utc": created_utc,
                "git": {"commit": "abc1234", "dirty": False},
                "device": {"device": device_kind, "name": device_name},
            },
        },
    )
    if pair_factors is not None:
        write_session_pairs(path, pair_factors)
    return path


MEMORY_PAIR_COLUMNS = {  # speed_summary.csv column -> speed_pairs.csv ratio column
    "mem_b1_mib": "mem_ratio_b1",
    "ram_per_img_mib": "mem_ratio_slope",
    "mem_max_b_per_img_mib": "mem_ratio_max_b",
}


def write_session_pairs(path: Path, factors: Sequence[float] = PAIR_FACTORS) -> Path:
    """speed_pairs.csv for the sweep at ``path`` from its speed_summary.csv: for every DRNet and RSIDE row of one
    backbone and mode, pair k's ratios are the summary's ratios times ``factors[k]`` (memory definitions the
    summary lacks stay empty), and every summary row says it has len(factors) sessions."""
    summary = pd.read_csv(path / "speed_summary.csv")
    summary["sessions"] = len(factors)
    summary.to_csv(path / "speed_summary.csv", index=False)
    mode = summary["mode"] if "mode" in summary else pd.Series("inference", index=summary.index)
    rows = []
    for i, d in summary.iterrows():
        rside = summary[(summary["arch"] == "rside") & (summary["backbone"] == d["backbone"]) & (mode == mode[i])]
        if d["arch"] != "drnet" or rside.empty:
            continue
        r = rside.iloc[0]
        for f in factors:
            memory = {
                pair: f * r[col] / d[col] if col in summary else math.nan for col, pair in MEMORY_PAIR_COLUMNS.items()
            }
            rows.append(
                {
                    "drnet": d["name"],
                    "rside": r["name"],
                    "backbone": d["backbone"],
                    "mode": mode[i],
                    "device_name": d["device_name"],
                    "speedup_b1": f * d["fps_b1"] / r["fps_b1"],
                    **memory,
                }
            )
    write_csv_atomic(path / "speed_pairs.csv", rows, columns=SPEED_PAIR_COLUMNS)
    return path


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    return root


@pytest.fixture(scope="session")
def make_eval_run():
    return write_eval_run


@pytest.fixture
def make_speed_sweep():
    return write_speed_sweep


@pytest.fixture
def make_session_pairs():
    return write_session_pairs
