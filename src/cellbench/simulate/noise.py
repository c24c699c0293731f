"""Batched random fields and blurs in the Fourier domain (float32, one FFT per batch).

A band-pass field is white Gaussian noise filtered by an annulus
``H(f) = exp(-(|f| - f0)^2 / (2 bw^2))`` (``f`` in cycles/pixel), normalised to unit variance.
Its zero crossings draw networks whose mesh size is about ``1 / (2 f0)`` pixels, which is how the
reticular ER and tubular mitochondria are rendered. A Gaussian blur of standard deviation
``sigma`` (pixels) multiplies the spectrum by ``exp(-2 pi^2 sigma^2 |f|^2)`` (the PSF model).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import fft as sfft

from ._camera_kernel import kernel_seed, normal_fill


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """float32 standard normals of ``shape``, seeded by one draw of ``rng`` (compiled ziggurat,
    about three times faster than ``Generator.standard_normal`` here; see ``_camera_kernel``)."""
    out = np.empty(shape, np.float32)
    normal_fill(kernel_seed(rng), out)
    return out


@lru_cache(maxsize=8)
def _radial_frequency(size: int) -> np.ndarray:
    fy = np.fft.fftfreq(size).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(size).astype(np.float32)[None, :]
    return np.sqrt(fy**2 + fx**2)


@lru_cache(maxsize=256)
def _annulus(size: int, f0: float, bw: float) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the half-spectrum where the annulus gain exceeds 1e-4, and those gains."""
    f = _radial_frequency(size)
    h = np.exp(-((f - np.float32(f0)) ** 2) / np.float32(2 * bw * bw)).astype(np.float32).ravel()
    keep = np.flatnonzero(h > 1e-4)
    return keep, h[keep]


def bandpass_noise(rng: np.random.Generator, n: int, size: int, f0: float, bw: float) -> np.ndarray:
    """``n`` unit-variance band-pass random fields of ``size x size`` pixels.

    Only the frequencies where the annulus passes more than 1e-4 of the amplitude are drawn (the
    rest of the spectrum is zero), which is most of the cost saved for narrow bands.
    """
    keep, h = _annulus(size, float(f0), float(bw))
    half = size // 2 + 1
    spec = np.zeros((n, size * half), np.complex64)
    re_im = standard_normal(rng, (n, keep.size, 2))
    spec[:, keep] = (re_im[..., 0] + 1j * re_im[..., 1]) * h
    field = sfft.irfft2(spec.reshape(n, size, half), s=(size, size), workers=1).astype(np.float32, copy=False)
    sd = field.std(axis=(1, 2), keepdims=True)
    field /= np.maximum(sd, np.float32(1e-12))
    return field


def gaussian_blur(images: np.ndarray, sigma: np.ndarray | float) -> np.ndarray:
    """Blur ``n x H x W`` images with per-image Gaussian ``sigma`` (pixels), periodic boundary."""
    n, size, _ = images.shape
    f2 = _radial_frequency(size) ** 2
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float32), (n,))
    h = np.exp(np.float32(-2 * np.pi**2) * (sigma[:, None, None] ** 2) * f2[None])
    spec = sfft.rfft2(images, workers=1)
    spec *= h
    return sfft.irfft2(spec, s=(size, size), workers=1).astype(np.float32, copy=False)


def sparse_points(rng: np.random.Generator, weight: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Point process: each pixel fires with probability ``expected * weight / sum(weight)``.

    ``weight`` is ``n x H x W`` (non-negative), ``expected`` the mean number of points per image.
    Returns impulse images with log-normal amplitudes (mean 1).
    """
    total = weight.sum(axis=(1, 2), keepdims=True)
    p = weight * (np.asarray(expected, np.float32)[:, None, None] / np.maximum(total, 1e-6))
    hits = np.flatnonzero(rng.random(weight.shape, dtype=np.float32) < p)
    out = np.zeros(weight.shape, np.float32)
    out.flat[hits] = np.exp(rng.standard_normal(hits.size, dtype=np.float32) * np.float32(0.3) - np.float32(0.045))
    return out
