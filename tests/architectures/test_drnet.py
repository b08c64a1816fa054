"""DRNet: shapes for every backbone, the Table 3 switches, level sizes, gradient flow, overfitting."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from architectures import build_model, model_options
from architectures.drnet import DRNetConfig, fit_to
from architectures.losses import LOSS_OFFSET, DepthLoss, multiscale_loss

# Level sizes (level 0 first) from the backbones' own arithmetic: ResNet and SENet round each stride-2 step
# up (228 -> 114 -> 57 -> 29 -> 15 -> 8), DenseNet's transition pools round down (57 -> 28 -> 14 -> 7).
CEIL_228x304 = [(228, 304), (57, 76), (57, 76), (29, 38), (15, 19), (8, 10)]
FLOOR_228x304 = [(228, 304), (57, 76), (57, 76), (28, 38), (14, 19), (7, 9)]
ALL_480x640 = [(480, 640), (120, 160), (120, 160), (60, 80), (30, 40), (15, 20)]
EXPECTED_LEVELS = {"resnet": CEIL_228x304, "senet": CEIL_228x304, "densenet": FLOOR_228x304}
FAMILY = {
    "resnet18": "resnet",
    "resnet34": "resnet",
    "resnet50": "resnet",
    "resnet152": "resnet",
    "densenet161": "densenet",
    "senet154": "senet",
}
TINY = {"up_channels": (4, 8, 8, 16, 32)}  # narrow decoder for the fast tests


def sizes(depths: list[torch.Tensor]) -> list[tuple[int, int]]:
    return [tuple(d.shape[-2:]) for d in depths]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.down[0].modules() if isinstance(m, nn.Conv2d))


@pytest.fixture(scope="module")
def r18():
    torch.manual_seed(0)
    return build_model("drnet", "resnet18").eval()


# --- registry and model convention ------------------------------------------------------------------------


def test_factory_lists_switches_and_readings():
    opts = model_options("drnet")
    assert {k: opts[k] for k in ("diagonal", "aux_losses", "second_branch")} == {
        "diagonal": True,
        "aux_losses": True,
        "second_branch": True,
    }
    assert opts["up_channels"] is None and opts["diagonal_target"] == "up1"
    assert opts["level_sizes"] == "paper" and opts["size_mode"] == "crop"
    assert opts["up2_init"] == "zero" and opts["shuffle_init"] == "default"


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"diagonal_target": "down"}, "diagonal_target must be one of"),
        ({"level_sizes": "half"}, "level_sizes must be one of"),
        ({"size_mode": "pad"}, "size_mode must be one of"),
        ({"up_channels": (4, 8, 8)}, "up_channels must be 5 positive integers"),
        ({"diagonal": "no"}, "diagonal must be True or False"),
        ({"up2_init": "small"}, "up2_init must be one of"),
        ({"shuffle_init": "nearest"}, "shuffle_init must be one of"),
    ],
)
def test_bad_options_are_named(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build_model("drnet", "resnet18", **bad)


def test_convention(r18):
    x = torch.randn(2, 3, 64, 96)
    with torch.inference_mode():
        out, levels, all_levels = r18(x), r18(x, levels=True), r18.forward_levels(x)
    assert r18.output_stride == 1 and r18.aux_losses is True
    assert out.shape == (2, 1, 64, 96)
    assert isinstance(levels, list) and len(levels) == len(all_levels) == 6
    torch.testing.assert_close(levels[0], out)
    for a, b in zip(levels, all_levels, strict=True):
        torch.testing.assert_close(a, b)


def test_default_widths_follow_the_documented_rule(r18):
    assert r18.up_channels == (4, 32, 32, 64, 128)  # 4, then half of down_1..down_4 (64, 64, 128, 256)
    assert build_model("drnet", "resnet50").up_channels == (4, 32, 128, 256, 512)
    assert r18.up1[0].shuffle.upscale_factor == 4 and isinstance(r18.up1[1].shuffle, nn.Identity)
    assert all(r18.up1[i].shuffle.upscale_factor == 2 for i in (2, 3, 4))


# --- shapes for every backbone -----------------------------------------------------------------------------


def check_both_sizes(backbone: str, device: str = "cpu") -> None:
    """One forward per size (inference mode, batch 1): output and every level at 228x304 and 480x640, finite on
    the CPU; ``device="meta"``: the shapes alone, without memory or arithmetic (the paper's big backbones)."""
    with torch.device(device):
        model = build_model("drnet", backbone).eval()
        with torch.inference_mode():
            small = model.forward_levels(torch.randn(1, 3, 228, 304))
            large = model.forward_levels(torch.randn(1, 3, 480, 640))
    assert sizes(small) == EXPECTED_LEVELS[FAMILY[backbone]]
    assert sizes(large) == ALL_480x640
    assert all(d.shape[:2] == (1, 1) for d in small + large)
    if device != "meta":
        assert all(torch.isfinite(d).all() for d in small + large)


@pytest.mark.parametrize("backbone", ["resnet18", "resnet34", "resnet50"])
def test_shapes_small_backbones(backbone):
    check_both_sizes(backbone)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["resnet152", "densenet161", "senet154"])
