"""ImageNet encoders shared by RSIDE and DRNet.

Every backbone is the stock classifier from torchvision (ResNet, DenseNet) or timm (SENet-154, as
``legacy_senet154``; pretrainedmodels' ``senet154`` is an optional provider with the same module names).
Weights are never downloaded here: ``weights="imagenet"`` reads the file from the torch hub cache
(``$TORCH_HOME/hub/checkpoints``) and fails with a message giving the ``bench fetch weights --backbone NAME``
command that puts it there (``missing_weights_message``).
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "WeightsError",
    "available_backbones",
    "backbone_spec",
    "create_classifier",
    "imagenet_cache_dir",
    "load_state_dict_file",
    "missing_weights_message",
    "stages",
]


class WeightsError(RuntimeError):
    """A weights file is missing, unreadable, or does not fit the network."""


@dataclass(frozen=True)
class BackboneSpec:
    """Static facts about one encoder.

    ``stage_channels`` are the output channels of stage 0 (the stem, 1/4 resolution) and stages 1..4
    (1/4, 1/8, 1/16, 1/32), as split by ``stages``. Stages 1..4 are the four features RSIDE's encoder hands
    to its decoder (for DenseNet taken inside the transition layers, before their average pool).
    """

    name: str
    family: str  # "resnet" | "densenet" | "senet"
    stage_channels: tuple[int, int, int, int, int]
    weight_files: tuple[str, ...]  # accepted ImageNet file names in the hub cache, preferred first


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("resnet18", "resnet", (64, 64, 128, 256, 512), ("resnet18-f37072fd.pth", "resnet18-5c106cde.pth")),
        BackboneSpec("resnet34", "resnet", (64, 64, 128, 256, 512), ("resnet34-b627a593.pth", "resnet34-333f7ec4.pth")),
        BackboneSpec(
            "resnet50",
            "resnet",
            (64, 256, 512, 1024, 2048),
            ("resnet50-0676ba61.pth", "resnet50-19c8e357.pth", "resnet50-11ad3fa6.pth"),
        ),
        BackboneSpec(
            "resnet101",
            "resnet",
            (64, 256, 512, 1024, 2048),
            ("resnet101-63fe2227.pth", "resnet101-5d3b4d8f.pth", "resnet101-cd907fc2.pth"),
        ),
        BackboneSpec(
            "resnet152",
            "resnet",
            (64, 256, 512, 1024, 2048),
            ("resnet152-394f9c45.pth", "resnet152-b121ed2d.pth", "resnet152-f82ba261.pth"),
        ),
        BackboneSpec("densenet161", "densenet", (96, 192, 384, 1056, 2208), ("densenet161-8d451a50.pth",)),
        BackboneSpec(
            "senet154", "senet", (128, 256, 512, 1024, 2048), ("legacy_senet154-e9eb9fe6.pth", "senet154-c7b49a05.pth")
        ),
    )
}

SENET_PROVIDERS = ("timm", "pretrainedmodels")


def available_backbones() -> list[str]:
    """Names accepted by ``create_classifier`` and ``build_model``."""
    return sorted(BACKBONES)


def backbone_spec(name: str) -> BackboneSpec:
    """Look up a backbone; unknown names list the valid ones."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise KeyError(f"unknown backbone {name!r}; available: {', '.join(available_backbones())}") from None


