from __future__ import annotations

import pytest
from torch import nn

from architectures import available_models, build_model, model_options
from architectures._registry import Registry
from architectures.data import DATA_SOURCES, PROTOCOLS, build_dataset
from architectures.data.sources import SOURCES
from architectures.registry import MODELS


def test_rside_is_registered_with_its_backbones():
    models = available_models()
    assert "rside" in models
    assert {"resnet50", "densenet161", "senet154", "resnet18", "resnet34"} <= set(models["rside"])


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(KeyError, match="unknown architecture 'rsid'; available: .*rside"):
        build_model("rsid", "resnet50")


def test_unknown_backbone_lists_the_valid_ones():
    with pytest.raises(KeyError, match="rside has no backbone 'vgg16'; available: .*resnet50"):
        build_model("rside", "vgg16")


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(TypeError, match="unknown option\\(s\\) diagonl; valid options: provider='timm'"):
        build_model("rside", "resnet18", diagonl=False)


def test_model_options_and_build():
    assert model_options("rside") == {"provider": "timm"}
    assert isinstance(build_model("rside", "resnet18"), nn.Module)


def test_drnet_options_come_from_its_config_dataclass():
    assert model_options("drnet") == {
        "diagonal": True,
        "aux_losses": True,
        "second_branch": True,
        "diagonal_target": "up1",
        "level_sizes": "paper",
        "size_mode": "crop",
        "up_channels": None,
        "up2_init": "zero",
        "shuffle_init": "default",
        "provider": "timm",
    }
    with pytest.raises(TypeError, match="drnet got unknown option\\(s\\) diagonl; valid options: diagonal=True"):
        build_model("drnet", "resnet18", diagonl=False)


# --- the Registry class behind models, protocols and data sources ------------------------------------------


def test_registry_registers_by_decorator_and_by_call_in_order():
    reg = Registry("widget")

    @reg.register("b")
    def make_b():
        return "b"

    assert reg.register("a", 1) == 1
    assert list(reg) == ["b", "a"] and reg["b"] is make_b and len(reg) == 2
    assert "a" in reg and "c" not in reg and reg.get("c") is None


def test_registry_rejects_a_duplicate_name():
    reg = Registry("widget")
    reg.register("a", 1)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.register("a", 2)
    assert reg["a"] == 1


def test_registry_unknown_name_names_the_registry_and_lists_the_known_ones():
    reg = Registry("widget", error=ValueError)
    reg.register("b", 1)
    reg.register("a", 2)
    with pytest.raises(ValueError, match="^unknown widget 'c'; available: a, b$"):
        reg["c"]
    assert reg.get("c", 0) == 0 and "c" not in reg  # Mapping's contract: no error from get / in
    with pytest.raises(KeyError, match="unknown widget 'x'; available: none"):
        Registry("widget")["x"]


def test_the_three_registries_share_the_class():
    assert isinstance(MODELS, Registry) and isinstance(PROTOCOLS, Registry) and isinstance(SOURCES, Registry)
    assert {"rside", "drnet"} <= set(available_models()) and set(MODELS) >= {"rside", "drnet"}
    assert tuple(SOURCES) == DATA_SOURCES and SOURCES["rside-csv"].splits == ("train", "test")
    with pytest.raises(ValueError, match="unknown data source 'kitti'; available: nyu-labeled, rside-csv"):
        build_dataset("kitti", None, "test")