def test_shapes_paper_backbones(backbone):
    check_both_sizes(backbone, device="meta")


# --- level sizes and inputs not divisible by 32 ------------------------------------------------------------


def test_pow2_levels_halve_at_every_step():
    model = build_model("drnet", "resnet18", level_sizes="pow2", **TINY).eval()
    with torch.inference_mode():
        depths = model.forward_levels(torch.randn(1, 3, 228, 304))
    assert sizes(depths) == [(228, 304), (114, 152), (57, 76), (29, 38), (15, 19), (8, 10)]
    assert all(model.up1[i].shuffle.upscale_factor == 2 for i in range(5))


def test_resize_mode_runs_at_multiples_of_32_and_returns_input_size():
    model = build_model("drnet", "resnet18", size_mode="resize", **TINY).eval()
    with torch.inference_mode():
        depths = model.forward_levels(torch.randn(1, 3, 228, 304))
    assert sizes(depths) == [(228, 304), (56, 80), (56, 80), (28, 40), (14, 20), (7, 10)]


def test_strict_mode_names_accepted_sizes():
    model = build_model("drnet", "resnet18", size_mode="strict", **TINY).eval()
    with torch.inference_mode():
        assert model(torch.randn(1, 3, 224, 320)).shape == (1, 1, 224, 320)
        with pytest.raises(ValueError, match=r"divisible by 32 .* got 228x304.*224x320"):
            model(torch.randn(1, 3, 228, 304))


@pytest.mark.parametrize("h, w", [(100, 130), (33, 47)])
def test_crop_mode_takes_odd_sizes(h, w):
    model = build_model("drnet", "resnet18", **TINY).eval()
    with torch.inference_mode():
        assert model(torch.randn(1, 3, h, w)).shape == (1, 1, h, w)


def test_bad_inputs_are_refused_clearly(r18):
    with pytest.raises(ValueError, match=r"at least 32 px.*got 20x64"):
        r18(torch.randn(1, 3, 20, 64))
    with pytest.raises(ValueError, match=r"\(B,3,H,W\).*\(1, 1, 64, 64\)"):
        r18(torch.randn(1, 1, 64, 64))


def test_fit_to_crops_and_replicates_bottom_right():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    torch.testing.assert_close(fit_to(x, (2, 3)), x[..., :2, :3])
    padded = fit_to(x, (4, 5))
    torch.testing.assert_close(padded[..., :3, :4], x)
    torch.testing.assert_close(padded[..., 3, :4], x[..., 2, :])  # last row repeated
    torch.testing.assert_close(padded[..., :3, 4], x[..., :, 3])  # last column repeated


# --- Table 3 switches ------------------------------------------------------------------------------------


def up1_outputs(model: nn.Module, x: torch.Tensor, coarse_bias: float) -> list[torch.Tensor]:
    """Outputs of the up I blocks (levels 0..4) after setting up II_5's bias: which ones depend on up II?"""
    captured: dict[int, torch.Tensor] = {}
    hooks = [
        blk.register_forward_hook(lambda m, i, o, k=k: captured.__setitem__(k, o.clone()))
        for k, blk in enumerate(model.up1)
    ]
    with torch.no_grad():
        model.up2.coarse.bias.fill_(coarse_bias)
        model(x)
    for h in hooks:
        h.remove()
    return [captured[k] for k in range(5)]


