"""Paired cell inpainting (Lu et al. 2019, PLoS Comput Biol; METHODS.md section 2) and the
autoencoder baseline of that paper.

All convolutions 3x3, SAME padding. Encoder blocks are Conv -> ReLU -> BatchNorm (BN after the
activation). Source-cell encoder (all channels of cell A): conv1 96, pool, conv2 256, pool, conv3
384, conv4 384, conv5 256 (64 -> 32 -> 16). Target-marker encoder (structural channels of cell B):
16, pool, 32, pool, 32. The two 16 x 16 maps are concatenated (256 + 32) and decoded, without BN:
conv6 256, conv7 384, conv8 384, upsample x2, conv9 256, upsample x2, conv10 96, 1x1 conv to the
protein channel of cell B (linear). Features: the spatial max of each encoder layer's post-ReLU,
pre-BN output (96, 256, 384, 384, 256 values for conv1..conv5).
"""

from __future__ import annotations

import torch
from torch import nn

from ._util import scaled

SOURCE_PLAN = ((96, True), (256, True), (384, False), (384, False), (256, False))  # (filters, pool after)
TARGET_PLAN = ((16, True), (32, True), (32, False))
DECODER_PLAN = (256, 384, 384, "up", 256, "up", 96)


class _Block(nn.Module):
    """Conv -> ReLU -> BN (-> maxpool); ``forward`` also returns the post-ReLU, pre-BN map."""

    def __init__(self, c_in: int, c_out: int, pool: bool):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.bn = nn.BatchNorm2d(c_out)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x):
        act = torch.relu(self.conv(x))
        return self.pool(self.bn(act)), act


class SourceEncoder(nn.Module):
    def __init__(self, in_channels: int, width: float = 1.0):
        super().__init__()
        blocks, c = [], in_channels
        for filters, pool in SOURCE_PLAN:
            blocks.append(_Block(c, scaled(filters, width), pool))
            c = scaled(filters, width)
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = c
        self.layer_names = tuple(f"conv{i}" for i in range(1, len(blocks) + 1))

    def forward(self, x, return_activations: bool = False):
        acts = {}
        for name, block in zip(self.layer_names, self.blocks):
            x, act = block(x)
            acts[name] = act
        return (x, acts) if return_activations else x

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Spatial max of every layer's post-ReLU, pre-BN activation: ``{conv1: N x 96, ...}``."""
        _, acts = self(x, return_activations=True)
        return {k: a.amax(dim=(2, 3)) for k, a in acts.items()}


def _decoder(c_in: int, out_channels: int, width: float) -> nn.Sequential:
    layers, c = [], c_in
    for item in DECODER_PLAN:
        if item == "up":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        else:
            layers += [nn.Conv2d(c, scaled(item, width), 3, padding=1), nn.ReLU(inplace=True)]
            c = scaled(item, width)
    layers.append(nn.Conv2d(c, out_channels, 1))
    return nn.Sequential(*layers)


class PairedCellInpainting(nn.Module):
    """Predict the protein channel of cell B from all channels of cell A and B's structural channels."""

    def __init__(self, x_channels: int = 2, y_channels: int = 1, out_channels: int = 1, width: float = 1.0):
        super().__init__()
        self.source = SourceEncoder(x_channels, width)
        blocks, c = [], y_channels
        for filters, pool in TARGET_PLAN:
            blocks.append(_Block(c, scaled(filters, width), pool))
            c = scaled(filters, width)
        self.target = nn.ModuleList(blocks)
        self.decoder = _decoder(self.source.out_channels + c, out_channels, width)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.source(x)
        for block in self.target:
            y, _ = block(y)
        return self.decoder(torch.cat([h, y], dim=1))

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.source.embed(x)


class ConvAutoencoder(nn.Module):
    """The PCI paper's autoencoder baseline: the source encoder and a decoder reconstructing the input."""

    def __init__(self, in_channels: int = 2, width: float = 1.0):
        super().__init__()
        self.source = SourceEncoder(in_channels, width)
        self.decoder = _decoder(self.source.out_channels, in_channels, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.source(x))

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.source.embed(x)
