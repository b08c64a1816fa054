"""RSIDE: Hu et al., "Revisiting Single Image Depth Estimation" (WACV 2019).

A clean re-implementation of the official code (JunjH/Revisiting_Single_Depth_Estimation @ f88c672,
``models/modules.py`` and ``models/net.py``). The network is four children, named as upstream so that the
released checkpoints load by name with ``strict=True``:

- ``E``   encoder: four taps of the backbone (1/4, 1/8, 1/16, 1/32 of the input)
- ``D``   decoder: 1x1 conv-BN-ReLU on tap 4, then four up-projections to 2x the tap-1 size
- ``MFF`` multi-scale feature fusion: each tap up-projected to D's output size (16 channels each)
- ``R``   refinement: three 5x5 convs on cat([D, MFF]) -> 1 channel, depth in metres

A (B,3,228,304) image gives a (B,1,114,152) depth map (half the input resolution). Every bilinear resize
uses align_corners=True: upstream wrote ``F.upsample(mode='bilinear')`` for PyTorch 0.3.1, which behaved
that way, and the released checkpoints were trained with it.

The one naming difference: DenseNet layers are ``norm1/conv1`` here (current torchvision) where the 2018
code had ``norm.1/conv.1``, which current PyTorch refuses as module names. ``load_official_checkpoint``
maps them in; ``to_official_state_dict`` maps them back.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
from torch import nn

from .backbones import BACKBONES, WeightsError, _mismatch_message, backbone_spec, create_classifier, senet_layer0
from .blocks import UpProjection

__all__ = [
    "RSIDE",
    "CheckpointError",
    "build_rside",
    "load_official_checkpoint",
    "to_official_state_dict",
    "from_official_state_dict",
]

RSIDE_BACKBONES = tuple(BACKBONES)  # every shared encoder
MFF_CHANNELS_PER_TAP = 16  # official MFF: each tap up-projected to 16 channels, 4 taps -> 64


class CheckpointError(WeightsError):
    """An official checkpoint is missing, unreadable, or does not match the model."""


class EncoderResNet(nn.Module):
    """Upstream ``E_resnet``: the ResNet without avgpool/fc; taps are layer1..layer4."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(classifier, name))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        return x1, x2, x3, self.layer4(x3)


