"""RSIDE's training augmentation and the protocols' evaluation preprocessing, as small composable steps.

Each step maps a sample dict (``image``, ``depth``, ``valid``, ``frame``; see ``common``) to a new one. Train
order, as in RSIDE ``loaddata.py`` / ``nyu_transform.py``: Scale(240) -> RandomHorizontalFlip ->
RandomRotate(5) -> CenterCrop(228x304, depth resized to the model's output size) -> ToTensor ->
Lighting(0.1) -> ColorJitter(0.4, 0.4, 0.4) -> Normalize(ImageNet).

Where this differs from the 2018 code, on purpose:

- Depth is float metres throughout (RSIDE's train depth is an 8-bit PNG); invalid pixels are carried in
  ``valid`` and every resize or rotation keeps a pixel valid only if all pixels it draws on were valid.
- Rotation is bilinear (torchvision) for image and depth; RSIDE used ``scipy.ndimage.rotate(order=2)``, a
  quadratic spline. Both blend across depth edges; zero-filled corners become invalid here.
- Depth resizes are nearest-neighbour with PIL's pixel-centre rule (``nearest-exact``): RSIDE's Scale uses
  NEAREST explicitly and its CenterCrop calls ``PIL.Image.resize`` with no resample, which was NEAREST in the
  2018 Pillow but is BICUBIC for 8-bit images since Pillow 7; we keep NEAREST, what the code ran with.
- Randomness comes from torch's global generator (``torch.rand``), which DataLoader seeds per worker, so a
  seeded run draws the same augmentations (RSIDE used Python's ``random`` for angles and jitter).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from .common import Sample

if TYPE_CHECKING:
    from .protocols import Protocol

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PCA_EIGVAL",
    "PCA_EIGVEC",
    "RSIDE_CROP_HW",
    "RSIDE_DEPTH_HW",
    "RSIDE_SCALE_ROWS",
    "Compose",
    "center_crop",
    "color_jitter",
    "eval_transform",
    "lighting",
    "normalize",
    "random_horizontal_flip",
    "random_rotate",
    "resize_depth",
    "rside_train_transform",
    "scale_shorter_side",
    "to_float_image",
]

RSIDE_SCALE_ROWS = 240  # Scale(240): shorter side (rows for 640x480) to 240 px
RSIDE_CROP_HW = (228, 304)  # CenterCrop: the network input, H x W
RSIDE_DEPTH_HW = (114, 152)  # depth target at half size: RSIDE's output size
RSIDE_ROTATE_DEG = 5.0  # RandomRotate(5): angle ~ U(-5, 5) degrees
LIGHTING_STD = 0.1  # Lighting(0.1): AlexNet PCA noise, alpha ~ N(0, 0.1)
JITTER = 0.4  # ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))
_GREY_WEIGHTS = (0.299, 0.587, 0.114)  # RSIDE's Grayscale


class Compose:
    """Apply steps in order; ``describe()`` lists them with their arguments (recorded in a data identity)."""

    def __init__(self, *steps: Callable[[Sample], Sample]):
        self.steps = steps

    def __call__(self, sample: Sample) -> Sample:
        for step in self.steps:
            sample = step(sample)
        return sample

    def describe(self) -> list[str]:
        return [_describe(step) for step in self.steps]

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(self.describe()) + ")"


def rside_train_transform(depth_size: tuple[int, int] = RSIDE_DEPTH_HW) -> Compose:
    """RSIDE's random training transform: image (3,228,304) normalised, depth/valid at ``depth_size``."""
    return Compose(
        partial(scale_shorter_side, size=RSIDE_SCALE_ROWS),
        random_horizontal_flip,
        partial(random_rotate, max_degrees=RSIDE_ROTATE_DEG),
        partial(center_crop, size=RSIDE_CROP_HW),
        partial(resize_depth, size=tuple(depth_size)),
        to_float_image,
        partial(lighting, alphastd=LIGHTING_STD),
        partial(color_jitter, brightness=JITTER, contrast=JITTER, saturation=JITTER),
        normalize,
    )


