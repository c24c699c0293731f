"""The FLOP counter against hand counts for two small layers."""

import torch

from cellbench.training.flops import count_flops


def test_conv_and_linear_by_hand():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.randn(2, 3, 10, 10)
    assert count_flops(conv, x) == 2 * 3 * 3 * 3 * 8 * 10 * 10 * 2  # 2 c_in k k c_out H W per image, 2 images
    lin = torch.nn.Linear(16, 5)
    y = torch.randn(4, 16)
    assert count_flops(lin, y) == 2 * 16 * 5 * 4
    # forward + backward of a linear layer: input and weight gradients are two more products
    assert count_flops(lin, y.requires_grad_(True), backward=True) == 3 * 2 * 16 * 5 * 4