class EncoderDenseNet(nn.Module):
    """Upstream ``E_densenet``: taps inside transitions 1-3 (after their 1x1 conv, before the 2x2 pool),
    and ReLU(norm5(denseblock4)) as tap 4."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.features = classifier.features

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f = self.features
        x = f.pool0(f.relu0(f.norm0(f.conv0(x))))
        taps = []
        for k in (1, 2, 3):
            t = getattr(f, f"transition{k}")
            tap = t.conv(t.relu(t.norm(getattr(f, f"denseblock{k}")(x))))
            taps.append(tap)
            x = t.pool(tap)
        taps.append(torch.relu(f.norm5(f.denseblock4(x))))
        return tuple(taps)


class EncoderSENet(nn.Module):
    """Upstream ``E_senet``: ``base`` = Sequential(layer0 with its max-pool, layer1..layer4); taps are
    base[1..4]."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        layers = [getattr(classifier, f"layer{i}") for i in range(1, 5)]
        self.base = nn.Sequential(senet_layer0(classifier), *layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.base[0](x)
        taps = []
        for stage in self.base[1:]:
            x = stage(x)
            taps.append(x)
        return tuple(taps)


ENCODERS = {"resnet": EncoderResNet, "densenet": EncoderDenseNet, "senet": EncoderSENet}


class Decoder(nn.Module):
    """Upstream ``D``: conv1x1 (C -> C/2) + BN + ReLU on tap 4, then four up-projections, each halving the
    channels: to the sizes of taps 3, 2, 1, then 2x tap 1."""

    def __init__(self, num_features: int):
        super().__init__()
        c = num_features // 2
        self.conv = nn.Conv2d(num_features, c, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.up1 = UpProjection(c, c // 2)
        self.up2 = UpProjection(c // 2, c // 4)
        self.up3 = UpProjection(c // 4, c // 8)
        self.up4 = UpProjection(c // 8, c // 16)

    def forward(self, x1, x2, x3, x4) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x4)))
        x = self.up1(x, x3.shape[-2:])
        x = self.up2(x, x2.shape[-2:])
        x = self.up3(x, x1.shape[-2:])
        return self.up4(x, (2 * x1.shape[-2], 2 * x1.shape[-1]))


class MFF(nn.Module):
    """Upstream ``MFF``: up-project each tap to the decoder's size (16 ch each), concat, conv5x5-BN-ReLU."""

    def __init__(self, tap_channels: tuple[int, int, int, int], num_features: int = 64):
        super().__init__()
        for k, c in enumerate(tap_channels, start=1):
            setattr(self, f"up{k}", UpProjection(c, MFF_CHANNELS_PER_TAP))
        self.conv = nn.Conv2d(num_features, num_features, kernel_size=5, padding=2, bias=False)
        self.bn = nn.BatchNorm2d(num_features)

    def forward(self, x1, x2, x3, x4, size: tuple[int, int]) -> torch.Tensor:
        ups = [self.up1(x1, size), self.up2(x2, size), self.up3(x3, size), self.up4(x4, size)]
        return torch.relu(self.bn(self.conv(torch.cat(ups, dim=1))))


class Refine(nn.Module):
    """Upstream ``R``: conv5x5-BN-ReLU twice on cat([D, MFF]), then conv5x5 (with bias) to one channel."""

    def __init__(self, tap4_channels: int):
        super().__init__()
        c = 64 + tap4_channels // 32  # MFF's 64 + the decoder's output channels
        self.conv0 = nn.Conv2d(c, c, kernel_size=5, padding=2, bias=False)
        self.bn0 = nn.BatchNorm2d(c)
        self.conv1 = nn.Conv2d(c, c, kernel_size=5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, 1, kernel_size=5, padding=2, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn0(self.conv0(x)))
        x = torch.relu(self.bn1(self.conv1(x)))
        return self.conv2(x)


class RSIDE(nn.Module):
    """The assembled network: (B,3,H,W) image -> (B,1,H/2,W/2) depth in metres.

    ``model(x, levels=True)`` returns the list of predictions the training loss sums over (here just the
    one); every model in the registry follows that convention so the trainer (and DDP) treat them alike.
    """

    output_stride = 2  # output is half the input resolution (114x152 for 228x304)

    def __init__(self, encoder: nn.Module, tap_channels: tuple[int, int, int, int], backbone: str = ""):
        super().__init__()
        self.backbone = backbone
        self.E = encoder
        self.D = Decoder(tap_channels[3])
        self.MFF = MFF(tap_channels)
        self.R = Refine(tap_channels[3])

    def forward(self, x: torch.Tensor, levels: bool = False) -> torch.Tensor | list[torch.Tensor]:
        x1, x2, x3, x4 = self.E(x)
        decoded = self.D(x1, x2, x3, x4)
        fused = self.MFF(x1, x2, x3, x4, decoded.shape[-2:])
        depth = self.R(torch.cat([decoded, fused], dim=1))
        return [depth] if levels else depth


def build_rside(backbone: str = "resnet50", weights: str | Path | None = None, provider: str = "timm") -> RSIDE:
    """RSIDE on ``backbone``; ``weights`` initialise the encoder (None, "imagenet" or a state_dict path)."""
    spec = backbone_spec(backbone)
    classifier = create_classifier(backbone, weights, provider=provider)
    encoder = ENCODERS[spec.family](classifier)
    return RSIDE(encoder, spec.stage_channels[1:], backbone=backbone)


# --- official checkpoints -------------------------------------------------------------------------------

_OFFICIAL_DENSE = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.")
_OURS_DENSE = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.")


def from_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official key names -> ours: drop DataParallel's ``module.``, ``norm.1`` -> ``norm1`` (DenseNet)."""
    out = {}
    for key, value in state.items():
        key = key[len("module.") :] if key.startswith("module.") else key
        out[_OFFICIAL_DENSE.sub(r"\1\2.", key)] = value
    return out


def to_official_state_dict(model: RSIDE, data_parallel: bool = True) -> dict[str, torch.Tensor]:
    """Our state_dict under the official names (``module.`` prefix as the released files have it)."""
    prefix = "module." if data_parallel else ""
    return {prefix + _OURS_DENSE.sub(r"\1.\2.", k): v for k, v in model.state_dict().items()}


def load_official_checkpoint(path: str | Path, backbone: str) -> RSIDE:
    """Load a released RSIDE checkpoint (``pretrained_model/model_resnet`` etc.) into a fresh model.

    The files were pickled by Python 2 / PyTorch 0.3.1 under DataParallel: keys carry ``module.``, strings
    need ``encoding='latin1'``. The state is loaded with ``strict=True``; any mismatch raises
    ``CheckpointError`` naming the missing and unexpected keys. Returns the model in eval mode.
    """
    state = _read_checkpoint(Path(path))
    model = build_rside(backbone, weights=None)
    state = from_official_state_dict(state)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(_mismatch_message(Path(path), f"rside-{backbone}", missing, unexpected))
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in state
        if state[k].shape != expected[k].shape
    ]
    if wrong:
        raise CheckpointError(
            f"{path} does not fit rside-{backbone}: {len(wrong)} shape mismatch(es): " + "; ".join(wrong[:8])
        )
    model.load_state_dict(state, strict=True)
    return model.eval()


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Read a user-named checkpoint: safe loader first; the full unpickler only for this named file."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch warns that encoding needs weights_only=False; it does not
            warnings.filterwarnings("ignore", message="pickle_load_args only works")
            obj = torch.load(path, map_location="cpu", weights_only=True, encoding="latin1")
    except Exception:
        try:  # 0.3.1-era files can hold pickled objects the safe loader refuses; the user named this file
            obj = torch.load(path, map_location="cpu", weights_only=False, encoding="latin1")
        except Exception as exc:
            raise CheckpointError(
                f"cannot read checkpoint {path} (truncated or not a PyTorch file?): {type(exc).__name__}: {exc}"
            ) from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state_dict (a non-empty mapping of names to tensors)")
    return dict(obj)
