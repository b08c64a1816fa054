from __future__ import annotations

import pytest
import torch

from architectures.backbones import (
    BACKBONES,
    WeightsError,
    available_backbones,
    backbone_spec,
    create_classifier,
    stages,
)


def test_unknown_backbone_lists_the_valid_ones():
    with pytest.raises(KeyError, match="available: .*resnet50.*senet154"):
        backbone_spec("resnet51")


def test_available_backbones():
    assert set(available_backbones()) == {
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "densenet161",
        "senet154",
    }


@pytest.mark.parametrize(
    "name",
    ["resnet18", pytest.param("densenet161", marks=pytest.mark.slow), pytest.param("senet154", marks=pytest.mark.slow)],
)
def test_stages_have_documented_channels_and_strides(name):
    torch.set_default_device("meta")  # shapes only: no memory, no initialisation, no arithmetic
    try:
        model = create_classifier(name).eval()
    finally:
        torch.set_default_device(None)
    x = torch.zeros(1, 3, 128, 160, device="meta")
    sizes = []
    with torch.inference_mode():
        for stage, channels in zip(stages(name, model), BACKBONES[name].stage_channels, strict=True):
            x = stage(x)
            assert x.shape[1] == channels
            sizes.append(tuple(x.shape[-2:]))
    assert sizes == [(32, 40), (32, 40), (16, 20), (8, 10), (4, 5)]


def test_imagenet_weights_missing_names_the_file_and_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _forbidden)
    with pytest.raises(WeightsError) as err:
        create_classifier("resnet50", weights="imagenet")
    msg = str(err.value)
    assert "resnet50-0676ba61.pth" in msg and str(tmp_path / "hub" / "checkpoints") in msg


def test_imagenet_weights_are_read_from_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    source = create_classifier("resnet18")
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(source.state_dict(), cache / "resnet18-f37072fd.pth")
    loaded = create_classifier("resnet18", weights="imagenet")
    assert torch.equal(loaded.conv1.weight, source.conv1.weight)


def test_weights_from_a_state_dict_file_without_head(tmp_path):
    source = create_classifier("resnet18")
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    torch.save({"state_dict": state}, tmp_path / "enc.pth")
    loaded = create_classifier("resnet18", weights=tmp_path / "enc.pth")
    assert torch.equal(loaded.layer4[1].conv2.weight, source.layer4[1].conv2.weight)


def test_wrong_weights_file_names_missing_and_unexpected_keys(tmp_path):
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "bogus.weight": torch.zeros(1)}, tmp_path / "w.pth")
    with pytest.raises(WeightsError, match=r"missing key\(s\): bn1\.weight.*unexpected key\(s\): bogus\.weight"):
        create_classifier("resnet18", weights=tmp_path / "w.pth")


def test_truncated_weights_file_is_a_clear_error(tmp_path):
    torch.save(create_classifier("resnet18").state_dict(), tmp_path / "w.pth")
    data = (tmp_path / "w.pth").read_bytes()
    (tmp_path / "w.pth").write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError, match="cannot read weights file .*w.pth"):
        create_classifier("resnet18", weights=tmp_path / "w.pth")


def test_missing_weights_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        create_classifier("resnet18", weights=tmp_path / "nope.pth")


def test_pretrainedmodels_provider_is_optional():
    pytest.importorskip("timm")
    try:
        import pretrainedmodels  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pretrainedmodels"):
            create_classifier("senet154", provider="pretrainedmodels")
    else:  # pragma: no cover - only where it is installed
        create_classifier("senet154", provider="pretrainedmodels")


def _forbidden(*args, **kwargs):
    raise AssertionError("a download was attempted")