def test_diagonal_feeds_coarser_depth_into_up1():
    torch.manual_seed(0)
    on = build_model("drnet", "resnet18", **TINY).eval()
    off = build_model("drnet", "resnet18", diagonal=False, **TINY).eval()
    # one input channel less in the convs of up I_3..up I_0 (each reads an up I level that held the depth)
    cfg = DRNetConfig()
    lost = sum(c * f * f for c, f in zip(TINY["up_channels"][:4], cfg.shuffle_factors[:4], strict=True))
    assert n_params(on) - n_params(off) == lost == 4 * 16 + 8 * 1 + 8 * 4 + 16 * 4
    assert on.up1[2].conv[0].in_channels == off.up1[2].conv[0].in_channels + 1
    x = torch.randn(1, 3, 64, 96)
    a, b = up1_outputs(on, x, 0.0), up1_outputs(on, x, 5.0)
    assert torch.equal(a[4], b[4])  # up I_4 reads only down_5
    assert all(not torch.equal(a[k], b[k]) for k in range(4))  # up I_3..0 see up II_5 through the diagonals
    a, b = up1_outputs(off, x, 0.0), up1_outputs(off, x, 5.0)
    assert all(torch.equal(a[k], b[k]) for k in range(5))  # without them up I never reads up II


@pytest.mark.parametrize("target, lost", [("correction", 5), ("both", 5 + 168)])
def test_diagonal_target_readings(target, lost):
    on = build_model("drnet", "resnet18", diagonal_target=target, **TINY)
    off = build_model("drnet", "resnet18", diagonal_target=target, diagonal=False, **TINY)
    assert n_params(on) - n_params(off) == lost  # 5 corrections lose the depth input; "both": also up I's
    assert [c.in_channels for c in on.up2.correct] == [c.in_channels + 1 for c in off.up2.correct]


def test_aux_losses_switch_changes_the_training_outputs_only():
    torch.manual_seed(0)
    on = build_model("drnet", "resnet18", **TINY).eval()
    off = build_model("drnet", "resnet18", aux_losses=False, **TINY).eval()
    off.load_state_dict(on.state_dict())  # same architecture and parameters
    x, target = torch.randn(1, 3, 64, 96), torch.rand(1, 1, 64, 96) + 1.0
    with torch.inference_mode():
        assert len(on(x, levels=True)) == 6 and len(off(x, levels=True)) == 1
        assert len(off.forward_levels(x)) == 6
        torch.testing.assert_close(off(x), on(x))
        # eq. 1 with every level vs the finest alone: independent sums over the same predictions
        levels = on.forward_levels(x)
        loss_fn = DepthLoss()
        expected = sum(
            loss_fn(d, nn.functional.interpolate(target, size=d.shape[-2:], mode="bilinear")) for d in levels
        )
        torch.testing.assert_close(multiscale_loss(on(x, levels=True), target), expected)
        torch.testing.assert_close(multiscale_loss(off(x, levels=True), target), loss_fn(levels[0], target))


def test_second_branch_switch_removes_up2():
    full = build_model("drnet", "resnet18", **TINY)
    single = build_model("drnet", "resnet18", second_branch=False, **TINY)
    names = {n for n, _ in single.named_modules()}
    assert "up2" not in names and "head" in names and "up2" in {n for n, _ in full.named_modules()}
    assert n_params(single) < n_params(full)
    assert single.head.in_channels == 4  # one 1x1 conv on up I_0's four maps
    with torch.inference_mode():
        single.eval()
        x = torch.randn(1, 3, 64, 96)
        assert sizes(single(x, levels=True)) == sizes(single.forward_levels(x)) == [(64, 96)]
    # nothing left for the diagonals to connect: the switch is inert (documented)
    no_diagonal = build_model("drnet", "resnet18", second_branch=False, diagonal=False, **TINY)
    assert n_params(no_diagonal) == n_params(single)


# --- gradients --------------------------------------------------------------------------------------------


def test_every_level_and_parameter_gets_gradient():
    torch.manual_seed(0)  # the wiring, not the init: with up2_init="zero" only up II learns in the first step
    model = build_model("drnet", "resnet18", up2_init="default", **TINY).train()
    x = torch.randn(2, 3, 64, 96)
    conv = first_conv(model)
    for level in range(6):  # level 5 reaches the backbone through up II_5 alone, level 0 through everything
        model.zero_grad()
        model.forward_levels(x)[level].mean().backward()
        assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0, f"level {level}"
    model.zero_grad()
    multiscale_loss(model(x, levels=True), torch.rand(2, 1, 64, 96) + 1.0).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not dead


