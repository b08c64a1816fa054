"""Registered entry points: one small factory per architecture (timm-style)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .registry import register_model
from .rside import RSIDE_BACKBONES, build_rside


@register_model("rside", backbones=RSIDE_BACKBONES)
def rside(backbone: str, weights: str | Path | None = None, provider: str = "timm") -> nn.Module:
    """Hu et al. RSIDE (E/D/MFF/R), state_dict-compatible with the official checkpoints.

    provider: where SENet-154 comes from ("timm" or "pretrainedmodels"); ignored for other backbones.
    """
    return build_rside(backbone, weights=weights, provider=provider)


# --- DRNet (drnet branch) -----------------------------------------------------------------------------------

from .drnet import DRNET_BACKBONES, build_drnet  # noqa: E402


@register_model("drnet", backbones=DRNET_BACKBONES)
def drnet(
    backbone: str,
    weights: str | Path | None = None,
    diagonal: bool = True,
    aux_losses: bool = True,
    second_branch: bool = True,
    up_channels: tuple[int, int, int, int, int] | None = None,
    diagonal_target: str = "up1",
    level_sizes: str = "paper",
    size_mode: str = "crop",
    up2_init: str = "zero",
    shuffle_init: str = "default",
    provider: str = "timm",
) -> nn.Module:
    """Durasov et al. DRNet (down, up I, up II); the first three options are Table 3's switches.

    up_channels: up I_0..up I_4 widths after their PixelShuffle (None: 4, then half of down_1..down_4's
    channels). diagonal_target: "up1" | "correction" | "both" (what the diagonal connections feed).
    level_sizes: "paper" (1, 1/4, 1/4, 1/8, 1/16, 1/32) | "pow2" (1/2^i). size_mode: "crop" | "resize" |
    "strict" for sides not divisible by 32. up2_init: "zero" | "default" (up II's convs at init).
    shuffle_init: "default" | "icnr" (up I convs before PixelShuffle). provider: SENet-154's source.
    See architectures/drnet.py.
    """
    return build_drnet(backbone, weights=weights, provider=provider, diagonal=diagonal, aux_losses=aux_losses,
                       second_branch=second_branch, up_channels=up_channels, diagonal_target=diagonal_target,
                       level_sizes=level_sizes, size_mode=size_mode, up2_init=up2_init,
                       shuffle_init=shuffle_init)
