"""The paper's published values shipped in bench/paper/*.csv: columns, sources and numbers as printed."""

from __future__ import annotations

import pytest

from bench.report.paper import PAPER_SOURCES, paper_table1, paper_table2, paper_table3


def test_table1_columns_sources_and_values():
    t = paper_table1()
    assert list(t.columns) == ["method", "arch", "backbone", "source", "rmse", "log10", "delta1", "delta2", "delta3"]
    assert set(t["source"]) <= set(PAPER_SOURCES)
    assert len(t) == 11
    row = t[(t["arch"] == "drnet") & (t["backbone"] == "resnet152")].iloc[0]
    assert (row.rmse, row.log10, row.delta1, row.delta2, row.delta3) == (0.528, 0.050, 0.866, 0.973, 0.993)
    rside = t[(t["arch"] == "rside") & (t["backbone"] == "senet154")].set_index("source")["rmse"]
    assert rside.to_dict() == {"rside-paper": 0.530, "drnet-reproduced": 0.574}
    assert t.loc[t["arch"] == "dorn", "rmse"].item() == 0.509
    assert t.loc[t["arch"] == "dorn", "source"].item() == "cited"


def test_table2_columns_units_and_values():
    t = paper_table2().set_index(["arch", "backbone"])
    assert list(t.columns) == [
        "method",
        "source",
        "device",
        "fps_b1",
        "fps_max",
        "max_fps_batch",
        "net_ram_mb",
        "ram_per_img_mb",
    ]
    assert set(t["device"]) == {"Tesla P40"}
    # "21 Gb" and "1.7 Gb" in the paper, stored as MB (1 Gb = 1000 Mb)
    assert t.loc[("rside", "resnet50"), "ram_per_img_mb"] == 21000
    assert t.loc[("rside", "senet154"), "net_ram_mb"] == 1700
    assert t.loc[("drnet", "resnet50"), ["fps_b1", "fps_max", "max_fps_batch"]].tolist() == [36, 69, 36]
    # the ratio behind "up to 15x" (abstract) is 36 / 2 = 18x for ResNet-50
    assert t.loc[("drnet", "resnet50"), "fps_b1"] / t.loc[("rside", "resnet50"), "fps_b1"] == pytest.approx(18)
    assert set(t.loc["rside", "source"]) == {"drnet-reproduced"}


def test_table3_switches_and_values():
    t = paper_table3()
    switches = [tuple(r) for r in t[["diagonal", "aux_losses", "second_branch"]].itertuples(index=False)]
    assert switches == [(True, True, True), (False, True, True), (True, False, True), (True, True, False)]
    assert t["rmse"].tolist() == [0.528, 0.533, 0.544, 1.900]
    assert t.loc[3, "delta1"] == 0.351
    assert t["delta2"].iloc[0] == 0.972  # printed so in Table 3 (Table 1 says 0.973)
    assert set(t["backbone"]) == {"resnet152"}