def eval_transform(protocol: Protocol) -> Compose:
    """The protocol's deterministic preprocessing: Scale(resize_rows), centre crop (each if set), normalise.

    With ``gt_resolution == "input"`` depth and valid follow the image (rside: 228x304); with ``"frame"`` only
    the image is scaled and cropped and the ground truth keeps the source frame's size (eigen: the image at
    240x320, the training scale, and the ground truth at 480x640).
    """
    image_only = getattr(protocol, "gt_resolution", "input") == "frame"
    steps: list[Callable[[Sample], Sample]] = []
    if protocol.resize_rows is not None:
        steps.append(partial(scale_shorter_side, size=protocol.resize_rows, image_only=image_only))
    if protocol.crop_hw is not None:
        steps.append(partial(center_crop, size=tuple(protocol.crop_hw), image_only=image_only))
    steps += [to_float_image, normalize]
    return Compose(*steps)


# --- geometric steps (image, depth and valid together) ------------------------------------------------------


def scale_shorter_side(sample: Sample, size: int = RSIDE_SCALE_ROWS, image_only: bool = False) -> Sample:
    """Resize so the shorter side is ``size`` (aspect kept, PIL's rounding): image bilinear with PIL-style
    antialiasing, depth and valid nearest (RSIDE ``Scale``); ``image_only`` leaves depth and valid as they are."""
    h, w = sample["image"].shape[-2:]
    if h <= w:
        out = (size, int(size * w / h))
    else:
        out = (int(size * h / w), size)
    if out == (h, w):
        return sample
    image = TF.resize(sample["image"], list(out), interpolation=InterpolationMode.BILINEAR, antialias=True)
    if image_only:
        return _with(sample, image=image)
    return _with(sample, image=image, **_resize_depth_nearest(sample, out))


def random_horizontal_flip(sample: Sample, p: float = 0.5) -> Sample:
    """Mirror image, depth and valid left-right with probability ``p``."""
    if torch.rand(()) >= p:
        return sample
    return _with(sample, image=sample["image"].flip(-1), depth=sample["depth"].flip(-1), valid=sample["valid"].flip(-1))


def random_rotate(sample: Sample, max_degrees: float = RSIDE_ROTATE_DEG) -> Sample:
    """Rotate about the centre by an angle ~ U(-max, max) degrees, same size, zero fill (RSIDE RandomRotate).

    Image and depth bilinear; a depth pixel stays valid only where every pixel it blends was valid, so the
    zero-filled corners and the rims of holes are masked.
    """
    angle = float((torch.rand(()) * 2.0 - 1.0) * max_degrees)
    return rotate(sample, angle)


def rotate(sample: Sample, angle: float) -> Sample:
    """Deterministic core of ``random_rotate``: rotate by ``angle`` degrees (counter-clockwise)."""
    if angle == 0.0:
        return sample
    bilinear = InterpolationMode.BILINEAR
    image = TF.rotate(sample["image"], angle, interpolation=bilinear, fill=0)
    depth = TF.rotate(sample["depth"], angle, interpolation=bilinear, fill=0.0)
    weight = TF.rotate(sample["valid"].float(), angle, interpolation=bilinear, fill=0.0)
    valid = (weight > 1.0 - 1e-4) & (depth > 0)
    return _with(sample, image=image, depth=torch.where(valid, depth, 0.0), valid=valid)


