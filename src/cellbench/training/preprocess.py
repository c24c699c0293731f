"""Per-crop intensity normalisations of the seeds (numpy in, float32 out)."""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def percentile_stretch(images: np.ndarray, low: float = 0.1, high: float = 99.9) -> np.ndarray:
    """DeepLoc: per crop and channel, clip at the ``high`` percentile, subtract the ``low``
    percentile and divide by the range when the range exceeds 1 (METHODS.md 1.2)."""
    x = np.asarray(images, np.float32)
    lo = np.percentile(x, low, axis=(2, 3), keepdims=True)
    hi = np.percentile(x, high, axis=(2, 3), keepdims=True)
    x = np.minimum(x, hi) - lo
    rng = hi - lo
    return np.where(rng > 1, x / np.where(rng > 1, rng, 1), x).astype(np.float32)


def minmax_per_crop(images: np.ndarray) -> np.ndarray:
    """PCI: every crop and channel min-max rescaled to [0, 1] (a constant channel becomes 0)."""
    x = np.asarray(images, np.float32)
    lo = x.min(axis=(2, 3), keepdims=True)
    hi = x.max(axis=(2, 3), keepdims=True)
    return ((x - lo) / np.where(hi > lo, hi - lo, 1)).astype(np.float32)


def to_vgg_rgb(images: np.ndarray, channel: int = 0) -> np.ndarray:
    """VGG16 transfer: one channel min-max scaled to 8-bit, repeated as RGB, ImageNet-normalised."""
    x = minmax_per_crop(np.asarray(images)[:, channel:channel + 1])
    x = np.round(x * 255.0) / 255.0
    x = np.repeat(x, 3, axis=1)
    return ((x - IMAGENET_MEAN[None, :, None, None]) / IMAGENET_STD[None, :, None, None]).astype(np.float32)


def max_normalise(images: np.ndarray, size: int | None = None) -> np.ndarray:
    """cytoVAE: each crop and channel divided by its maximum; zero-padded to ``size`` when given
    (the model's 68 x 68 input from 64 x 64 crops)."""
    x = np.asarray(images, np.float32)
    m = x.max(axis=(2, 3), keepdims=True)
    x = x / np.where(m > 0, m, 1)
    if size is not None and x.shape[-1] < size:
        p = size - x.shape[-1]
        x = np.pad(x, ((0, 0), (0, 0), (p // 2, p - p // 2), (p // 2, p - p // 2)))
    return x.astype(np.float32)


def half_max_normalise(images: np.ndarray) -> np.ndarray:
    """DeepProfiler (2018): per crop and channel, m = max / 2 and x -> (x - m) / m, in [-1, 1]."""
    x = np.asarray(images, np.float32)
    m = x.max(axis=(2, 3), keepdims=True) / 2
    return ((x - m) / np.where(m > 0, m, 1)).astype(np.float32)
