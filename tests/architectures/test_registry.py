from __future__ import annotations

import pytest
from torch import nn

from architectures import available_models, build_model, model_options


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