def center_crop(sample: Sample, size: tuple[int, int] = RSIDE_CROP_HW, image_only: bool = False) -> Sample:
    """Crop image, depth and valid to ``size`` (h, w) at offset round((H-h)/2), round((W-w)/2), halves up;
    ``image_only`` crops the image alone."""
    h, w = sample["image"].shape[-2:]
    th, tw = size
    if th > h or tw > w:
        raise ValueError(f"frame {sample.get('frame')}: cannot crop {th}x{tw} from a {h}x{w} image")
    top, left = math.floor((h - th) / 2 + 0.5), math.floor((w - tw) / 2 + 0.5)  # Python 2's round()
    window = (..., slice(top, top + th), slice(left, left + tw))
    if image_only:
        return _with(sample, image=sample["image"][window])
    return _with(sample, image=sample["image"][window], depth=sample["depth"][window], valid=sample["valid"][window])


def resize_depth(sample: Sample, size: tuple[int, int] = RSIDE_DEPTH_HW) -> Sample:
    """Resize depth and valid to ``size`` (h, w), nearest with PIL's pixel-centre rule; image untouched."""
    if tuple(sample["depth"].shape[-2:]) == tuple(size):
        return sample
    return _with(sample, **_resize_depth_nearest(sample, size))


# --- photometric steps (image only) -------------------------------------------------------------------------


def to_float_image(sample: Sample) -> Sample:
    """uint8 image -> float32 in [0, 1] (ToTensor)."""
    image = sample["image"]
    if image.dtype == torch.uint8:
        image = image.float().div_(255.0)
    return _with(sample, image=image)


def lighting(sample: Sample, alphastd: float = LIGHTING_STD, alpha: torch.Tensor | None = None) -> Sample:
    """AlexNet PCA lighting noise: add ``eigvec @ (alpha * eigval)`` per channel, alpha ~ N(0, alphastd)."""
    if alpha is None:
        alpha = torch.randn(3) * alphastd
    offset = torch.tensor(PCA_EIGVEC) @ (alpha * torch.tensor(PCA_EIGVAL))
    return _with(sample, image=sample["image"] + offset.view(3, 1, 1))


def color_jitter(
    sample: Sample, brightness: float = JITTER, contrast: float = JITTER, saturation: float = JITTER
) -> Sample:
    """RSIDE's ColorJitter: brightness, contrast, saturation in random order, each ``img.lerp(target, a)``
    with a ~ U(-var, var); targets: black, the grey image's mean, the grey image. No clamping, as upstream."""
    image = sample["image"]
    ops = [
        (name, var)
        for name, var in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation))
        if var != 0
    ]
    for k in torch.randperm(len(ops)).tolist():
        name, var = ops[k]
        alpha = float((torch.rand(()) * 2.0 - 1.0) * var)
        image = image.lerp(_jitter_target(image, name), alpha)
    return _with(sample, image=image)


def normalize(sample: Sample, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> Sample:
    """(image - mean) / std per channel (ImageNet statistics)."""
    mean_t = torch.tensor(mean, dtype=sample["image"].dtype).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=sample["image"].dtype).view(3, 1, 1)
    return _with(sample, image=(sample["image"] - mean_t) / std_t)


# --- helpers -----------------------------------------------------------------------------------------------


def _jitter_target(image: torch.Tensor, name: str) -> torch.Tensor:
    if name == "brightness":
        return torch.zeros_like(image)
    w = _GREY_WEIGHTS
    grey = (image[0] * w[0] + image[1] * w[1] + image[2] * w[2]).expand_as(image)
    return grey.mean().expand_as(image) if name == "contrast" else grey


def _resize_depth_nearest(sample: Sample, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    depth = F.interpolate(sample["depth"][None], size=tuple(size), mode="nearest-exact")[0]
    valid = F.interpolate(sample["valid"][None].to(torch.uint8), size=tuple(size), mode="nearest-exact")
    valid = valid[0].bool()
    return {"depth": depth, "valid": valid}


def _with(sample: Sample, **changes: object) -> Sample:
    out = dict(sample)
    out.update(changes)
    return out


def _describe(step: Callable) -> str:
    if isinstance(step, partial):
        args = ", ".join(f"{k}={v!r}" for k, v in step.keywords.items())
        return f"{step.func.__name__}({args})"
    return getattr(step, "__name__", repr(step))
