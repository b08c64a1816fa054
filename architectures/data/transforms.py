"""RSIDE's training augmentation and the protocols' evaluation preprocessing, as small composable steps.

Each step maps a sample dict (``image``, ``depth``, ``valid``, ``frame``; see ``common``) to a new one. Train
order, as in RSIDE ``loaddata.py`` / ``nyu_transform.py``: Scale(240) -> RandomHorizontalFlip ->
RandomRotate(5) -> CenterCrop(228x304, depth resized to the model's output size) -> ToTensor ->
Lighting(0.1) -> ColorJitter(0.4, 0.4, 0.4) -> Normalize(ImageNet).

``rside_train_steps`` is that chain one step per function, the specification. ``rside_train_transform`` (the
training sample) gives the same sample in two fused steps, in under half the chain's CPU time; training applies
it split in two, the draws in the loader's workers and the rest per batch on the device (``augment``, with the
same samples; docs/loader-speed.md).
``random_geometry`` draws flip and angle as the chain does; it resamples the scaled image once, at the pixels
of the 228x304 crop only (torchvision's rotation grid restricted to them), and the depth only at the pixels the
depth target keeps, read straight from the frame through the nearest resizes. ``random_photometric`` draws
lighting and jitter as the chain does and applies them, with ToTensor and Normalize, as one 3x3 colour matrix
plus offset. Geometry (uint8 image, depth, masks) is bit-identical to the chain's; the colour map differs from
the chain's five float32 passes by float32 rounding only (tests: within 1e-5 in normalised units, 0.0006 of an
8-bit level).

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
from functools import lru_cache, partial
from typing import TYPE_CHECKING

import numpy as np
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
    "TrainTransform",
    "center_crop",
    "color_jitter",
    "draw_geometry",
    "draw_photometric",
    "eval_transform",
    "geometry",
    "lighting",
    "normalize",
    "photometric",
    "random_geometry",
    "random_horizontal_flip",
    "random_photometric",
    "random_rotate",
    "resize_depth",
    "rside_train_steps",
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


class TrainTransform(Compose):
    """``rside_train_transform``'s Compose (the two fused steps), keeping the settings it was built with so
    that ``architectures.data.augment`` can split the same augmentation between the loader's workers (the
    random draws) and the training step (the resampling and colour maps, for a whole batch on its device)."""

    def __init__(
        self,
        depth_size: tuple[int, int] = RSIDE_DEPTH_HW,
        size: int = RSIDE_SCALE_ROWS,
        max_degrees: float = RSIDE_ROTATE_DEG,
        crop: tuple[int, int] = RSIDE_CROP_HW,
        alphastd: float = LIGHTING_STD,
        brightness: float = JITTER,
        contrast: float = JITTER,
        saturation: float = JITTER,
    ):
        self.settings = {
            "size": size,
            "max_degrees": max_degrees,
            "crop": tuple(crop),
            "depth_size": tuple(depth_size),
            "alphastd": alphastd,
            "brightness": brightness,
            "contrast": contrast,
            "saturation": saturation,
        }
        super().__init__(
            partial(
                random_geometry, size=size, max_degrees=max_degrees, crop=tuple(crop), depth_size=tuple(depth_size)
            ),
            partial(
                random_photometric, alphastd=alphastd, brightness=brightness, contrast=contrast, saturation=saturation
            ),
        )


def rside_train_transform(depth_size: tuple[int, int] = RSIDE_DEPTH_HW) -> TrainTransform:
    """RSIDE's random training transform: image (3,228,304) normalised, depth/valid at ``depth_size``.

    The sample of ``rside_train_steps`` (same random draws, same seeding) in two fused steps; see the module
    docstring for what may differ (floating-point rounding only). Training itself applies it split in two
    (``architectures.data.augment``): the draws in the loader's workers, the rest batched on the device."""
    return TrainTransform(depth_size)


def rside_train_steps(depth_size: tuple[int, int] = RSIDE_DEPTH_HW) -> Compose:
    """RSIDE's training transform one step per function (three bilinear resampling passes over the whole
    scaled frame): the readable specification ``rside_train_transform`` is tested against."""
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
    out = _scaled_hw(h, w, size)
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
    top, left = _crop_offsets(h, w, th, tw)
    window = (..., slice(top, top + th), slice(left, left + tw))
    if image_only:
        return _with(sample, image=sample["image"][window])
    return _with(sample, image=sample["image"][window], depth=sample["depth"][window], valid=sample["valid"][window])


def resize_depth(sample: Sample, size: tuple[int, int] = RSIDE_DEPTH_HW) -> Sample:
    """Resize depth and valid to ``size`` (h, w), nearest with PIL's pixel-centre rule; image untouched."""
    if tuple(sample["depth"].shape[-2:]) == tuple(size):
        return sample
    return _with(sample, **_resize_depth_nearest(sample, size))


