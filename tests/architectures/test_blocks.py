from __future__ import annotations

import torch

from architectures.blocks import ConvBNReLU, UpProjection, resize_bilinear


def test_resize_bilinear_align_corners_true_matches_hand_computation():
    # align_corners=True maps corner pixels onto each other: [0, 1] -> [0, 1/3, 2/3, 1] (PyTorch 0.3.1)
    x = torch.tensor([[[[0.0, 1.0]]]])
    expected_true = torch.tensor([[[[0.0, 1 / 3, 2 / 3, 1.0]]]])
    assert torch.allclose(resize_bilinear(x, (1, 4), align_corners=True), expected_true)
    # align_corners=False (current default) samples pixel centres: [0, 1] -> [0, 0.25, 0.75, 1]
    expected_false = torch.tensor([[[[0.0, 0.25, 0.75, 1.0]]]])
    assert torch.allclose(resize_bilinear(x, (1, 4), align_corners=False), expected_false)


def test_up_projection_uses_align_corners_true():
    block = UpProjection(2, 3).eval()
    x = torch.randn(1, 2, 5, 7)
    expected_input = torch.nn.functional.interpolate(x, size=(9, 13), mode="bilinear", align_corners=True)
    with torch.no_grad():
        ours = block(x, (9, 13))
        branch1 = block.bn1_2(block.conv1_2(torch.relu(block.bn1(block.conv1(expected_input)))))
        manual = torch.relu(branch1 + block.bn2(block.conv2(expected_input)))
    assert torch.equal(ours, manual)
    assert [n for n, _ in block.named_children()] == ["conv1", "bn1", "relu", "conv1_2", "bn1_2", "conv2", "bn2"]


def test_conv_bn_relu_keeps_size():
    assert ConvBNReLU(3, 8, kernel_size=3)(torch.randn(2, 3, 5, 6)).shape == (2, 8, 5, 6)
