"""RSIDE's training augmentation split at the device: drawn per item in the loader's workers, applied to the
whole batch where the batch goes to the device (the GPU in a real run; the main process on a CPU).

``rside_train_transform`` (``transforms``) stays the reference, and the path for any training set whose
transform is something else. For a training set whose transform is RSIDE's, training reads items through
``defer_augmentation(dataset)``:

- **In a worker** (``FrameDraws``, per item): the frame is read and decoded as before, scaled by Scale(240)
  (the one step without a random number, done by ``transforms.geometry``'s own uint8 resize: it quarters what
  crosses to the main process and keeps the integer resize on the CPU), and the item's random numbers are drawn
  exactly as the fused steps draw them (``transforms.draw_geometry``, then ``draw_photometric``): flip, angle,
  lighting alpha, jitter order, jitter factors. The depth stays as stored: the PNG's integers with their scale to
  metres (``rside-csv``), or metres where a source gives nothing else, picked by Scale's nearest rule.
- **``collate_frames``** stacks the items (image channels last, as the resize leaves it).
- **``augment_batch``**, in the training step, does for the whole batch on its device what
  ``transforms.geometry`` and ``transforms.photometric`` do per sample: mirror, the rotation's grid restricted
  to the 228x304 crop, one ``grid_sample`` for the images (with the in-frame weight) and one for depth and
  validity at the depth target's pixels, uint8 rounding, the validity rule, the angle-0 shortcut, and the colour
  steps as one 3x3 map plus offset per sample (composed in float64 on the device, no host round trip).

The sample the network sees is the reference's (tests/architectures/data/test_augment.py, fixed inputs and
seeds, device = cpu): the image after geometry (uint8 values), the depth target (metres) and the valid mask are
bit-identical to ``rside_train_transform``'s; the normalised image is within 1e-5 (float32 rounding of the
colour map; it differs from the reference's by composing with exact float64 channel means and torch's float64
3x3 algebra). On a GPU the same code runs; CUDA's ``grid_sample`` may round a source coordinate differently
(fused multiply-add), so there an image value can differ by one 8-bit level where the reference's lands on a
rounding tie, and a depth value by float32 rounding; this is not yet measured on a GPU.

A batch whose frames differ in size (a source with frames of several sizes) cannot be stacked: ``collate_frames``
then augments each item in the worker with the reference's deterministic cores and the drawn numbers (the same
samples, at the old cost). Evaluation is not augmented and does not come here.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, default_collate, get_worker_info
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from .common import Sample
from .transforms import (
    _GREY_WEIGHTS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PCA_EIGVAL,
    PCA_EIGVEC,
    TrainTransform,
    _centred,
    _crop_offsets,
    _nearest_index,
    _nearest_pick,
    _rotation_coefficients,
    _scaled_hw,
    _take,
    draw_geometry,
    draw_photometric,
    geometry,
    photometric,
)

__all__ = [
    "AUGMENT_FIELDS",
    "FrameDraws",
    "apply_frame",
    "augment_batch",
    "collate_frames",
    "defer_augmentation",
    "is_frame_batch",
]

# One row per item, float64 (every value exact: booleans, float32 draws, small integers, the depth scale).
AUGMENT_FIELDS = (
    "flip",  # 1.0: mirror left-right
    "angle",  # degrees, counter-clockwise
    "alpha_0",  # lighting's alpha (float32 values)
    "alpha_1",
    "alpha_2",
    "jitter_0",  # the jitters in drawn order: _JITTER_CODES, -1 for none
    "factor_0",
    "jitter_1",
    "factor_1",
    "jitter_2",
    "factor_2",
    "depth_scale",  # metres per stored depth unit (1.0: stored in metres)
    "crop_h",
    "crop_w",
    "depth_h",
    "depth_w",
)
_JITTER_CODES = {"brightness": 0, "contrast": 1, "saturation": 2}
_JITTER_NAMES = {code: name for name, code in _JITTER_CODES.items()}
_VALID_WEIGHT = 1.0 - 1e-4  # transforms.rotate's rule: every pixel blended was valid and in frame


class FrameDraws:
    """The worker half of a ``TrainTransform``: the frame scaled by Scale(size), its depth as stored, and the
    item's random numbers drawn as the transform draws them (``AUGMENT_FIELDS``), for ``augment_batch``.

    Takes a sample (see ``common``) or, from a source that can give it (``stored_depth``), a sample whose
    depth is ``depth_stored`` (1,H,W) integers with ``depth_scale`` metres per unit and no ``valid`` (valid is
    stored > 0, as in the source's samples). Returns an item with ``scaled_image`` uint8 (3,hs,ws),
    ``scaled_depth`` (hs,ws) as stored, ``augment`` float64 (len(AUGMENT_FIELDS),) and ``frame``.
    """

    stored_depth = True  # rside_csv.RSIDECSV gives its PNG integers instead of metres

    def __init__(self, settings: Mapping[str, Any]):
        self.settings = dict(settings)

    def __call__(self, sample: Sample) -> dict[str, Any]:
        s = self.settings
        flip, angle = draw_geometry(s["max_degrees"])
        alpha, jitter = draw_photometric(s["alphastd"], s["brightness"], s["contrast"], s["saturation"])
        image = sample["image"]
        if "depth_stored" in sample:
            stored, scale = sample["depth_stored"], float(sample["depth_scale"])
        else:  # metres, 0 where invalid (common's contract), so valid is depth > 0 as for stored integers
            stored, scale = sample["depth"], 1.0
        h, w = image.shape[-2:]
        if tuple(stored.shape[-2:]) != (h, w):
            raise ValueError(
                f"frame {sample.get('frame')}: depth {tuple(stored.shape[-2:])} differs from image {(h, w)}"
            )
        hs, ws = _scaled_hw(h, w, s["size"])
        (th, tw), (dh, dw) = s["crop"], s["depth_size"]
        if th > hs or tw > ws:
            raise ValueError(f"frame {sample.get('frame')}: cannot crop {th}x{tw} from a {hs}x{ws} image")
        if (hs, ws) != (h, w):
            image = TF.resize(image, [hs, ws], interpolation=InterpolationMode.BILINEAR, antialias=True)
        depth = _take(stored.reshape(h, w), _nearest_pick(h, hs), _nearest_pick(w, ws))
        slots = [(float(_JITTER_CODES[name]), factor) for name, factor in jitter]
        slots += [(-1.0, 0.0)] * (3 - len(slots))
        row = [float(flip), angle, *alpha.tolist(), *(v for slot in slots for v in slot), scale, th, tw, dh, dw]
        return {
            "scaled_image": image,
            "scaled_depth": depth,
            "augment": torch.tensor(row, dtype=torch.float64),
            "frame": sample["frame"],
        }

    def describe(self) -> list[str]:
        return [f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.settings.items())})"]


def defer_augmentation(dataset: Dataset) -> Dataset:
    """``dataset`` reading its items through ``FrameDraws`` (a shallow copy with the transform replaced) when
    its ``transform`` is a ``TrainTransform``; a subset of such a dataset (a wrapper holding it as ``.dataset``,
    as torch's ``Subset`` and the runner's first-N-frames subset do) with the same done inside it; otherwise
    ``dataset`` itself (its items are final samples)."""
    transform = getattr(dataset, "transform", None)
    if isinstance(transform, TrainTransform):
        deferred = copy.copy(dataset)
        deferred.transform = FrameDraws(transform.settings)
        return deferred
    inner = getattr(dataset, "dataset", None)
    if transform is None and isinstance(inner, Dataset):
        deferred_inner = defer_augmentation(inner)
        if deferred_inner is not inner:
            wrapper = copy.copy(dataset)
            wrapper.dataset = deferred_inner
            return wrapper
    return dataset


def is_frame_batch(batch: Any) -> bool:
    """Whether ``batch`` came from ``FrameDraws`` items (``augment_batch`` still has to augment it)."""
    return isinstance(batch, Mapping) and "augment" in batch


def collate_frames(items: Sequence[Any]) -> Any:
    """The training loader's collate: ``FrameDraws`` items stacked (in a worker, straight into shared memory);
    anything else by ``default_collate``. Frames of different sizes cannot be stacked: each is then augmented
    here by ``apply_frame`` (the same sample) and the batch is an ordinary one."""
    first = items[0]
    if not is_frame_batch(first):
        return default_collate(items)
    shapes = {
        (tuple(it["scaled_image"].shape), tuple(it["scaled_depth"].shape), it["scaled_depth"].dtype) for it in items
    }
    if len(shapes) > 1:
        warnings.warn(  # one text, so that a process shows it once
            "frames of different sizes in one batch: augmented one by one in the loader worker (the same "
            "samples, at the per-sample cost)",
            RuntimeWarning,
            stacklevel=2,
        )
        return default_collate([apply_frame(it) for it in items])
    _, hs, ws = first["scaled_image"].shape
    image = _batch_tensor((len(items), hs, ws, 3), torch.uint8)
    depth = _batch_tensor((len(items), hs, ws), first["scaled_depth"].dtype)
    for k, it in enumerate(items):
        image[k].copy_(it["scaled_image"].permute(1, 2, 0))  # a plain copy: the resize leaves channels last
        depth[k].copy_(it["scaled_depth"])
    return {
        "scaled_image": image,
        "scaled_depth": depth,
        "augment": torch.stack([it["augment"] for it in items]),
        "frame": torch.tensor([int(it["frame"]) for it in items]),
    }


def apply_frame(item: Mapping[str, Any]) -> Sample:
    """One ``FrameDraws`` item augmented by the reference's deterministic cores (``transforms.geometry`` and
    ``transforms.photometric``) with its drawn numbers: the sample ``rside_train_transform`` gives."""
    f = _fields(item["augment"].tolist())
    stored, image = item["scaled_depth"], item["scaled_image"]
    sample = {
        "image": image,
        "depth": _metres(stored, torch.tensor(f["depth_scale"], dtype=torch.float64)).unsqueeze(0),
        "valid": (stored > 0).unsqueeze(0),
        "frame": int(item["frame"]),
    }
    size = min(image.shape[-2:])  # Scale(size) leaves a scaled frame as it is
    sample = geometry(sample, f["flip"] != 0, f["angle"], size, f["crop"], f["depth_size"])
    alpha = torch.tensor(f["alpha"], dtype=torch.float32)
    return photometric(sample, alpha, [(_JITTER_NAMES[int(c)], a) for c, a in f["jitter"] if c >= 0])


def augment_batch(batch: Mapping[str, Any], device: str | torch.device = "cpu", non_blocking: bool = False) -> Sample:
    """The training batch on ``device``: a ``collate_frames`` batch of frames augmented there (see the module
    docstring), an ordinary batch (already augmented) only moved. Returns ``image`` float32 (B,3,h,w)
    normalised, ``depth`` float32 (B,1,dh,dw) metres, ``valid`` bool (B,1,dh,dw), ``frame``."""
    device = torch.device(device)
    if not is_frame_batch(batch):
        out = dict(batch)
        for key in ("image", "depth", "valid"):
            out[key] = batch[key].to(device, non_blocking=non_blocking)
        return out
    rows = [_fields(row) for row in batch["augment"].tolist()]  # on the host: the draws are small
    image = batch["scaled_image"].to(device, non_blocking=non_blocking).permute(0, 3, 1, 2)
    stored = batch["scaled_depth"].to(device, non_blocking=non_blocking)
    # a CPU takes the items one at a time: the same arithmetic, in its caches (a batch of 8 frames' planes is
    # ~10 MB, and grid_sample over it took 1.5-2x longer per image); any other device the whole batch at once
    step = 1 if device.type == "cpu" else len(rows)
    parts = [
        _geometry(image[k : k + step], stored[k : k + step], rows[k : k + step]) for k in range(0, len(rows), step)
    ]
    rounded, depth, valid = (torch.cat(p) if len(parts) > 1 else p[0] for p in zip(*parts, strict=True))
    return {"image": _colour(rounded, rows), "depth": depth, "valid": valid, "frame": batch["frame"]}


# --- the batched steps --------------------------------------------------------------------------------------


def _geometry(image: torch.Tensor, stored: torch.Tensor, rows: list[dict[str, Any]]):
    """``transforms.geometry`` after Scale for a batch: ``image`` uint8 (B,3,hs,ws), ``stored`` depth (B,hs,ws).
    Returns the image after geometry as float32 (rounded to integers, as the reference's uint8 image), the
    depth target in metres (B,1,dh,dw) and valid."""
    n, device = len(rows), image.device
    (th, tw), (dh, dw) = rows[0]["crop"], rows[0]["depth_size"]
    if any(r["crop"] != (th, tw) or r["depth_size"] != (dh, dw) for r in rows):
        raise ValueError("one batch of frames holds items drawn for different crops or depth sizes")
    hs, ws = image.shape[-2:]
    top, left = _crop_offsets(hs, ws, th, tw)
    flips = [r["flip"] != 0 for r in rows]
    image, stored = _mirror(image, flips), _mirror(stored, flips)
    scale = _host_to(device, torch.tensor([r["depth_scale"] for r in rows], dtype=torch.float64))
    metres = _metres(stored, scale.view(n, 1, 1))
    # the images, with the in-frame weight plane (torchvision's fill mask), at every pixel of the crop
    planes = torch.empty(n, 4, hs, ws, device=device)
    planes[:, :3].copy_(image)
    planes[:, 3].fill_(1.0)
    coef = torch.tensor([_rotation_coefficients(hs, ws, r["angle"]) for r in rows], dtype=torch.float32)
    coef = _host_to(device, coef)  # (n, 2, 2): x's and y's coefficients, as transforms._rotation_grid
    x, y = _on_device(_centred, device, left, tw, ws), _on_device(_centred, device, top, th, hs)
    x_terms = x.view(1, tw, 1) * coef[:, 0].view(n, 1, 2)  # (n, tw, 2)
    y_terms = y.view(1, th, 1) * coef[:, 1].view(n, 1, 2)  # (n, th, 2)
    grid = x_terms[:, None, :, :] + y_terms[:, :, None, :]  # (n, th, tw, 2)
    out = F.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    weight = out[:, 3:]
    rounded = out[:, :3].mul_(weight).round_()
    # depth and valid at the pixels of the crop that the depth target keeps (part of the same grid)
    keep_rows, keep_cols = _on_device(_nearest_pick, device, th, dh), _on_device(_nearest_pick, device, tw, dw)
    planes = torch.empty(n, 2, hs, ws, device=device)
    planes[:, 0].copy_(metres)
    planes[:, 1].copy_(stored > 0)
    grid = _pick(grid, keep_rows, keep_cols, dims=(1, 2))
    out = F.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    depth, in_frame = out.mul_(_pick(weight, keep_rows, keep_cols, dims=(2, 3))).split(1, dim=1)
    valid = (in_frame > _VALID_WEIGHT) & (depth > 0)
    depth = torch.where(valid, depth, 0.0)
    still = [k for k, r in enumerate(rows) if r["angle"] == 0.0]  # rotate() leaves these frames untouched
    if still:  # U(-5, 5) gives exactly 0 with probability 2^-24
        k = _host_to(device, torch.tensor(still))
        rows_ = top + _on_device(_nearest_index, device, th, dh)
        cols_ = left + _on_device(_nearest_index, device, tw, dw)
        rounded[k] = image[k, :, top : top + th, left : left + tw].to(torch.float32)
        picked = stored[k].index_select(1, rows_).index_select(2, cols_)
        depth[k] = metres[k].index_select(1, rows_).index_select(2, cols_).unsqueeze(1)
        valid[k] = (picked > 0).unsqueeze(1)
    return rounded, depth, valid


def _colour(image: torch.Tensor, rows: list[dict[str, Any]]) -> torch.Tensor:
    """``transforms.photometric`` for a batch: ToTensor, lighting, the jitters in each item's drawn order and
    Normalize as one affine map per item, composed in float64 on the device and applied with one baddbmm.
    ``image`` (B,3,h,w) holds the integers of the uint8 image after geometry."""
    n, device, f64 = image.shape[0], image.device, torch.float64
    eye, grey, eigval, eigvec, mean, std = _on_device(_colour_constants, device)
    draws = torch.tensor([[*r["alpha"], *(v for slot in r["jitter"] for v in slot)] for r in rows], dtype=f64)
    draws = _host_to(device, draws)
    alpha, codes, factors = draws[:, :3], draws[:, 3::2], draws[:, 4::2]
    # exact channel means (the reference's float32 mean can differ by float32 rounding): a row's sum of
    # integers below 256 is exact in float32 (below 2^24 for rows narrower than 65793 px), their sum in float64
    means = image.sum(dim=-1).to(f64).sum(dim=-1) / (image.shape[-2] * image.shape[-1])
    matrix = (eye / 255.0).expand(n, 3, 3)  # ToTensor
    offset = (alpha * eigval) @ eigvec.T  # lighting: eigvec @ (alpha * eigval)
    for slot in range(3):
        code, a = codes[:, slot].view(n, 1), factors[:, slot].view(n, 1)
        blend = (1.0 - a.view(n, 1, 1)) * eye + a.view(n, 1, 1) * grey.view(1, 1, 3)  # saturation: towards grey
        sat_matrix, sat_offset = blend @ matrix, (blend @ offset.unsqueeze(-1)).squeeze(-1)
        # brightness and contrast: towards black, or towards the grey image's mean (the grey weights times the
        # channel means carried through the map so far)
        is_contrast = code == _JITTER_CODES["contrast"]
        grey_mean = (((matrix @ means.unsqueeze(-1)).squeeze(-1) + offset) @ grey).view(n, 1)
        target = torch.where(is_contrast, grey_mean, 0.0)
        lerp_matrix, lerp_offset = (1.0 - a.view(n, 1, 1)) * matrix, (1.0 - a) * offset + a * target
        is_sat = code == _JITTER_CODES["saturation"]
        is_lerp = is_contrast | (code == _JITTER_CODES["brightness"])
        matrix = torch.where(is_sat.view(n, 1, 1), sat_matrix, torch.where(is_lerp.view(n, 1, 1), lerp_matrix, matrix))
        offset = torch.where(is_sat, sat_offset, torch.where(is_lerp, lerp_offset, offset))
    matrix = (matrix / std.view(1, 3, 1)).to(torch.float32)
    offset = ((offset - mean) / std).to(torch.float32)
    flat = torch.baddbmm(offset.unsqueeze(-1), matrix, image.reshape(n, 3, -1))
    return flat.view(image.shape)


# --- helpers ------------------------------------------------------------------------------------------------


def _fields(row: list[float]) -> dict[str, Any]:
    """One ``augment`` row by meaning."""
    return {
        "flip": row[0],
        "angle": row[1],
        "alpha": row[2:5],
        "jitter": [(row[5 + 2 * k], row[6 + 2 * k]) for k in range(3)],
        "depth_scale": row[11],
        "crop": (int(row[12]), int(row[13])),
        "depth_size": (int(row[14]), int(row[15])),
    }


def _metres(stored: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """stored * scale in float64, stored as float32: rside_csv's metres (and metres unchanged, scale 1)."""
    return (stored.to(torch.float64) * scale).to(torch.float32)


def _mirror(t: torch.Tensor, flips: list[bool]) -> torch.Tensor:
    """Item k of ``t`` mirrored left-right where ``flips[k]``."""
    if all(flips):
        return t.flip(-1)
    if not any(flips):
        return t
    where = _host_to(t.device, torch.tensor(flips)).view(-1, *(1,) * (t.dim() - 1))
    return torch.where(where, t.flip(-1), t)


def _colour_constants() -> tuple[torch.Tensor, ...]:
    """eye, grey weights, PCA eigenvalues and eigenvectors, ImageNet mean and std, float64."""
    values = (torch.eye(3).tolist(), _GREY_WEIGHTS, PCA_EIGVAL, PCA_EIGVEC, IMAGENET_MEAN, IMAGENET_STD)
    return tuple(torch.tensor(v, dtype=torch.float64) for v in values)


@lru_cache(maxsize=256)
def _on_device(fn: Callable, device: torch.device, *args: Any) -> Any:
    """``fn(*args)`` (tensors, or a tuple of them; slices stay) on ``device``, made once per device: a small
    copy from pageable host memory waits for the device's queue, each batch would wait for the last step."""
    value = fn(*args)
    if isinstance(value, tuple):
        return tuple(_host_to(device, v) for v in value)
    return value if isinstance(value, slice) else _host_to(device, value)


def _host_to(device: torch.device, t: torch.Tensor) -> torch.Tensor:
    """A small host tensor on ``device``; to CUDA through pinned memory without waiting (torch caches the
    pinned blocks), so that augmenting a batch never waits for the previous step's kernels."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def _pick(t: torch.Tensor, rows: slice | torch.Tensor, cols: slice | torch.Tensor, dims: tuple[int, int]):
    """``t`` at ``rows`` along ``dims[0]`` and ``cols`` along ``dims[1]`` (slices or index tensors)."""
    for dim, index in zip(dims, (rows, cols), strict=True):
        if isinstance(index, slice):
            t = t[(slice(None),) * dim + (index,)]
        else:
            t = t.index_select(dim, index)
    return t


def _batch_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An empty batch tensor; in a loader worker in shared memory, as ``default_collate`` allocates it (the
    main process receives it without a copy)."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    storage = torch.empty(0, dtype=dtype)._typed_storage()._new_shared(math.prod(shape))
    return torch.empty(0, dtype=dtype).new(storage).view(shape)