def random_geometry(
    sample: Sample,
    size: int = RSIDE_SCALE_ROWS,
    max_degrees: float = RSIDE_ROTATE_DEG,
    crop: tuple[int, int] = RSIDE_CROP_HW,
    depth_size: tuple[int, int] = RSIDE_DEPTH_HW,
    p: float = 0.5,
) -> Sample:
    """Scale, random flip, random rotation, centre crop and depth resize in one resampling pass each for image
    and depth: ``scale_shorter_side`` -> ``random_horizontal_flip`` -> ``random_rotate`` -> ``center_crop``
    -> ``resize_depth`` with the same draws (flip first, then the angle) and the same result up to
    floating-point rounding."""
    flip, angle = draw_geometry(max_degrees, p)
    return geometry(sample, flip, angle, size, crop, depth_size)


def draw_geometry(max_degrees: float = RSIDE_ROTATE_DEG, p: float = 0.5) -> tuple[bool, float]:
    """``random_geometry``'s draws: (flip, angle in degrees), the numbers ``random_horizontal_flip`` and
    ``random_rotate`` draw, in their order, from torch's generator (one ``torch.rand(2)``)."""
    flip_u, angle_u = torch.rand(2).tolist()  # the two torch.rand(()) of random_horizontal_flip, random_rotate
    return flip_u < _f32(p), _symmetric(angle_u, max_degrees)  # mirror unless rand >= p


def geometry(
    sample: Sample,
    flip: bool,
    angle: float,
    size: int = RSIDE_SCALE_ROWS,
    crop: tuple[int, int] = RSIDE_CROP_HW,
    depth_size: tuple[int, int] = RSIDE_DEPTH_HW,
) -> Sample:
    """Deterministic core of ``random_geometry``: Scale(``size``), mirror if ``flip``, rotate by ``angle``
    degrees, crop ``crop`` (h, w) at the centre, depth and valid to ``depth_size`` (h, w) by nearest.

    The rotation's inverse map gives the source point of every pixel the crop keeps (torchvision's grid,
    computed for those pixels only); image, depth and valid are sampled there with ``rotate``'s bilinear
    weights and zero fill (torchvision's: values times the in-frame weight) and the image is rounded to uint8
    as ``rotate`` does. Depth is sampled only at the pixels ``resize_depth`` keeps, from the pixels
    ``scale_shorter_side`` keeps.
    """
    image, depth, valid = sample["image"], sample["depth"], sample["valid"]
    h, w = image.shape[-2:]
    if tuple(depth.shape[-2:]) != (h, w):
        raise ValueError(f"frame {sample.get('frame')}: depth {tuple(depth.shape[-2:])} differs from image {(h, w)}")
    hs, ws = _scaled_hw(h, w, size)
    th, tw = crop
    if th > hs or tw > ws:
        raise ValueError(f"frame {sample.get('frame')}: cannot crop {th}x{tw} from a {hs}x{ws} image")
    top, left = _crop_offsets(hs, ws, th, tw)
    if (hs, ws) != (h, w):
        image = TF.resize(image, [hs, ws], interpolation=InterpolationMode.BILINEAR, antialias=True)
    if flip:
        image = image.flip(-1)
    if angle == 0.0:  # rotate() leaves the frame untouched: no resampling, no rounding
        return _crop_unrotated(sample, image, flip, (h, w), (hs, ws), (top, left), crop, depth_size)
    planes = torch.empty(1, 4, hs, ws)  # RGB + the in-frame weight (torchvision's fill mask)
    planes[0, :3].copy_(image)
    planes[0, 3].fill_(1.0)
    grid = _rotation_grid(top, th, left, tw, hs, ws, angle)
    out_image = F.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    image = out_image[:3].mul_(out_image[3:]).round_().to(torch.uint8)
    # depth: the scaled frame's pixels (nearest), sampled at the crop pixels resize_depth keeps (part of the grid)
    pick = (_nearest_pick(h, hs), _nearest_pick(w, ws))
    planes = torch.empty(1, 2, hs, ws)
    planes[0, 0].copy_(_take(depth[0], *pick))
    planes[0, 1].copy_(_take(valid[0], *pick))
    if flip:
        planes = planes.flip(-1)
    keep = (_nearest_pick(th, depth_size[0]), _nearest_pick(tw, depth_size[1]))
    grid = _take(grid[0], *keep).unsqueeze(0)
    out = F.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    depth, weight = out.mul_(_take(out_image[3], *keep)).split(1)  # times the in-frame weight, as rotate does
    valid = (weight > 1.0 - 1e-4) & (depth > 0)  # rotate's rule: every pixel blended was valid and in frame
    return _with(sample, image=image, depth=torch.where(valid, depth, 0.0), valid=valid)


