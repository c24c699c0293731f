"""Cell geometry: a nucleus (rotated ellipse) inside an irregular cell body, rendered in batch.

Each cell has a nucleus of semi-axes ``a >= b`` pixels at angle ``theta``, jittered about the crop
centre (crops are centred on nuclei), and a cell body whose boundary radius around an offset
centre is ``R(phi) = R0 (1 + sum_k A_k cos(k phi + p_k))`` for k = 2..4. Masks are soft
(logistic edges about one pixel wide). ``scale`` multiplies every length, so a morphology drift or
a different magnification is a single number per cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numba import njit


@dataclass
class CellGeometry:
    nucleus: np.ndarray  # n x H x W soft nuclear mask in [0, 1]
    cell: np.ndarray  # n x H x W soft cell mask (contains the nucleus)
    cytoplasm: np.ndarray  # cell minus nucleus
    edge_distance: np.ndarray  # signed distance to the nuclear edge in pixels (> 0 outside)
    nuclear_angle: np.ndarray  # polar angle around the nucleus centre
    nuclear_radius: np.ndarray  # n, geometric-mean nuclear radius in pixels


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy, xx = yy - c, xx - c
    yy.flags.writeable = xx.flags.writeable = False  # cached: shared by every call
    return yy, xx


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def draw_cells(
    rng: np.random.Generator,
    n: int,
    size: int,
    scale: np.ndarray | float = 1.0,
    nucleus_radius: float = 8.5,
    cell_ratio: tuple[float, float] = (1.9, 2.5),
    jitter: float = 1.5,
) -> CellGeometry:
    """Draw ``n`` random cells on a ``size x size`` grid."""
    yy, xx = _grid(size)
    scale = np.broadcast_to(np.asarray(scale, np.float32), (n,))
    f32 = np.float32
    a = (nucleus_radius * scale * np.exp(rng.normal(0, 0.1, n))).astype(f32)
    b = (a * rng.uniform(0.72, 0.95, n)).astype(f32)
    theta = rng.uniform(0, np.pi, n).astype(f32)
    cx, cy = (rng.normal(0, jitter, (2, n))).astype(f32)
    dx = xx[None] - cx[:, None, None]
    dy = yy[None] - cy[:, None, None]
    ct, st = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u = dx * ct + dy * st
    v = -dx * st + dy * ct
    r_nuc = np.sqrt((u / a[:, None, None]) ** 2 + (v / b[:, None, None]) ** 2)
    rad = np.sqrt(a * b)
    edge = (r_nuc - 1.0) * rad[:, None, None]
    nucleus = _sigmoid(-edge * f32(2.0))

    # cell body: offset centre, harmonic boundary
    off = rng.uniform(0, 0.45, n).astype(f32) * a
    off_ang = rng.uniform(0, 2 * np.pi, n).astype(f32)
    ox = cx + off * np.cos(off_ang)
    oy = cy + off * np.sin(off_ang)
    ex = xx[None] - ox[:, None, None]
    ey = yy[None] - oy[:, None, None]
    phi = np.arctan2(ey, ex)
    r0 = (rad * rng.uniform(*cell_ratio, n)).astype(f32)
    boundary = np.ones_like(phi)
    for k in (2, 3, 4):
        amp = rng.normal(0, 0.07, n).astype(f32)[:, None, None]
        ph = rng.uniform(0, 2 * np.pi, n).astype(f32)[:, None, None]
        boundary += amp * np.cos(k * phi + ph)
    r_cell = np.sqrt(ex**2 + ey**2) - r0[:, None, None] * boundary
    cell = np.maximum(_sigmoid(-r_cell * f32(1.2)), nucleus)
    cytoplasm = np.clip(cell - nucleus, 0.0, 1.0)
    return CellGeometry(
        nucleus=nucleus.astype(f32, copy=False),
        cell=cell.astype(f32, copy=False),
        cytoplasm=cytoplasm.astype(f32, copy=False),
        edge_distance=edge.astype(f32, copy=False),
        nuclear_angle=np.arctan2(dy, dx).astype(f32, copy=False),
        nuclear_radius=rad,
    )


def add_neighbours(
    rng: np.random.Generator,
    density: np.ndarray,
    cell: np.ndarray,
    expression: np.ndarray,
    rate: float,
    spacing: tuple[float, float] = (0.85, 1.15),
    max_neighbours: int = 3,
) -> np.ndarray:
    """Neighbouring cells of the same well intruding into each crop (crops come from fields).

    Crop ``i`` gets ``K_i ~ Poisson(rate)`` neighbours (at most ``max_neighbours``), each a copy of
    another cell ``j`` of the batch whose centre sits at distance ``(R_i + R_j) * U(spacing)`` in a
    uniform direction, ``R = sqrt(area / pi)`` the equivalent radius of the soft cell mask. Cells do
    not overlap: a neighbour shows only where nothing is yet,

        d_i <- d_i + (1 - occ_i) * shift(d_j) * e_j / e_i,    occ_i <- max(occ_i, shift(cell_j)),

    per channel, with ``occ_i`` starting at ``cell_i`` and ``e`` the per-cell, per-channel
    ``expression`` that ``acquire`` multiplies in (so a neighbour keeps its own brightness).
    ``density`` is ``n x C x H x W``, ``cell`` ``n x H x W``; returns a new density array.
    """
    n = density.shape[0]
    out = density.copy()
    if rate <= 0 or n < 2:
        return out
    radius = np.sqrt(cell.sum(axis=(1, 2)) / np.pi)
    counts = np.minimum(rng.poisson(rate, n), max_neighbours)
    pairs = []  # (i, j, dy, dx) in drawing order
    for i in np.flatnonzero(counts):
        for _ in range(int(counts[i])):
            j = int(rng.integers(n - 1))
            j += j >= i  # any other cell of the batch
            dist = (radius[i] + radius[j]) * rng.uniform(*spacing)
            ang = rng.uniform(0, 2 * np.pi)
            pairs.append((int(i), j, int(round(dist * np.sin(ang))), int(round(dist * np.cos(ang)))))
    if pairs:
        _paste_neighbours(out, np.ascontiguousarray(density, np.float32), np.ascontiguousarray(cell, np.float32),
                          np.ascontiguousarray(expression, np.float32), np.asarray(pairs, np.int64))
    return out


@njit(cache=True)
def _paste_neighbours(out, density, cell, expression, pairs):
    """``add_neighbours``' occlusion update for each (i, j, dy, dx) in order, in float32, touching
    only the overlap of the moved cell with the crop."""
    n_ch, h, w = density.shape[1], density.shape[2], density.shape[3]
    one = np.float32(1.0)
    occupied = np.empty((h, w), np.float32)
    current = -1
    for p in range(pairs.shape[0]):
        i, j, dy, dx = pairs[p, 0], pairs[p, 1], pairs[p, 2], pairs[p, 3]
        if i != current:
            occupied[:, :] = cell[i]
            current = i
        if abs(dy) >= h or abs(dx) >= w:
            continue
        y0, y1 = max(dy, 0), min(h + dy, h)
        x0, x1 = max(dx, 0), min(w + dx, w)
        for c in range(n_ch):
            e_i = expression[i, c]
            ratio = expression[j, c] / (e_i if e_i > np.float32(1e-6) else np.float32(1e-6))
            for y in range(y0, y1):
                for x in range(x0, x1):
                    out[i, c, y, x] += ((one - occupied[y, x]) * density[j, c, y - dy, x - dx]) * ratio
        for y in range(y0, y1):
            for x in range(x0, x1):
                moved = cell[j, y - dy, x - dx]
                if moved > occupied[y, x]:
                    occupied[y, x] = moved
