"""VGG16 (Simonyan and Zisserman 2015, configuration D) laid out exactly as torchvision's ``vgg16``,
so an ImageNet ``state_dict`` saved from torchvision loads with ``load_state_dict(strict=True)``.

``features`` is one ``nn.Sequential`` (conv indices 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28;
max-pools at 4, 9, 16, 23, 30), then ``avgpool`` (adaptive 7 x 7) and ``classifier`` (Linear at 0,
3, 6). The COOS-7 transfer baseline takes the spatial max of the post-ReLU ``conv3_3``,
``conv4_1`` and ``conv4_2`` maps.
"""

from __future__ import annotations

import torch
from torch import nn

CFG_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
_BLOCK_SIZES = (2, 2, 3, 3, 3)


def _conv_names() -> list[str]:
    return [f"conv{b + 1}_{i + 1}" for b, n in enumerate(_BLOCK_SIZES) for i in range(n)]


class VGG16(nn.Module):
    def __init__(self, n_classes: int = 1000):
        super().__init__()
        layers, c = [], 3
        self.relu_index: dict[str, int] = {}
        names = iter(_conv_names())
        for v in CFG_D:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                self.relu_index[next(names)] = len(layers) - 1
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    def embed(self, x: torch.Tensor, layers=("conv3_3", "conv4_1", "conv4_2")) -> dict[str, torch.Tensor]:
        """Spatial max of the post-ReLU maps of ``layers``; stops after the deepest one asked for."""
        wanted = {self.relu_index[name]: name for name in layers}
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x.amax(dim=(2, 3))
                if len(out) == len(wanted):
                    break
        return out


def vgg16_state_dict_keys() -> list[str]:
    """torchvision's documented ``vgg16`` key list, built from its layer indices (no download)."""
    conv_idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    keys = [f"features.{i}.{p}" for i in conv_idx for p in ("weight", "bias")]
    keys += [f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")]
    return keys
