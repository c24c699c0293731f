"""DeepLoc (Kraus et al. 2017, Mol Syst Biol; METHODS.md section 1.2), the COOS-7 end-to-end baseline.

Input ``N x C x 60 x 60`` (random 60-px crops of the 64-px cells). Eight 3x3 convolutions (SAME
padding) each followed by BatchNorm then ReLU: 64, 64, pool, 128, 128, pool, 256 x 4, pool
(60 -> 30 -> 15 -> 8 with SAME pooling), then fc1 512 and fc2 512 (BatchNorm + ReLU) and a
BatchNorm'd logit layer. BatchNorm: eps 1e-3, EMA decay 0.5 (torch momentum 0.5). Weights are
truncated normal (std 0.1), biases 0.1. ``width`` scales every layer for quick CPU runs.
"""

from __future__ import annotations

import torch
from torch import nn

from ._util import scaled

CONV_PLAN = (64, 64, "pool", 128, 128, "pool", 256, 256, 256, 256, "pool")
BN = {"eps": 1e-3, "momentum": 0.5}


class DeepLoc(nn.Module):
    def __init__(self, in_channels: int = 2, n_classes: int = 7, width: float = 1.0, input_size: int = 60):
        super().__init__()
        layers, c, size = [], in_channels, input_size
        for item in CONV_PLAN:
            if item == "pool":
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))  # TF 'SAME' pooling
                size = -(-size // 2)
            else:
                out = scaled(item, width)
                layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out, **BN), nn.ReLU(inplace=True)]
                c = out
        self.features = nn.Sequential(*layers)
        self.flat_dim = c * size * size
        h = scaled(512, width)
        self.fc1 = nn.Sequential(nn.Linear(self.flat_dim, h), nn.BatchNorm1d(h, **BN), nn.ReLU(inplace=True))
        self.fc2 = nn.Sequential(nn.Linear(h, h), nn.BatchNorm1d(h, **BN), nn.ReLU(inplace=True))
        self.logits = nn.Sequential(nn.Linear(h, n_classes), nn.BatchNorm1d(n_classes, **BN))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.1, a=-0.2, b=0.2)
                nn.init.constant_(m.bias, 0.1)

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"fc2": N x 512, "logits": N x classes}`` (fc2 after its BatchNorm and ReLU)."""
        h = self.features(x).flatten(1)
        fc2 = self.fc2(self.fc1(h))
        return {"fc2": fc2, "logits": self.logits(fc2)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)["logits"]
