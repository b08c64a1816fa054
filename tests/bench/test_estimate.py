"""bench.estimate: the GPU hours a plan needs, known before its data is downloaded or a GPU rented."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from bench.estimate import (
    GPU_ASSUMED_FRACTION,
    GPU_PEAK_FP32_TFLOPS,
    CostEstimate,
    RunCost,
    campaign_costs,
    dataset_sizes,
    gpu_hours,
    gpu_time_table,
)
from bench.pipeline import run
from bench.plan import RunRequest, make_plan
from bench.suite import load_suite


def test_missing_rside_data_has_rsides_published_sizes(tmp_path):
    config = load_suite("paper").runs[0].replace(data_path=str(tmp_path / "nowhere"))
    train, test, note = dataset_sizes(config)
    assert (train, test) == (50_688, 654)
    assert "data not available (DataError)" in note and "50,688 training pairs and 654 test frames assumed" in note
    assert dataset_sizes(config.replace(train_frames=100, eval_frames=10))[:2] == (100, 10)


def test_paper_regime_steps_follow_from_the_known_sizes(tmp_path):
    plan = make_plan(RunRequest("paper", data_spec=f"rside-csv:{tmp_path}", only="drnet-resnet50", seeds="0"))
    (cost,) = campaign_costs(plan.configs)
    assert cost.cost.train_images == 50_688 * 20 == 1_013_760  # 126,720 steps of batch 8
    assert cost.cost.eval_images == 654 * 20  # evaluated after every epoch, the last one doubling as the final
    assert cost.seeds == 1 and cost.tables == ("table1",) and cost.cost.total_tflop > 0


def fake_cost(name: str, tflop: float, seeds: int = 3, tables=("table1",), device="cuda") -> RunCost:
    return RunCost(name, seeds, tables, device, CostEstimate(1, 1, 1.0, tflop, None))


def test_gpu_time_table_per_run_per_table_and_in_all():
    a100_hour = GPU_PEAK_FP32_TFLOPS["A100"] * GPU_ASSUMED_FRACTION * 3600  # TFLOP one A100 does in an hour
    costs = [
        fake_cost("rside-x", 10 * a100_hour),
        fake_cost("drnet-x", a100_hour, tables=("table1", "table3")),
        fake_cost("drnet-x-ablated", a100_hour, tables=("table3",)),
        fake_cost("on-the-cpu", 1e9, device="cpu"),  # not a GPU's time
    ]
    header, *rows = gpu_time_table(costs, here=("Test GPU", a100_hour / 3600 / 2))  # half an A100's planning rate
    assert re.split(r"\s{2,}", header.strip()) == ["one run, one seed", "TFLOP", "P40", "A100", "H100 SXM",
                                                    "this GPU (Test GPU)"]  # fmt: skip
    cells = {row[0]: row[1:] for row in (re.split(r"\s{2,}", line.strip()) for line in rows)}
    a100, here = 2, 4  # columns after the label: TFLOP, P40, A100, H100 SXM, this GPU
    assert cells["rside-x"][a100] == "10 h" and cells["rside-x"][here] == "20 h"  # one seed
    assert cells["drnet-x"][a100] == "1.0 h" and cells["every seed"] == []
    assert cells["Table 1 (2 runs x 3 seeds)"][a100] == "33 h"  # (10 + 1) x 3 seeds
    assert cells["Table 3 (2 runs x 3 seeds)"][a100] == "6.0 h"  # drnet-x counts in both tables
    assert cells["all (3 runs x 3 seeds)"][a100] == "36 h" and cells["all (3 runs x 3 seeds)"][here] == "72 h"
    assert "on-the-cpu" not in cells and gpu_time_table(costs[3:]) == []


def test_gpu_hours_reads_as_people_plan():
    assert [gpu_hours(s) for s in (126 * 3600, 7.44 * 3600, 900)] == ["126 h", "7.4 h", "0.25 h"]


def test_paper_dry_run_shows_gpu_hours_without_data_or_gpu(tmp_path, monkeypatch):
    pytest.importorskip("architectures.data")
    monkeypatch.chdir(tmp_path)  # no ./data: the sizes are RSIDE's published ones
    out = io.StringIO()
    request = RunRequest("paper", only="drnet-resnet50,rside-resnet50", runs_dir=Path("runs"), dry_run=True)
    assert run(request, out) == 2  # data, weights and GPU are missing here
    text = out.getvalue()
    assert "estimated time: not available" not in text
    assert "estimated time on this machine: none (its runs are planned on a CUDA device it does not have)" in text
    assert "RSIDE's 50,688 training pairs and 654 test frames assumed" in text
    assert "Table 1 (2 runs x 3 seeds)" in text and "all (2 runs x 3 seeds)" in text
    assert "`bench doctor`" in text
