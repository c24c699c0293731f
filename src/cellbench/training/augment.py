"""Batch augmentations (torch): random crops, flips, 90-degree rotations; the 5-crop test view."""

from __future__ import annotations

import numpy as np
import torch


def random_crop(x: torch.Tensor, size: int, rng: np.random.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    tops = rng.integers(0, h - size + 1, n)
    lefts = rng.integers(0, w - size + 1, n)
    return torch.stack([x[i, :, t:t + size, l:l + size] for i, (t, l) in enumerate(zip(tops, lefts))])


def random_flips(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    n = x.shape[0]
    ud = torch.from_numpy(rng.random(n) < 0.5)
    lr = torch.from_numpy(rng.random(n) < 0.5)
    x = torch.where(ud[:, None, None, None], x.flip(2), x)
    return torch.where(lr[:, None, None, None], x.flip(3), x)


def random_rot90(x: torch.Tensor, rng: np.random.Generator, ks=(0, 1, 2)) -> torch.Tensor:
    """Each crop turned by ``k`` quarter turns, ``k`` drawn from ``ks`` per crop (one ``rot90`` per
    distinct ``k``, not per crop). Crops must be square."""
    k = rng.choice(ks, size=x.shape[0])
    if x.shape[2] != x.shape[3]:
        raise ValueError(f"random_rot90: square crops expected, got {x.shape[2]} x {x.shape[3]}")
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    for turns in np.unique(k):
        rows = torch.from_numpy(np.flatnonzero(k == turns))
        out[rows] = torch.rot90(x[rows], int(turns), dims=(2, 3))
    return out


def five_crops(x: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Centre and the four corners, each ``size`` x ``size`` (DeepLoc's test-time views)."""
    _, _, h, w = x.shape
    c0, c1 = (h - size) // 2, (w - size) // 2
    return [x[:, :, c0:c0 + size, c1:c1 + size], x[:, :, :size, :size], x[:, :, :size, w - size:],
            x[:, :, h - size:, :size], x[:, :, h - size:, w - size:]]
