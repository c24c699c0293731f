"""Image formation: a microscope is a parameter set.

For channel ``c`` of a cell with object density ``d`` (mean 1 in the cell) and expression ``e``:

    lambda(x) = photons_c * e * illumination(x) * (PSF_sigma * d)(x) + background_c * illumination(x)
    ADU(x)    = gain * Poisson(lambda(x)) + offset + Normal(0, read_noise)

quantised to unsigned 16 bit (clipped to [0, 65535]); the counts are exact Poisson draws and the
camera runs as one compiled pass (``_camera_kernel``). The illumination field of the full camera
frame is a radial fall-off ``1 - vignetting * r^2`` plus a tilt; each crop sits at a random
position of that frame, so crops see different parts of it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ._camera_kernel import camera_kernel, kernel_seed
from .noise import gaussian_blur


@dataclass(frozen=True)
class Microscope:
    name: str = "opera_a"
    psf_sigma: float = 1.0  # px
    gain: float = 2.0  # ADU per photo-electron
    offset: float = 100.0  # ADU
    read_noise: float = 3.0  # ADU
    photons: tuple[float, ...] = (60.0, 120.0)  # per channel, per unit density at expression 1
    background: tuple[float, ...] = (6.0, 4.0)  # photons per pixel
    vignetting: float = 0.15
    tilt: float = 0.05
    pixel_scale: float = 1.0  # magnification relative to the reference instrument
    frame: int = 1000  # px, camera frame size for the illumination field

    def scaled(self, **factors: float) -> Microscope:
        """A copy with the named numeric fields multiplied by the given factors."""
        return replace(self, **{k: getattr(self, k) * v for k, v in factors.items()})


def illumination(rng: np.random.Generator, n: int, size: int, scope: Microscope) -> np.ndarray:
    """Illumination seen by ``n`` crops at random positions of the frame (``n x H x W``)."""
    half = scope.frame / 2.0
    pos = rng.uniform(-half + size, half - size, (n, 2)).astype(np.float32)
    off = np.arange(size, dtype=np.float32) - size / 2
    y = (pos[:, 0, None] + off[None]) / half  # n x H, frame coordinates in [-1, 1]
    x = (pos[:, 1, None] + off[None]) / half
    r2 = y[:, :, None] ** 2 + x[:, None, :] ** 2
    field = 1.0 - scope.vignetting * r2 + scope.tilt * x[:, None, :]
    return np.clip(field, 0.05, None).astype(np.float32)


def acquire(
    rng: np.random.Generator,
    density: np.ndarray,
    expression: np.ndarray,
    scope: Microscope,
    extra_blur: np.ndarray | None = None,
) -> np.ndarray:
    """Image ``n x C x H x W`` densities with per-cell, per-channel ``expression`` (``n x C``)."""
    n, c, size, _ = density.shape
    if len(scope.photons) != c or len(scope.background) != c:
        raise ValueError(
            f"microscope {scope.name!r} has {len(scope.photons)} photon levels and "
            f"{len(scope.background)} backgrounds, expected {c} (one per channel)"
        )
    illum = illumination(rng, n, size, scope)
    lam = np.empty((n, c, size, size), np.float32)
    for ch in range(c):
        sigma = np.full(n, scope.psf_sigma, np.float32)
        if extra_blur is not None:
            sigma = np.sqrt(sigma**2 + extra_blur[:, ch] ** 2)
        blurred = np.clip(gaussian_blur(density[:, ch], sigma), 0.0, None)
        lam[:, ch] = illum * (
            np.float32(scope.photons[ch]) * expression[:, ch, None, None] * blurred
            + np.float32(scope.background[ch])
        )
    out = np.empty((n * c, size * size), np.uint16)
    camera_kernel(lam.reshape(n * c, size * size), float(scope.gain), float(scope.offset),
                  float(scope.read_noise), kernel_seed(rng), out)
    return out.reshape(n, c, size, size)