def _crop_unrotated(
    sample: Sample,
    scaled: torch.Tensor,
    flip: bool,
    hw: tuple[int, int],
    scaled_hw: tuple[int, int],
    top_left: tuple[int, int],
    crop: tuple[int, int],
    depth_size: tuple[int, int],
) -> Sample:
    """``geometry`` at angle 0: the crop of the scaled (and mirrored) image, and depth and valid picked by the
    two nearest resizes composed (row and column indices into the source frame)."""
    (top, left), (th, tw) = top_left, crop
    rows = _nearest_index(hw[0], scaled_hw[0])[top + _nearest_index(th, depth_size[0])]
    cols = left + _nearest_index(tw, depth_size[1])
    cols = _nearest_index(hw[1], scaled_hw[1])[scaled_hw[1] - 1 - cols if flip else cols]
    depth = sample["depth"].index_select(-2, rows).index_select(-1, cols)
    valid = sample["valid"].index_select(-2, rows).index_select(-1, cols)
    return _with(sample, image=scaled[..., top : top + th, left : left + tw], depth=depth, valid=valid)


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


def random_photometric(
    sample: Sample,
    alphastd: float = LIGHTING_STD,
    brightness: float = JITTER,
    contrast: float = JITTER,
    saturation: float = JITTER,
) -> Sample:
    """``to_float_image`` -> ``lighting`` -> ``color_jitter`` -> ``normalize`` in one pass over the image,
    with the same draws in the same order (alpha, then the jitter order, then one factor per jitter)."""
    alpha, jitter = draw_photometric(alphastd, brightness, contrast, saturation)
    return photometric(sample, alpha, jitter)


def draw_photometric(
    alphastd: float = LIGHTING_STD, brightness: float = JITTER, contrast: float = JITTER, saturation: float = JITTER
) -> tuple[torch.Tensor, list[tuple[str, float]]]:
    """``random_photometric``'s draws: lighting's alpha (3,) float32, then the jitters as (name, factor) in the
    drawn order; the numbers ``lighting`` and ``color_jitter`` draw, in their order, from torch's generator."""
    alpha = torch.randn(3) * alphastd  # lighting's draw
    ops = [(n, v) for n, v in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)) if v]
    order = torch.randperm(len(ops)).tolist()  # color_jitter's draws: the order, then one rand per jitter
    jitter = [(ops[k][0], _symmetric(u, ops[k][1])) for k, u in zip(order, torch.rand(len(ops)).tolist(), strict=True)]
    return alpha, jitter