def imagenet_cache_dir() -> Path:
    """Where ImageNet weights are looked for: torch hub's checkpoint cache (respects $TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def create_classifier(name: str, weights: str | Path | None = None, provider: str = "timm") -> nn.Module:
    """Build the stock ImageNet classifier ``name`` with random, cached-ImageNet or file weights.

    weights: None (random init), "imagenet" (from ``imagenet_cache_dir()``, never downloaded) or a path to
    a state_dict file. provider only matters for senet154: "timm" (default) or "pretrainedmodels".
    """
    spec = backbone_spec(name)
    model = _instantiate(spec, provider)
    if weights is None:
        return model
    path = _imagenet_file(spec) if str(weights) == "imagenet" else Path(weights)
    state = load_state_dict_file(path)
    missing, unexpected = _load_lenient_head(model, state)
    if missing or unexpected:
        raise WeightsError(_mismatch_message(path, f"backbone {name}", missing, unexpected))
    return model


def stages(name: str, classifier: nn.Module) -> nn.ModuleList:
    """The five down-sampling stages [layer0 (stem), layer1..layer4] of a classifier, sharing its modules.

    layer0 for ResNet is conv1-bn1-relu-maxpool; for DenseNet conv0..pool0, then denseblock_k followed by
    transition_k (without its final average pool for k < 4, so the stage ends where RSIDE taps; the
    pool opens the next stage); for SENet layer0 with its ceil-mode max-pool.
    """
    family = backbone_spec(name).family
    if family == "resnet":
        m = classifier
        stem = nn.Sequential(OrderedDict(conv1=m.conv1, bn1=m.bn1, relu=m.relu, maxpool=m.maxpool))
        return nn.ModuleList([stem, m.layer1, m.layer2, m.layer3, m.layer4])
    if family == "senet":
        return nn.ModuleList([senet_layer0(classifier), *(getattr(classifier, f"layer{i}") for i in range(1, 5))])
    f = classifier.features
    stem = nn.Sequential(OrderedDict(conv0=f.conv0, norm0=f.norm0, relu0=f.relu0, pool0=f.pool0))
    out = [stem]
    for k in range(1, 5):
        parts: list[tuple[str, nn.Module]] = []
        if k > 1:
            parts.append((f"pool{k - 1}", getattr(f, f"transition{k - 1}").pool))
        parts.append((f"denseblock{k}", getattr(f, f"denseblock{k}")))
        if k < 4:
            t = getattr(f, f"transition{k}")
            parts += [(f"norm_t{k}", t.norm), (f"relu_t{k}", t.relu), (f"conv_t{k}", t.conv)]
        else:
            parts += [("norm5", f.norm5), ("relu5", nn.ReLU(inplace=True))]
        out.append(nn.Sequential(OrderedDict(parts)))
    return nn.ModuleList(out)


def senet_layer0(classifier: nn.Module) -> nn.Sequential:
    """SENet's stem with its max-pool inside, as pretrainedmodels (and RSIDE's ``E.base.0``) have it."""
    if hasattr(classifier, "pool0"):  # timm keeps the pool apart from layer0
        return nn.Sequential(OrderedDict([*classifier.layer0.named_children(), ("pool", classifier.pool0)]))
    return classifier.layer0


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state_dict from a file the user named (plain or wrapped in {'state_dict': ...})."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or pickled classes
        raise WeightsError(f"cannot read weights file {path}: {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    return obj


def _instantiate(spec: BackboneSpec, provider: str) -> nn.Module:
    if spec.family in ("resnet", "densenet"):
        return getattr(torchvision.models, spec.name)(weights=None)
    if provider not in SENET_PROVIDERS:
        raise ValueError(f"unknown provider {provider!r} for {spec.name}; available: {', '.join(SENET_PROVIDERS)}")
    if provider == "pretrainedmodels":
        if importlib.util.find_spec("pretrainedmodels") is None:
            raise ImportError(
                "provider 'pretrainedmodels' is not installed; pip install pretrainedmodels, "
                "or use the default provider 'timm'"
            )
        import pretrainedmodels

        return pretrainedmodels.senet154(num_classes=1000, pretrained=None)
    import timm

    return timm.create_model("legacy_senet154", pretrained=False)


def missing_weights_message(name: str) -> str:
    """What to do when ``weights="imagenet"`` finds nothing cached for backbone ``name``: the one ``bench fetch``
    command that fills this cache (verified download), or where to put the file by hand."""
    spec = backbone_spec(name)
    cache = imagenet_cache_dir()
    others = f" (or one of: {', '.join(spec.weight_files[1:])})" if len(spec.weight_files) > 1 else ""
    return (
        f"ImageNet weights for {name} are not in the local cache ({cache}/) and are never downloaded at run time: "
        f"run `bench fetch weights --backbone {name}` (verified download into that cache; it follows TORCH_HOME), "
        f"or place {spec.weight_files[0]}{others} there yourself, or pass weights=PATH to a state_dict file"
    )


def _imagenet_file(spec: BackboneSpec) -> Path:
    cache = imagenet_cache_dir()
    for name in spec.weight_files:
        if (cache / name).is_file():
            return cache / name
    raise WeightsError(missing_weights_message(spec.name))


def _load_lenient_head(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Load strictly except that a file without the classifier head (fc / classifier / last_linear) is fine."""
    head = ("fc.", "classifier.", "last_linear.")
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(head)]
    return missing, list(result.unexpected_keys)


def _mismatch_message(path: Path, what: str, missing: list[str], unexpected: list[str], show: int = 8) -> str:
    def head(keys: list[str]) -> str:
        more = f", ... ({len(keys) - show} more)" if len(keys) > show else ""
        return ", ".join(keys[:show]) + more

    parts = [f"{path} does not fit {what}:"]
    if missing:
        parts.append(f"{len(missing)} missing key(s): {head(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {head(unexpected)}")
    return " ".join(parts)
