"""architectures/data/augment.py: RSIDE's training augmentation drawn per item in the loader's workers and
applied per batch on the device must give the samples of the per-sample reference (``rside_train_transform``)
for the same inputs and seeds: geometry bit-identical on a CPU (image after geometry, depth target in metres,
valid), the normalised image within IMAGE_TOL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from architectures.data import augment as A
from architectures.data import get_protocol, make_sample
from architectures.data import transforms as T
from architectures.data.rside_csv import TRAIN_DEPTH_SCALE_M, decoded_sample

# The colour map's float32 rounding, in ImageNet-normalised units (as the fused transform's tolerance in
# test_data_transforms.py): ~0.0006 of one 8-bit level.
IMAGE_TOL = 1e-5


def _sample(h: int = 480, w: int = 640, seed: int = 0, holes: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(3, h, w), dtype=np.uint8)
    depth = rng.uniform(0.7, 9.9, size=(h, w)).astype(np.float32)
    if holes:
        depth[h // 5 : h // 5 + 20, w // 3 : w // 3 + 60] = 0.0
        depth[h // 2, w // 2] = np.nan
    return make_sample(image, depth, 42 + seed)


def _stored(h: int = 480, w: int = 640, seed: int = 0) -> tuple[dict, dict]:
    """An rside-csv frame two ways: the sample the dataset builds (metres), and what it gives FrameDraws (the
    PNG's integers and their scale)."""
    rng = np.random.default_rng(seed)
    image = torch.from_numpy(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).permute(2, 0, 1)  # as read_rgb
    value = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    value[:40, :50] = 0  # holes
    sample = decoded_sample(image, value, TRAIN_DEPTH_SCALE_M, seed)
    stored = {"image": image, "depth_stored": torch.from_numpy(value)[None], "depth_scale": TRAIN_DEPTH_SCALE_M}
    return sample, {**stored, "frame": seed}


def _reference_and_items(samples, inputs, depth_size, seeds):
    """Per seed: the reference's sample of ``samples[k]`` and the FrameDraws item of ``inputs[k]``, both drawn
    after torch.manual_seed(seed); checks that they consume the same random numbers."""
    reference, draws = T.rside_train_transform(depth_size), A.FrameDraws(T.rside_train_transform(depth_size).settings)
    expected, items = [], []
    for s, x, seed in zip(samples, inputs, seeds, strict=True):
        torch.manual_seed(seed)
        expected.append(reference(s))
        state = torch.get_rng_state()
        torch.manual_seed(seed)
        items.append(draws(x))
        assert torch.equal(torch.get_rng_state(), state)  # the same draws, so every later draw is the same too
    return expected, items


def _assert_same(got: dict, expected: list[dict]) -> None:
    for key in ("depth", "valid"):
        want = torch.stack([e[key] for e in expected])
        assert got[key].dtype == want.dtype and torch.equal(got[key], want), key
    image = torch.stack([e["image"] for e in expected])
    assert got["image"].shape == image.shape and (got["image"] - image).abs().max() <= IMAGE_TOL
    assert got["frame"].tolist() == [e["frame"] for e in expected]


@pytest.mark.parametrize("depth_size", [(114, 152), (228, 304)])
@pytest.mark.parametrize("hw", [(480, 640), (481, 643), (200, 300)])
def test_batch_augmented_on_the_device_is_the_reference_sample(hw, depth_size):
    """Fixed inputs (holes and a NaN; frames Scale(240) shrinks by 2, by a fractional factor, or enlarges),
    eight seeds in one batch: the batch is the stack of the reference's samples."""
    samples = [_sample(*hw, seed=k) for k in range(8)]
    expected, items = _reference_and_items(samples, samples, depth_size, seeds=range(8))
    batch = A.collate_frames(items)
    assert batch["scaled_image"].dtype == torch.uint8 and batch["scaled_image"].shape[-1] == 3
    _assert_same(A.augment_batch(batch), expected)


def test_geometry_is_bit_identical_before_the_colour_map():
    """The image after geometry (before the colour map) holds the reference's uint8 values exactly."""
    samples = [_sample(seed=k) for k in range(4)]
    _, items = _reference_and_items(samples, samples, T.RSIDE_DEPTH_HW, seeds=range(4))
    batch = A.collate_frames(items)
    rows = [A._fields(r) for r in batch["augment"].tolist()]
    rounded, _, _ = A._geometry(batch["scaled_image"].permute(0, 3, 1, 2), batch["scaled_depth"], rows)
    for k, (s, r) in enumerate(zip(samples, rows, strict=True)):
        expected = T.geometry(s, r["flip"] != 0, r["angle"])["image"]
        assert expected.dtype == torch.uint8 and torch.equal(rounded[k], expected.float()), k


def test_stored_png_depth_gives_the_samples_of_metres():
    """rside-csv gives FrameDraws the PNG's integers and their scale: the same samples as from its metres."""
    pairs = [_stored(seed=k) for k in range(6)]
    expected, items = _reference_and_items([p[0] for p in pairs], [p[1] for p in pairs], (114, 152), range(6))
    assert items[0]["scaled_depth"].dtype == torch.uint8 and items[0]["augment"][11] == TRAIN_DEPTH_SCALE_M
    _assert_same(A.augment_batch(A.collate_frames(items)), expected)


def test_every_flip_and_angle_including_zero():
    """Drawn numbers set by hand: both flips, angles from -5 to 5 degrees and 0 (rotate's shortcut: no
    resampling), mixed in one batch, against transforms.geometry + photometric with the same numbers."""
    s = _sample()
    cases = [(f, a) for f in (False, True) for a in (-5.0, -0.3, 0.0, 2.5, 5.0)]
    draws = A.FrameDraws(T.rside_train_transform().settings)
    items = []
    for flip, angle in cases:
        item = draws(s)
        item["augment"][0], item["augment"][1] = float(flip), angle
        items.append(item)
    expected = []
    for item, (flip, angle) in zip(items, cases, strict=True):
        f = A._fields(item["augment"].tolist())
        jitter = [(A._JITTER_NAMES[int(c)], a) for c, a in f["jitter"] if c >= 0]
        alpha = torch.tensor(f["alpha"], dtype=torch.float32)
        expected.append(T.photometric(T.geometry(s, flip, angle), alpha, jitter))
    _assert_same(A.augment_batch(A.collate_frames(items)), expected)


def test_apply_frame_is_the_reference_bit_for_bit():
    """The per-item fallback (frames of several sizes) gives the reference's samples exactly."""
    samples = [_sample(seed=k) for k in range(3)]
    expected, items = _reference_and_items(samples, samples, (114, 152), range(3))
    for item, want in zip(items, expected, strict=True):
        got = A.apply_frame(item)
        assert all(torch.equal(got[k], want[k]) for k in ("image", "depth", "valid")) and got["frame"] == want["frame"]


def test_frames_of_different_sizes_are_augmented_in_the_worker():
    samples = [_sample(480, 640, seed=0), _sample(240, 360, seed=1)]
    expected, items = _reference_and_items(samples, samples, (114, 152), range(2))
    with pytest.warns(RuntimeWarning, match="frames of different sizes in one batch"):
        batch = A.collate_frames(items)
    assert not A.is_frame_batch(batch)
    _assert_same(A.augment_batch(batch), expected)


def test_an_ordinary_batch_is_only_moved():
    batch = {"image": torch.rand(2, 3, 4, 5), "depth": torch.rand(2, 1, 2, 2), "valid": torch.ones(2, 1, 2, 2) > 0}
    batch["frame"] = torch.tensor([1, 2])
    out = A.augment_batch(batch, "cpu")
    assert all(out[k] is batch[k] for k in batch)


def test_draws_refuse_what_the_reference_refuses():
    draws = A.FrameDraws(T.rside_train_transform().settings)
    with pytest.raises(ValueError, match="cannot crop 228x304 from a 300x240 image"):
        draws(_sample(320, 256))
    s = _sample()
    with pytest.raises(ValueError, match="depth .* differs from image"):
        draws({**s, "depth": s["depth"][:, :100]})


class _Frames(Dataset):
    def __init__(self, transform=None):
        self.transform = transform
        self.identity = {"transform": ["x"]}

    def __len__(self):
        return 2

    def __getitem__(self, index):
        s = _sample(120, 160, seed=index)
        return self.transform(s) if self.transform is not None else s


def test_defer_augmentation_swaps_only_rsides_transform():
    plain = _Frames(T.eval_transform(get_protocol("rside")))
    assert A.defer_augmentation(plain) is plain and A.defer_augmentation(_Frames()).transform is None
    ds = _Frames(T.rside_train_transform((57, 76)))
    deferred = A.defer_augmentation(ds)
    assert isinstance(deferred.transform, A.FrameDraws) and isinstance(ds.transform, T.TrainTransform)
    assert deferred.identity is ds.identity and deferred.transform.settings["depth_size"] == (57, 76)
    assert set(deferred[0]) == {"scaled_image", "scaled_depth", "augment", "frame"}


def test_a_subset_of_rsides_training_set_is_deferred_inside_the_subset():
    """A run that trains on the first N frames of a split (``train_frames``) reads them through a subset: the
    subset must reach the batched path too (it fell back to per-sample augmentation, which rounds the colour
    differently and costs the old loader time)."""
    from torch.utils.data import Subset

    from bench.datasets import FrameSubset

    ds = _Frames(T.rside_train_transform((57, 76)))
    ds.frame_indices = [1, 2]
    for subset in (FrameSubset(ds, [1], "first"), Subset(ds, [1])):
        deferred = A.defer_augmentation(subset)
        assert deferred is not subset and isinstance(deferred.dataset.transform, A.FrameDraws)
        assert subset.dataset is ds and isinstance(ds.transform, T.TrainTransform)  # the original is untouched
        assert set(deferred[0]) == {"scaled_image", "scaled_depth", "augment", "frame"} and len(deferred) == 1
    evaluated = _Frames(T.eval_transform(get_protocol("rside")))
    evaluated.frame_indices = [1, 2]
    plain = FrameSubset(evaluated, [0], "first")
    assert A.defer_augmentation(plain) is plain


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batch_on_cuda_is_the_reference_within_rounding():
    """On a GPU the same code runs; CUDA's grid_sample may round a source coordinate otherwise (fused
    multiply-add), so an image value may move by one 8-bit level at a rounding tie and a depth by float32
    rounding. Bounds: one level after normalisation, on at most 0.1% of the image values; depth within 1e-5
    relative where both are valid; at most 0.1% of the valid mask different."""
    samples = [_sample(seed=k) for k in range(8)]
    expected, items = _reference_and_items(samples, samples, T.RSIDE_DEPTH_HW, range(8))
    got = {k: v.cpu() for k, v in A.augment_batch(A.collate_frames(items), "cuda").items()}
    image = torch.stack([e["image"] for e in expected])
    diff = (got["image"] - image).abs()
    one_level = 1.0 / 255.0 / min(T.IMAGENET_STD) + IMAGE_TOL
    assert diff.max() <= one_level and (diff > IMAGE_TOL).float().mean() <= 1e-3
    valid = torch.stack([e["valid"] for e in expected])
    assert (got["valid"] != valid).float().mean() <= 1e-3
    both = got["valid"] & valid
    depth = torch.stack([e["depth"] for e in expected])
    assert torch.allclose(got["depth"][both], depth[both], rtol=1e-5, atol=0)
