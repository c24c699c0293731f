"""ResNet18 (He et al. 2016) for weakly supervised single-cell features (DeepProfiler, CVPR 2018;
METHODS.md section 5.1), in plain torch.

Stem: 7x7 conv stride 2, BN, ReLU, 3x3 max-pool stride 2; four stages of two basic blocks
(64, 128, 256, 512 channels, stride 2 from the second stage on). keras-resnet names the stages
res2..res5, so the paper's ``res4a_relu`` ("conv4a") is the output of the first block of the third
torch stage. The treatment head: global average pool ("pool5") -> Dense 256 without bias -> BN ->
Dropout 0.5 -> softmax over treatments. The GRU regulariser reads a set of crops of one treatment
through the same trunk and classifies the set from the last GRU(256) state; it is discarded after
training.
"""

from __future__ import annotations

import torch
from torch import nn

from ._util import scaled


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + idt)


class ResNet18(nn.Module):
    STAGES = (64, 128, 256, 512)

    def __init__(self, in_channels: int = 3, n_classes: int = 10, width: float = 1.0, embed_dim: int = 256):
        super().__init__()
        c0 = scaled(64, width)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c0, 7, 2, 3, bias=False), nn.BatchNorm2d(c0),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        stages, c = [], c0
        for i, ch in enumerate(self.STAGES):
            out = scaled(ch, width)
            stages.append(nn.Sequential(BasicBlock(c, out, 1 if i == 0 else 2), BasicBlock(out, out, 1)))
            c = out
        self.stages = nn.ModuleList(stages)
        self.feature_dim = c
        self.head = nn.Sequential(nn.Linear(c, embed_dim, bias=False), nn.BatchNorm1d(embed_dim), nn.Dropout(0.5),
                                  nn.Linear(embed_dim, n_classes))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """pool5: the spatially averaged output of the last stage."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Spatial means of ``res3`` (stage 2 output), ``res4a`` (first block of stage 3: the
        paper's conv4a), ``res4``, ``res5`` and ``pool5`` (= res5)."""
        x = self.stem(x)
        x = self.stages[0](x)
        res3 = self.stages[1](x)
        res4a = self.stages[2][0](res3)
        res4 = self.stages[2][1](res4a)
        res5 = self.stages[3](res4)
        out = {k: v.mean(dim=(2, 3)) for k, v in (("res3", res3), ("res4a", res4a), ("res4", res4), ("res5", res5))}
        return out


class SequenceClassifier(nn.Module):
    """The GRU regulariser: ``B x L x C x H x W`` sets of one treatment -> trunk -> GRU(256) -> logits."""

    def __init__(self, resnet: ResNet18, n_classes: int, hidden: int = 256):
        super().__init__()
        self.resnet = resnet
        self.gru = nn.GRU(resnet.feature_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length = x.shape[:2]
        feats = self.resnet.trunk(x.flatten(0, 1)).view(b, length, -1)
        _, h = self.gru(feats)
        return self.out(h[-1])
