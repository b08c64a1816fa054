"""architectures/data/transforms.py: RSIDE's train augmentation and the protocols' evaluation preprocessing,
checked against independent computations (PIL for resizes, NumPy for the colour maths), and the fused training
transform checked against the step chain it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from architectures.data import NYUv2Labeled, get_protocol, make_sample, write_synthetic
from architectures.data import transforms as T


def _sample(h: int = 480, w: int = 640, seed: int = 0, holes: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(3, h, w), dtype=np.uint8)
    depth = rng.uniform(0.7, 9.9, size=(h, w)).astype(np.float32)
    if holes:
        depth[100:120, 200:260] = 0.0
        depth[300, 300] = np.nan
    return make_sample(image, depth, 42)


def _pil_nearest(depth: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(depth, mode="F").resize((hw[1], hw[0]), Image.NEAREST))


def _pil_bilinear(image: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(image.permute(1, 2, 0).numpy()).resize((hw[1], hw[0]), Image.BILINEAR))


def test_scale_matches_pil_bilinear_and_nearest():
    s = _sample()
    out = T.scale_shorter_side(s, 240)
    pil_rgb = _pil_bilinear(s["image"], (240, 320))
    ours = out["image"].permute(1, 2, 0).numpy().astype(int)
    assert out["image"].dtype == torch.uint8 and np.abs(ours - pil_rgb.astype(int)).max() <= 1
    np.testing.assert_array_equal(out["depth"][0].numpy(), _pil_nearest(s["depth"][0].numpy(), (240, 320)))


def test_scale_keeps_aspect_for_portrait_frames():
    out = T.scale_shorter_side(_sample(64, 48), 240)
    assert out["image"].shape == (3, 320, 240) and out["depth"].shape == (1, 320, 240)


def test_center_crop_offsets_are_rsides():
    s = T.scale_shorter_side(_sample(), 240)
    out = T.center_crop(s, (228, 304))
    np.testing.assert_array_equal(out["depth"].numpy(), s["depth"][:, 6:234, 8:312].numpy())  # offsets 6, 8
    with pytest.raises(ValueError, match="cannot crop 228x304 from a 100x100 image"):
        T.center_crop(_sample(100, 100), (228, 304))


def test_depth_target_resize_is_pil_nearest():
    s = T.center_crop(T.scale_shorter_side(_sample(holes=True), 240), (228, 304))
    out = T.resize_depth(s, (114, 152))
    np.testing.assert_array_equal(out["depth"][0].numpy(), _pil_nearest(s["depth"][0].numpy(), (114, 152)))
    np.testing.assert_array_equal(out["valid"][0].numpy(), out["depth"][0].numpy() > 0)
    assert out["image"] is s["image"]


def test_rotation_masks_the_filled_corners_and_the_rims_of_holes():
    depth = np.full((240, 320), 2.0, np.float32)
    depth[120, 160] = 0.0  # a one-pixel hole in the middle
    s = make_sample(np.zeros((3, 240, 320), np.uint8), depth, 1)
    out = T.rotate(s, 5.0)
    valid, d = out["valid"][0], out["depth"][0]
    assert not valid[0, 0] and not valid[-1, -1] and valid[60, 160]
    assert not valid[119:122, 159:162].all()  # the hole spreads to what it was blended into
    assert torch.allclose(d[valid], torch.tensor(2.0), atol=1e-5) and (d[~valid] == 0).all()
    assert T.rotate(s, 0.0) is s


def test_flip_moves_image_depth_and_mask_together():
    s = _sample(8, 10, holes=False)
    out = T.random_horizontal_flip(s, p=1.0)
    for key in ("image", "depth", "valid"):
        assert torch.equal(out[key], s[key].flip(-1))
    assert T.random_horizontal_flip(s, p=0.0) is s


def test_lighting_adds_the_pca_offset():
    s = T.to_float_image(_sample(4, 5))
    alpha = torch.tensor([0.05, -0.1, 0.2])
    out = T.lighting(s, alpha=alpha)
    eigvec, eigval = np.array(T.PCA_EIGVEC), np.array(T.PCA_EIGVAL)
    offset = (eigvec * (alpha.numpy() * eigval)[None, :]).sum(axis=1)  # RSIDE: rows of eigvec*alpha*eigval
    expected = np.broadcast_to(offset[:, None, None], (3, 4, 5))
    np.testing.assert_allclose((out["image"] - s["image"]).numpy(), expected, atol=1e-6)


def test_color_jitter_components():
    s = T.to_float_image(_sample(6, 7))
    s["image"] = s["image"].clamp(min=0.1)
    bright = T.color_jitter(s, brightness=0.4, contrast=0, saturation=0)["image"]
    ratio = bright / s["image"]  # lerp towards black: one factor in [0.6, 1.4] for every pixel
    assert torch.allclose(ratio, ratio.flatten()[0]) and 0.6 <= ratio.flatten()[0] <= 1.4
    grey = s["image"].mean(0, keepdim=True).expand(3, -1, -1).clone()
    saturated = T.color_jitter({**s, "image": grey}, brightness=0, contrast=0, saturation=0.4)["image"]
    assert torch.allclose(saturated, grey, atol=1e-6)  # a grey image has no saturation to change
    contrasted = T.color_jitter({**s, "image": grey}, brightness=0, contrast=0.4, saturation=0)["image"]
    assert torch.isclose(contrasted.mean(), grey.mean(), atol=1e-5)  # contrast pivots on the grey mean


def test_normalize_uses_imagenet_statistics():
    s = T.to_float_image(_sample(2, 3))
    out = T.normalize(s)["image"]
    mean, std = torch.tensor(T.IMAGENET_MEAN).view(3, 1, 1), torch.tensor(T.IMAGENET_STD).view(3, 1, 1)
    assert torch.allclose(out * std + mean, s["image"], atol=1e-6)


@pytest.mark.parametrize("depth_size", [(114, 152), (228, 304)])
def test_train_transform_shapes_and_masking(depth_size):
    out = T.rside_train_transform(depth_size)(_sample(holes=True))
    assert out["image"].shape == (3, 228, 304) and out["image"].dtype == torch.float32
    assert out["depth"].shape == (1, *depth_size) and out["valid"].shape == (1, *depth_size)
    assert out["valid"].dtype == torch.bool and out["frame"] == 42
    assert torch.isfinite(out["depth"]).all() and torch.isfinite(out["image"]).all()
    assert (out["depth"][out["valid"]] > 0).all() and (out["depth"][~out["valid"]] == 0).all()
    assert not out["valid"].all()  # the hole and the rotated corners


def test_train_transform_is_seedable():
    transform, s = T.rside_train_transform(), _sample()
    torch.manual_seed(3)
    a = transform(s)
    torch.manual_seed(3)
    b = transform(s)
    torch.manual_seed(4)
    c = transform(s)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["depth"], b["depth"])
    assert not torch.equal(a["image"], c["image"])


def test_dataloader_workers_draw_reproducible_augmentations(tmp_path):
    path = write_synthetic(tmp_path / "s.h5", frames=4, seed=0, height=240, width=320)
    ds = NYUv2Labeled(path, "all", transform=T.rside_train_transform())

    def run() -> list[torch.Tensor]:
        torch.manual_seed(11)  # what the runner does; DataLoader derives each worker's seed from it
        return [b["image"] for b in DataLoader(ds, batch_size=2, num_workers=2)]

    first, second = run(), run()
    assert all(torch.equal(x, y) for x, y in zip(first, second, strict=True))


def test_rside_evaluation_preprocessing_matches_pil():
    s = _sample(holes=True)
    out = T.eval_transform(get_protocol("rside"))(s)
    assert out["image"].shape == (3, 228, 304) and out["depth"].shape == (1, 228, 304)
    gt = _pil_nearest(s["depth"][0].numpy(), (240, 320))[6:234, 8:312]
    np.testing.assert_array_equal(out["depth"][0].numpy(), gt)
    np.testing.assert_array_equal(out["valid"][0].numpy(), gt > 0)
    rgb = _pil_bilinear(s["image"], (240, 320))[6:234, 8:312].transpose(2, 0, 1) / 255.0
    mean, std = np.array(T.IMAGENET_MEAN)[:, None, None], np.array(T.IMAGENET_STD)[:, None, None]
    expected = (rgb - mean) / std
    assert np.abs(out["image"].numpy() - expected).max() <= 1.0 / 255.0 / 0.225 + 1e-5
    assert torch.equal(T.eval_transform(get_protocol("rside"))(s)["image"], out["image"])  # deterministic


def test_eigen_evaluation_keeps_the_full_frame():
    s = _sample(holes=True)
    out = T.eval_transform(get_protocol("eigen"))(s)
    assert out["image"].shape == (3, 240, 320)  # Scale(240) as in training, no crop
    assert torch.equal(out["depth"], s["depth"]) and torch.equal(out["valid"], s["valid"])


def test_transforms_describe_themselves():
    steps = T.rside_train_steps((114, 152)).describe()
    assert steps[0] == "scale_shorter_side(size=240)" and "resize_depth(size=(114, 152))" in steps
    assert steps[-1] == "normalize"
    fused = T.rside_train_transform((114, 152)).describe()
    assert fused == [
        "random_geometry(size=240, max_degrees=5.0, crop=(228, 304), depth_size=(114, 152))",
        "random_photometric(alphastd=0.1, brightness=0.4, contrast=0.4, saturation=0.4)",
    ]


# --- the fused training transform against the step chain (rside_train_steps: the pre-fusion implementation) ---

# Tolerance of the fused transform, image in ImageNet-normalised units: the geometry is bit-identical (same
# grid values, same grid_sample calls on the same pixels, same uint8 rounding); only the colour steps differ,
# by float32 rounding (one 3x3 map composed in float64 instead of five float32 passes). 1e-5 is ~0.0006 of
# one 8-bit level after normalisation (1/255/0.229 = 0.017).
IMAGE_TOL = 1e-5


def _fixed_samples() -> list[dict]:
    """Fixed inputs: a 640x480 frame with holes and a NaN, one at a size Scale(240) shrinks by a fractional
    factor, and one it enlarges."""
    return [_sample(holes=True), _sample(481, 643, seed=1, holes=True), _sample(200, 300, seed=2)]


def _geometry_steps(depth_size: tuple[int, int]) -> T.Compose:
    return T.Compose(*T.rside_train_steps(depth_size).steps[:5])


@pytest.mark.parametrize("depth_size", [(114, 152), (228, 304)])
def test_fused_geometry_is_bit_identical_to_the_step_chain(depth_size):
    geometry = T.rside_train_transform(depth_size).steps[0]
    for n, s in enumerate(_fixed_samples()):
        for seed in range(3):
            torch.manual_seed(seed)
            expected = _geometry_steps(depth_size)(s)
            torch.manual_seed(seed)
            got = geometry(s)
            assert got["image"].dtype == torch.uint8 and got["depth"].shape == (1, *depth_size)
            for key in ("image", "depth", "valid"):
                assert torch.equal(got[key], expected[key]), (n, seed, key)


def test_fused_geometry_covers_both_flips_and_large_angles():
    s = _sample(holes=True)
    for flip in (False, True):
        for angle in (-5.0, -0.3, 0.0, 2.5, 5.0):
            expected = T.random_horizontal_flip(T.scale_shorter_side(s), p=1.0 if flip else 0.0)
            expected = T.resize_depth(T.center_crop(T.rotate(expected, angle)))
            got = T.geometry(s, flip, angle)
            for key in ("image", "depth", "valid"):
                assert torch.equal(got[key], expected[key]), (flip, angle, key)


def test_fused_draws_compute_the_steps_float32_arithmetic():
    u = torch.rand(20_000)
    for var in (0.4, 5.0, 0.1):
        expected = (u * 2.0 - 1.0) * var  # the steps' expression, float32 tensors
        assert [T._symmetric(x, var) for x in u.tolist()] == expected.tolist()
    assert [x < T._f32(0.3) for x in u.tolist()] == (u < 0.3).tolist()


def test_fused_geometry_refuses_what_the_steps_refuse():
    with pytest.raises(ValueError, match="cannot crop 228x304 from a 300x240 image"):
        T.geometry(_sample(320, 256), False, 1.0)  # portrait: Scale(240) gives 300x240, narrower than the crop
    s = _sample()
    with pytest.raises(ValueError, match="depth .* differs from image"):
        T.geometry({**s, "depth": s["depth"][:, :100]}, False, 1.0)


def test_fused_photometric_matches_the_step_chain():
    geo = T.geometry(_sample(), False, 3.0)
    steps = T.Compose(*T.rside_train_steps().steps[5:])
    for seed in range(10):
        torch.manual_seed(seed)
        expected = steps(geo)["image"]
        torch.manual_seed(seed)
        got = T.random_photometric(geo)["image"]
        assert got.dtype == torch.float32 and (got - expected).abs().max() <= IMAGE_TOL
    with pytest.raises(ValueError, match="unknown jitter 'hue'"):
        T.photometric(geo, torch.zeros(3), [("hue", 0.1)])


@pytest.mark.parametrize("depth_size", [(114, 152), (228, 304)])
def test_fused_train_transform_gives_the_step_chains_sample(depth_size):
    """Same seed, same sample: masks and depth (metres) bit-identical, image within IMAGE_TOL, and the same
    random numbers consumed (so every later draw, and the draws' distribution, is unchanged)."""
    fused, steps = T.rside_train_transform(depth_size), T.rside_train_steps(depth_size)
    for s in _fixed_samples():
        for seed in range(4):
            torch.manual_seed(seed)
            expected, state = steps(s), torch.get_rng_state()
            torch.manual_seed(seed)
            got = fused(s)
            assert torch.equal(torch.get_rng_state(), state)
            assert torch.equal(got["depth"], expected["depth"]) and torch.equal(got["valid"], expected["valid"])
            assert (got["image"] - expected["image"]).abs().max() <= IMAGE_TOL
            assert got["frame"] == expected["frame"]