def photometric(
    sample: Sample,
    alpha: torch.Tensor,
    jitter: Sequence[tuple[str, float]],
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Sample:
    """Deterministic core of ``random_photometric``: lighting with ``alpha``, then each (name, factor) of
    ``jitter`` in order, then normalisation, applied as one affine colour map ``A @ rgb + b``.

    Every step is affine in the colour of a pixel: lighting adds an offset, brightness scales, saturation
    blends with the grey value (a 3x3 matrix); contrast blends with the grey image's mean, which is the grey
    weights times the channel means, themselves carried through the map. The map is composed in float64
    (NumPy: 3x3 algebra, cheaper there than as torch calls).
    """
    image = sample["image"]
    scale = 1.0 / 255.0 if image.dtype == torch.uint8 else 1.0  # ToTensor folded in
    image = image.float()
    grey = np.array(_GREY_WEIGHTS)
    matrix = np.eye(3) * scale
    offset = np.array(PCA_EIGVEC) @ (alpha.double().numpy() * np.array(PCA_EIGVAL))
    channel_means = image.mean(dim=(-2, -1)).double().numpy()
    for name, a in jitter:
        if name == "saturation":
            blend = (1.0 - a) * np.eye(3) + a * grey[None, :]  # every channel towards the grey value
            matrix, offset = blend @ matrix, blend @ offset
        elif name in ("brightness", "contrast"):
            target = grey @ (matrix @ channel_means + offset) if name == "contrast" else 0.0
            matrix, offset = (1.0 - a) * matrix, (1.0 - a) * offset + a * target
        else:
            raise ValueError(f"unknown jitter {name!r}; expected brightness, contrast or saturation")
    std_a = np.array(std)
    matrix, offset = matrix / std_a[:, None], (offset - np.array(mean)) / std_a
    offset_t, matrix_t = torch.from_numpy(offset.astype(np.float32)), torch.from_numpy(matrix.astype(np.float32))
    flat = torch.addmm(offset_t[:, None], matrix_t, image.reshape(3, -1))
    return _with(sample, image=flat.view(image.shape))


# --- helpers -----------------------------------------------------------------------------------------------


def _jitter_target(image: torch.Tensor, name: str) -> torch.Tensor:
    if name == "brightness":
        return torch.zeros_like(image)
    w = _GREY_WEIGHTS
    grey = (image[0] * w[0] + image[1] * w[1] + image[2] * w[2]).expand_as(image)
    return grey.mean().expand_as(image) if name == "contrast" else grey


def _scaled_hw(h: int, w: int, size: int) -> tuple[int, int]:
    """Scale(size)'s output (h, w): shorter side ``size``, the other truncated as PIL's Scale does."""
    return (size, int(size * w / h)) if h <= w else (int(size * h / w), size)


def _crop_offsets(h: int, w: int, th: int, tw: int) -> tuple[int, int]:
    """CenterCrop's (top, left): round((H-h)/2), round((W-w)/2) with halves up (Python 2's round())."""
    return math.floor((h - th) / 2 + 0.5), math.floor((w - tw) / 2 + 0.5)


@lru_cache(maxsize=64)
def _nearest_index(n_in: int, n_out: int) -> torch.Tensor:
    """The source index of each output pixel of a nearest-exact resize along one axis (``F.interpolate``'s own
    rule, taken from it on a ramp so the two never disagree)."""
    ramp = torch.arange(n_in, dtype=torch.float32).view(1, 1, n_in)
    return F.interpolate(ramp, size=n_out, mode="nearest-exact")[0, 0].long()


@lru_cache(maxsize=64)
def _nearest_pick(n_in: int, n_out: int) -> slice | torch.Tensor:
    """``_nearest_index`` as a slice when it is one (a 2x downscale keeps 1, 3, 5, ...), so picking is a view."""
    index = _nearest_index(n_in, n_out)
    step = int(index[1] - index[0]) if n_out > 1 else 1
    if step > 0 and torch.equal(index, torch.arange(int(index[0]), int(index[0]) + step * n_out, step)):
        return slice(int(index[0]), int(index[0]) + step * n_out, step)
    return index


def _take(plane: torch.Tensor, rows: slice | torch.Tensor, cols: slice | torch.Tensor) -> torch.Tensor:
    """plane[rows][:, cols] for slices or index tensors."""
    plane = plane[rows] if isinstance(rows, slice) else plane.index_select(0, rows)
    return plane[:, cols] if isinstance(cols, slice) else plane.index_select(1, cols)


def _rotation_grid(top: int, th: int, left: int, tw: int, h: int, w: int, angle: float) -> torch.Tensor:
    """``grid_sample`` grid (1, th, tw, 2) that reads, for the pixels ``top:top+th`` x ``left:left+tw`` of an
    h x w frame rotated by ``angle`` degrees about its centre, their source points.

    torchvision's ``rotate`` grid restricted to those pixels, with its float32 arithmetic (bit-identical):
    centred pixel coordinates through the inverse rotation [[cos, sin], [-sin, cos]] of -angle, divided by
    half the frame size (align_corners=False)."""
    x_coef, y_coef = _rotation_coefficients(h, w, angle)
    x, y = _centred(left, tw, w), _centred(top, th, h)
    x_terms = x[:, None] * torch.tensor(x_coef)  # (tw, 2)
    y_terms = y[:, None] * torch.tensor(y_coef)  # (th, 2)
    return (x_terms[None, :, :] + y_terms[:, None, :]).unsqueeze(0)


def _rotation_coefficients(h: int, w: int, angle: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """What ``_rotation_grid`` multiplies a centred pixel's x and y by (float32 values): grid = x * x_coef +
    y * y_coef, torchvision's inverse rotation of an h x w frame by ``angle`` degrees, normalised."""
    r = math.radians(-angle)
    cos, sin, half_w, half_h = (_f32(v) for v in (math.cos(r), math.sin(r), 0.5 * w, 0.5 * h))
    return (_f32(cos / half_w), _f32(-sin / half_h)), (_f32(sin / half_w), _f32(cos / half_h))


@lru_cache(maxsize=64)
def _centred(start: int, n: int, size: int) -> torch.Tensor:
    """Pixel coordinates start..start+n-1 of a frame ``size`` pixels wide, centred, float32 (read-only)."""
    return torch.arange(start, start + n, dtype=torch.float32) - (size - 1) * 0.5


def _symmetric(u: float, var: float) -> float:
    """``float((u * 2.0 - 1.0) * var)`` for a float32 tensor u, as the steps compute it (each float32 op done in
    double and rounded once to float32 is that op): u ~ U(0, 1) -> U(-var, var)."""
    return _f32(_f32(_f32(u * 2.0) - 1.0) * _f32(var))


def _f32(value: float) -> float:
    """``value`` rounded to float32 (a float32 op on float32 inputs, done in double, is rounded once more)."""
    return float(np.float32(value))


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
