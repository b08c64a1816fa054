"""Registered entry points: one small factory per architecture (timm-style)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .drnet import DRNET_BACKBONES, DRNetConfig, build_drnet
from .registry import register_model
from .rside import RSIDE_BACKBONES, build_rside


@register_model("rside", backbones=RSIDE_BACKBONES)
def rside(backbone: str, weights: str | Path | None = None, provider: str = "timm") -> nn.Module:
    """Hu et al. RSIDE (E/D/MFF/R), state_dict-compatible with the official checkpoints.

    provider: where SENet-154 comes from ("timm" or "pretrainedmodels"); ignored for other backbones.
    """
    return build_rside(backbone, weights=weights, provider=provider)


@register_model("drnet", backbones=DRNET_BACKBONES, config=DRNetConfig)
def drnet(backbone: str, weights: str | Path | None = None, provider: str = "timm", **options) -> nn.Module:
    """Durasov et al. DRNet (down, up I, up II). ``options`` are the fields of ``DRNetConfig`` (Table 3's
    switches diagonal, aux_losses, second_branch, and the readings the paper leaves open; see
    architectures/drnet.py). provider: SENet-154's source ("timm" or "pretrainedmodels").
    """
    return build_drnet(backbone, weights=weights, provider=provider, **options)
