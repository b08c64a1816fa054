"""Small building blocks shared by the networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvBNReLU", "UpProjection", "resize_bilinear"]


def resize_bilinear(x: torch.Tensor, size: tuple[int, int] | list[int], align_corners: bool = True) -> torch.Tensor:
    """Bilinear resize of (B,C,H,W) to ``size`` = (h, w).

    align_corners=True reproduces PyTorch 0.3.1's ``F.upsample(mode='bilinear')``, which RSIDE's released
    checkpoints were trained with (current PyTorch defaults to False); callers say which they want.
    """
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)


class ConvBNReLU(nn.Sequential):
    """conv(k x k, no bias) -> BatchNorm -> ReLU, padding keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UpProjection(nn.Module):
    """RSIDE's up-projection (Laina et al.): resize, then ReLU(conv5-bn-relu-conv3-bn + conv5-bn).

    Child names (conv1, bn1, relu, conv1_2, bn1_2, conv2, bn2) are the official ``_UpProjection``'s, so
    released checkpoints load by name.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv1_2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn1_2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(in_channels, out_channels, kernel_size=5, padding=2, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = resize_bilinear(x, size, align_corners=True)
        branch1 = self.bn1_2(self.conv1_2(self.relu(self.bn1(self.conv1(x)))))
        branch2 = self.bn2(self.conv2(x))
        return self.relu(branch1 + branch2)
