"""DRNet: Durasov et al., "Double Refinement Network for Efficient Indoor Monocular Depth Estimation" (2018).

Paper section 3.2.1 and Figure 1. Three branches, six levels (0 = finest):

- **down**: the backbone without avgpool/fc. down_1 = layer0 (stem, 1/4), down_2..down_5 = layer1..layer4
  (1/4, 1/8, 1/16, 1/32), taken from ``backbones.stages``. DenseNet-161: down_1 = conv0-norm0-relu0-pool0,
  down_2..4 = dense block k + transition k up to its 1x1 conv (the 2x2 average pool opens the next stage;
  RSIDE's taps), down_5 = pool3 + dense block 4 + norm5 + ReLU. SENet-154: layer0 (three 3x3 convs and the
  ceil-mode max-pool) and layer1..4.
- **up I** (PixelShuffle): up I_5 = down_5. up I_i = cat[PixelShuffle(1x1 conv-BN-ReLU(up I_{i+1})), down_i,
  (diagonal) bilinear-upsampled up II_{i+1}]. Shuffle x2, none for up I_1, x4 for up I_0 (to input size).
- **up II** (depth): up II_5 = 1x1 conv(down_5). up II_i = up(up II_{i+1}) + 1x1 conv(cat[up I_i, the image
  average-pooled to level i, up(up II_{i+1})]) -> 1 channel. Level 0 is the output: (B,1,H,W) in metres.

Where the paper is silent or inconsistent, this module reads it as follows (each reading is an option of
``DRNetConfig`` and of ``build_model("drnet", ...)``; README "Interpretation of the DRNet paper" says why):

1. Merge with the down features (``up I``): concatenation (U-Net, which the paper cites as its inspiration);
   the text lists only conv-BN-ReLU-shuffle and the depth concatenation, the caption says up I "merges the
   high-level features together with low-level features". The corrections read up I_i without repeating
   the depth channel the diagonal put there (they get the upsampled coarser depth as their own input).
2. Channel widths (``up_channels``): up I_i has ``C(down_i) // 2`` channels after its shuffle for i = 1..4
   (half the skip it is concatenated with; U-Net uses equal widths, halving keeps the decoder light, which
   is the paper's point) and 4 at level 0, because the finest correction sees "the input image, 4 activation
   maps and up II_1": the 4 maps are up I_0. ResNet-50: (4, 32, 128, 256, 512).
3. Diagonal connections (``diagonal_target``): the red arrows are not described in the text. The one
   connection that crosses both branch and level is "the output is concatenated with depth approximation
   up II_{i+1} upsampled by factor of 2" (green branch, level i+1 -> red branch, level i), and Table 3 finds
   removing them nearly harmless, as expected of a 1-channel hint in a wide feature stream. Default
   ``"up1"``: the diagonals are those four depth inputs to up I_4..up I_1 (at level 0 nothing downstream
   would read it, so none is added). ``"correction"``: they are the upsampled coarser depth fed to each
   correction conv instead; ``"both"``: both. ``diagonal=False`` removes the chosen ones.
4. Level sizes (``level_sizes``): the text shuffles every level x2 "except up I_1" and up I_0 x4, so up I_1
   sits at 1/4 with down_1 (layer0's output) and level 0 at the input size: levels at 1, 1/4, 1/4, 1/8,
   1/16, 1/32 (``"paper"``, default). Section 3.2.3 ("the target is downsampled 2^i times") and "each level
   increases the side by a factor of 2" describe 1/2^i instead (``"pow2"``): down_1 is then the stem before
   its max-pool (1/2; the paper's own size list starts with that 64x112x112 map) and every up I step
   shuffles x2. Auxiliary losses resize the target to each level's actual size (``losses.multiscale_loss``).
5. Inputs not divisible by 32 (``size_mode``), e.g. RSIDE's 228x304, where ResNet gives 57x76, 29x38, 15x19,
   8x10: ``"crop"`` (default) runs at the true size and aligns every 2x step to the backbone's own level
   size, top-left anchored (a shuffled 8x10 map becomes 16x20 and loses its last row and column, as the
   stride-2 convs that made it were anchored at pixel 0; DenseNet's floor-sized levels get a replicated
   last row or column instead). ``"resize"`` resizes the input to the nearest multiple of 32 (228x304 ->
   224x320) and the output back. ``"strict"`` refuses other sizes with a message saying which are accepted.
6. Small choices: bilinear resizes use align_corners=False (the half-pixel geometry of PixelShuffle, so a
   depth map and the features it is concatenated with line up); the image is average-pooled to each level
   (area, anti-aliased, cheap); every correction conv and up II_5's conv has a bias, no activation.
7. Initialisation (``up2_init``, ``shuffle_init``): the paper starts from an ImageNet backbone and says
   nothing about the decoder. ``up2_init="zero"`` (default) starts up II_5's conv and every correction conv
   at weight 0, bias 0, so every level predicts 0 m at init (as RSIDE's output starts near 0) and the depth
   read-out grows from 0 as it learns. ``"default"`` keeps PyTorch's kaiming-uniform init: the six summed
   1x1 read-outs of raw backbone features then start as metres of pixel noise, and in eval mode (BatchNorm
   running statistics lagging the weights in the first steps) as tens of metres (README, "Why DRNet
   started badly"). ``shuffle_init="icnr"`` gives each PixelShuffle's sub-pixel channels one shared kernel
   at init (no checkerboard at step 0); default: PyTorch's init.

Switches for Table 3: ``diagonal``; ``aux_losses`` (``model(x, levels=True)`` returns all six levels for
eq. 1, or only the finest); ``second_branch=False`` removes up II (and with it the image inputs and the
diagonals) and predicts depth from up I_0 with one 1x1 conv, so ``aux_losses`` and ``diagonal`` then have
nothing to act on.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import BACKBONES, backbone_spec, create_classifier, stages
from .blocks import ConvBNReLU, resize_bilinear

__all__ = [
    "DIAGONAL_TARGETS",
    "DRNET_BACKBONES",
    "DRNet",
    "DRNetConfig",
    "LEVEL_STRIDES",
    "SIZE_MODES",
    "build_drnet",
    "default_up_channels",
]

DRNET_BACKBONES = tuple(BACKBONES)  # every shared encoder
NUM_LEVELS = 6  # levels 0..5: eq. 1 sums the loss over level = 0..5
FINEST_UP_CHANNELS = 4  # "the input image, 4 activation maps and up II_1": up I_0 has 4 channels
SIZE_MULTIPLE_PX = 32  # the backbone's total stride: level 5 is 1/32 of the input
MIN_SIDE_PX = 32  # smaller inputs leave level 5 without pixels
ALIGN_CORNERS = False  # PixelShuffle's half-pixel geometry; see the module docstring, reading 6
LEVEL_STRIDES = {  # input side / level side for levels 0..5
    "paper": (1, 4, 4, 8, 16, 32),  # up I_1 not shuffled, up I_0 shuffled x4 (section 3.2.1)
    "pow2": (1, 2, 4, 8, 16, 32),  # level i at 1/2^i (section 3.2.3), down_1 = stem before its max-pool
}
DIAGONAL_TARGETS = ("up1", "correction", "both")
SIZE_MODES = ("crop", "resize", "strict")
UP2_INITS = ("zero", "default")  # up II's 1x1 convs: start at 0, or PyTorch's default (kaiming-uniform) init
SHUFFLE_INITS = ("default", "icnr")  # up I convs before a PixelShuffle: PyTorch's default, or ICNR


@dataclass(frozen=True)
class DRNetConfig:
    """The switches and readings of one DRNet; defaults follow the paper's full model (Table 3, row 1)."""

    diagonal: bool = True  # Table 3: keep the diagonal connections (which ones: diagonal_target)
    aux_losses: bool = True  # Table 3: levels=True returns every level (eq. 1), else only the finest
    second_branch: bool = True  # Table 3: keep up II; False predicts depth from up I_0 with one 1x1 conv
    diagonal_target: str = "up1"  # the diagonals feed coarser depth into "up1", the "correction", or "both"
    level_sizes: str = "paper"  # "paper": levels at 1, 1/4, 1/4, 1/8, 1/16, 1/32; "pow2": 1/2^i
    size_mode: str = "crop"  # sides not divisible by 32: "crop" (align each level), "resize", "strict"
    up_channels: tuple[int, ...] | None = None  # up I_0..up I_4 widths after the shuffle; None: default rule
    up2_init: str = "zero"  # up II's coarse and correction convs start at weight 0, bias 0 ("default": PyTorch's)
    shuffle_init: str = "default"  # up I convs feeding a PixelShuffle: PyTorch's init, or "icnr" (Aitken et al.)

    def __post_init__(self) -> None:
        for name in ("diagonal", "aux_losses", "second_branch"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"drnet option {name} must be True or False; got {getattr(self, name)!r}")
        _check_choice("diagonal_target", self.diagonal_target, DIAGONAL_TARGETS)
        _check_choice("level_sizes", self.level_sizes, tuple(LEVEL_STRIDES))
        _check_choice("size_mode", self.size_mode, SIZE_MODES)
        _check_choice("up2_init", self.up2_init, UP2_INITS)
        _check_choice("shuffle_init", self.shuffle_init, SHUFFLE_INITS)
        if self.up_channels is not None:
            channels = tuple(self.up_channels)
            if len(channels) != NUM_LEVELS - 1 or not all(isinstance(c, int) and c > 0 for c in channels):
                raise ValueError(
                    f"drnet option up_channels must be {NUM_LEVELS - 1} positive integers (up "
                    f"I_0..up I_4 after their PixelShuffle), or None; got {self.up_channels!r}"
                )
            object.__setattr__(self, "up_channels", channels)

    @property
    def depth_into_up1(self) -> bool:
        """Whether up(up II_{i+1}) is concatenated into up I_i (i = 4..1)."""
        return self.second_branch and (self.diagonal or self.diagonal_target == "correction")

    @property
    def depth_into_correction(self) -> bool:
        """Whether up(up II_{i+1}) is an input of the level-i correction conv."""
        return self.diagonal or self.diagonal_target == "up1"

    @property
    def shuffle_factors(self) -> tuple[int, ...]:
        """PixelShuffle factor of up I_0..up I_4 (1 = no shuffle): (4, 1, 2, 2, 2) for "paper"."""
        s = LEVEL_STRIDES[self.level_sizes]
        return tuple(s[i + 1] // s[i] for i in range(NUM_LEVELS - 1))


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"drnet option {name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def default_up_channels(down_channels: Sequence[int]) -> tuple[int, ...]:
    """up I_0..up I_4 widths after the shuffle: 4 at level 0, half of down_i's channels at level i >= 1.

    down_channels: channels of down_1..down_5. ResNet-50 (64, 256, 512, 1024, 2048) -> (4, 32, 128, 256, 512).
    """
    return (FINEST_UP_CHANNELS, *(max(1, c // 2) for c in down_channels[:4]))


def fit_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Crop (bottom/right) or replicate-pad (bottom/right) (B,C,h,w) to ``size``: the top-left anchored
    alignment of a 2x step to a backbone level whose side was rounded up (ResNet) or down (DenseNet)."""
    dh, dw = int(size[0]) - x.shape[-2], int(size[1]) - x.shape[-1]
    if dh == 0 and dw == 0:
        return x
    x = x[..., : x.shape[-2] + min(dh, 0), : x.shape[-1] + min(dw, 0)]
    if dh > 0 or dw > 0:
        x = F.pad(x, (0, max(dw, 0), 0, max(dh, 0)), mode="replicate")
    return x


def upsample_depth(depth: torch.Tensor, factor: int, size: Sequence[int]) -> torch.Tensor:
    """Bilinear x``factor`` upsampling of a (B,1,h,w) depth, fitted to ``size`` like the shuffled features."""
    if factor > 1:
        depth = resize_bilinear(depth, (depth.shape[-2] * factor, depth.shape[-1] * factor), ALIGN_CORNERS)
    return fit_to(depth, size)


def downsample_image(image: torch.Tensor, stride: int, size: Sequence[int]) -> torch.Tensor:
    """The (B,3,H,W) image averaged over stride x stride blocks (the last ones partial), fitted to size."""
    if stride > 1:
        image = F.avg_pool2d(image, stride, stride, ceil_mode=True)
    return fit_to(image, size)


class UpIBlock(nn.Module):
    """One up I step: 1x1 conv-BN-ReLU to ``out * factor^2`` channels, then PixelShuffle(factor) (1: none)."""

    def __init__(self, in_channels: int, out_channels: int, factor: int, init: str = "default"):
        super().__init__()
        self.conv = ConvBNReLU(in_channels, out_channels * factor * factor, kernel_size=1)
        self.shuffle = nn.PixelShuffle(factor) if factor > 1 else nn.Identity()
        if init == "icnr" and factor > 1:
            icnr_(self.conv[0].weight, factor)

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        return fit_to(self.shuffle(self.conv(x)), size)


class UpII(nn.Module):
    """The depth branch: ``coarse`` = up II_5's 1x1 conv on down_5; ``correct[i]``: level i's correction."""

    def __init__(self, down5_channels: int, correction_in_channels: Sequence[int], init: str = "zero"):
        super().__init__()
        self.coarse = nn.Conv2d(down5_channels, 1, kernel_size=1)
        self.correct = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1) for c in correction_in_channels)
        if init == "zero":  # the depth starts at 0 m everywhere; every conv still gets a gradient (its input)
            for conv in (self.coarse, *self.correct):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)


def icnr_(weight: torch.Tensor, factor: int) -> torch.Tensor:
    """ICNR init (Aitken et al. 2017) of a (C*factor^2, in, k, k) conv weight feeding PixelShuffle(factor):
    the factor^2 sub-pixel copies of each output channel share one kaiming-normal kernel, so the shuffled
    output starts as a nearest-neighbour upsampling (no checkerboard). In place; returns ``weight``."""
    out_ch = weight.shape[0] // (factor * factor)
    base = torch.empty((out_ch, *weight.shape[1:]), dtype=weight.dtype, device=weight.device)
    nn.init.kaiming_normal_(base, nonlinearity="relu")
    with torch.no_grad():
        weight.copy_(base.repeat_interleave(factor * factor, dim=0))  # PixelShuffle reads c*r^2 + sub-pixel
    return weight


class DRNet(nn.Module):
    """(B,3,H,W) ImageNet-normalised image -> (B,1,H,W) depth in metres (``output_stride = 1``).

    ``model(x, levels=True)`` returns what the training loss sums over, finest first: all six levels with
    ``aux_losses`` (eq. 1), else ``[finest]``. ``forward_levels(x)`` always returns every level.
    Children: ``down`` (the backbone's five stages), ``up1`` (up I blocks, index = level 0..4), ``up2``
    (up II; absent with ``second_branch=False``, replaced by ``head``).
    """

    output_stride = 1

    def __init__(
        self, down: nn.ModuleList, down_channels: Sequence[int], config: DRNetConfig | None = None, backbone: str = ""
    ):
        super().__init__()
        config = config if config is not None else DRNetConfig()
        if len(down) != NUM_LEVELS - 1 or len(down_channels) != NUM_LEVELS - 1:
            raise ValueError(
                f"drnet needs {NUM_LEVELS - 1} down stages and their channels; "
                f"got {len(down)} stages, {len(down_channels)} channel counts"
            )
        self.backbone = backbone
        self.config = config
        self.aux_losses = config.aux_losses
        self.down = _split_stem(down) if config.level_sizes == "pow2" else down
        self.up_channels = config.up_channels or default_up_channels(down_channels)

        down_ch = (3, *down_channels)  # down_ch[i] = channels of down_i; level 0's "down" is the image
        diag = int(config.depth_into_up1)
        # up I_i's channels: its shuffled features, down_i, and (levels 4..1) the diagonal depth
        up1_ch = [self.up_channels[i] + (down_ch[i] + diag if i > 0 else 0) for i in range(NUM_LEVELS - 1)]
        up1_ch.append(down_channels[-1])  # up I_5 = down_5
        factors = config.shuffle_factors
        self.up1 = nn.ModuleList(
            UpIBlock(up1_ch[i + 1], self.up_channels[i], factors[i], config.shuffle_init) for i in range(5)
        )
        if config.second_branch:
            extra = 3 + int(config.depth_into_correction)  # the image at level i, the upsampled coarser depth
            corr_in = [self.up_channels[i] + (down_ch[i] if i > 0 else 0) + extra for i in range(5)]
            self.up2 = UpII(down_channels[-1], corr_in, config.up2_init)
        else:
            self.head = nn.Conv2d(self.up_channels[0], 1, kernel_size=1)

    def forward(self, x: torch.Tensor, levels: bool = False) -> torch.Tensor | list[torch.Tensor]:
        depths = self.forward_levels(x)
        if levels:
            return depths if self.aux_losses else depths[:1]
        return depths[0]

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Depth at every level, finest first: [(B,1,H,W), level 1, ..., level 5]; one entry without up II."""
        size = self._check_input(x)
        inner = self.inner_size(size)
        if inner != size:
            x = resize_bilinear(x, inner, ALIGN_CORNERS)
        downs = self._down(x)
        sizes = [inner, *(tuple(d.shape[-2:]) for d in downs)]
        if self.config.second_branch:
            depths = self._decode(x, downs, sizes)
        else:
            depths = [self._decode_up1_only(downs, sizes)]
        if inner != size:
            depths[0] = resize_bilinear(depths[0], size, ALIGN_CORNERS)
        return depths

    def inner_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The size the network runs at: the input size, or with size_mode="resize" the nearest x32 size."""
        return nearest_multiple_size(size) if self.config.size_mode == "resize" else size

    def _down(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[down_1, ..., down_5]."""
        outs = []
        for stage in self.down:
            x = stage(x)
            outs.append(x)
        return outs

    def _decode(self, image: torch.Tensor, downs: list[torch.Tensor], sizes: list) -> list[torch.Tensor]:
        strides, factors = LEVEL_STRIDES[self.config.level_sizes], self.config.shuffle_factors
        up = downs[-1]  # up I_5 = down_5
        depth = self.up2.coarse(up)  # up II_5
        depths = [depth]
        for i in range(NUM_LEVELS - 2, -1, -1):
            feat = self.up1[i](up, sizes[i])
            if i > 0:
                feat = torch.cat([feat, downs[i - 1]], dim=1)
            coarse = upsample_depth(depth, factors[i], sizes[i])
            inputs = [feat, downsample_image(image, strides[i], sizes[i])]
            if self.config.depth_into_correction:
                inputs.append(coarse)
            depth = coarse + self.up2.correct[i](torch.cat(inputs, dim=1))
            depths.append(depth)
            up = torch.cat([feat, coarse], dim=1) if self.config.depth_into_up1 and i > 0 else feat
        return depths[::-1]

    def _decode_up1_only(self, downs: list[torch.Tensor], sizes: list) -> torch.Tensor:
        """second_branch=False: up I alone, then one 1x1 conv on up I_0."""
        up = downs[-1]
        for i in range(NUM_LEVELS - 2, -1, -1):
            up = self.up1[i](up, sizes[i])
            if i > 0:
                up = torch.cat([up, downs[i - 1]], dim=1)
        return self.head(up)

    def _check_input(self, x: torch.Tensor) -> tuple[int, int]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"drnet expects a (B,3,H,W) image batch; got shape {tuple(x.shape)}")
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if self.config.size_mode == "strict" and (h % SIZE_MULTIPLE_PX or w % SIZE_MULTIPLE_PX):
            nh, nw = nearest_multiple_size((h, w))
            raise ValueError(
                f"drnet with size_mode='strict' accepts heights and widths divisible by {SIZE_MULTIPLE_PX} "
                f"(e.g. 224x320, 480x640); got {h}x{w}. Use size_mode='crop' (runs at any size >= "
                f"{MIN_SIDE_PX}) or 'resize' (runs at {nh}x{nw} inside)."
            )
        if min(h, w) < MIN_SIDE_PX:
            raise ValueError(
                f"drnet accepts heights and widths of at least {MIN_SIDE_PX} px (the backbone "
                f"downsamples 32x); got {h}x{w}"
            )
        return h, w


def nearest_multiple_size(size: Sequence[int]) -> tuple[int, int]:
    """(h, w) rounded to the nearest multiples of 32 (at least 32): 228x304 -> 224x320."""
    m = SIZE_MULTIPLE_PX
    return max(m, round(size[0] / m) * m), max(m, round(size[1] / m) * m)


def _split_stem(down: nn.ModuleList) -> nn.ModuleList:
    """For level_sizes="pow2": down_1 = the stem without its final pool (1/2); the pool opens stage 1."""
    stem, stage1 = down[0], down[1]
    names = list(stem._modules)
    pre = nn.Sequential(OrderedDict((n, stem._modules[n]) for n in names[:-1]))
    post = nn.Sequential(OrderedDict([(names[-1], stem._modules[names[-1]]), ("stage", stage1)]))
    return nn.ModuleList([pre, post, *down[2:]])


def build_drnet(
    backbone: str = "resnet50", weights: str | Path | None = None, provider: str = "timm", **options
) -> DRNet:
    """DRNet on ``backbone``; ``weights`` initialise the encoder (None, "imagenet" or a state_dict path);
    ``options`` are the fields of ``DRNetConfig``."""
    spec = backbone_spec(backbone)
    config = DRNetConfig(**options)
    classifier = create_classifier(backbone, weights, provider=provider)
    return DRNet(stages(backbone, classifier), spec.stage_channels, config, backbone=backbone)