def test_up1_branch_alone_carries_gradient_to_the_backbone():
    model = build_model("drnet", "resnet18", second_branch=False, **TINY).train()
    model(torch.randn(2, 3, 64, 96)).mean().backward()
    assert first_conv(model).weight.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.up1.parameters())


# --- training --------------------------------------------------------------------------------------------


def synthetic_room(h: int = 64, w: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """A sloped floor-to-wall depth (1..3.5 m) with a box in front, and an image that shows it."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    depth = 1.0 + 2.0 * yy + 0.5 * xx
    depth[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = 1.5
    image = torch.stack([depth / 3.5, xx, yy]) * 2 - 1
    return image[None] + 0.1 * torch.randn(1, 3, h, w), depth[None, None]


@pytest.mark.slow
def test_tiny_drnet_overfits_one_image():
    torch.manual_seed(0)
    image, depth = synthetic_room()
    model = build_model("drnet", "resnet18", up_channels=(4, 16, 16, 32, 64)).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    floor = 6 * 3 * math.log(LOSS_OFFSET)  # eq. 1's lower bound: 6 levels x (ln 0.5 x 3 terms + 0 normal)
    excess = []
    for _ in range(40):
        loss = multiscale_loss(model(image, levels=True), depth)
        opt.zero_grad()
        loss.backward()
        opt.step()
        excess.append(loss.item() - floor)
    assert excess[-1] < 0.5 * excess[0], excess


# --- initialisation (issue 17) ----------------------------------------------------------------------------


def test_depth_branch_starts_at_zero_like_rside():
    """Default up2_init="zero": at init every level predicts 0 m in train and eval mode (RSIDE starts near 0
    too). With PyTorch's default init the six summed 1x1 convs on raw backbone features gave metres of noise."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 96)
    model = build_model("drnet", "resnet18", **TINY)
    for mode in (True, False):
        model.train(mode)
        with torch.no_grad():
            assert all(torch.count_nonzero(d) == 0 for d in model.forward_levels(x)), f"train={mode}"
    old = build_model("drnet", "resnet18", up2_init="default", **TINY).eval()
    with torch.no_grad():
        assert old(x).std() > 0.1  # the previous init: output noise of the order of a metre or more


def test_zero_init_learns_depth_in_the_first_step_and_reaches_the_backbone_in_the_second():
    torch.manual_seed(0)
    model = build_model("drnet", "resnet18", **TINY).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    image, depth = synthetic_room()
    for step in range(2):
        opt.zero_grad()
        multiscale_loss(model(image, levels=True), depth).backward()
        grad = first_conv(model).weight.grad
        assert model.up2.coarse.weight.grad.abs().sum() > 0
        assert (grad is not None and grad.abs().sum() > 0) == (step == 1)  # zero heads pass no gradient back
        opt.step()
    with torch.no_grad():
        assert model(image).mean() > 0  # the depth moved towards the positive target


def test_icnr_shuffle_starts_as_nearest_upsampling():
    """shuffle_init="icnr": the factor^2 sub-pixels of each shuffled channel are equal at init (no
    checkerboard); the default init gives them independent weights."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 96)
    icnr = build_model("drnet", "resnet18", shuffle_init="icnr", **TINY).eval()
    plain = build_model("drnet", "resnet18", **TINY).eval()
    for model, blocky in ((icnr, True), (plain, False)):
        out = {}
        hooks = [
            b.register_forward_hook(lambda m, i, o, k=k, out=out: out.__setitem__(k, o))
            for k, b in enumerate(model.up1)
        ]
        with torch.no_grad():
            model(x)
        for h in hooks:
            h.remove()
        for level, factor in enumerate(DRNetConfig().shuffle_factors):
            if factor == 1:
                continue
            o = out[level]
            h, w = o.shape[-2] // factor * factor, o.shape[-1] // factor * factor
            o = o[..., :h, :w]  # whole blocks (fit_to may have cropped the last row/column)
            nearest = o[..., ::factor, ::factor].repeat_interleave(factor, -2).repeat_interleave(factor, -1)
            # the sub-pixel channels share weights: equal up to the conv's rounding
            assert torch.allclose(o, nearest, atol=1e-5) == blocky, (level, blocky)
