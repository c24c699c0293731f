"""Protein localisation patterns of the seven COOS-7 classes, and the nuclear stain.

Each pattern returns a non-negative density per cell (``n x H x W``, mean about 1 inside the
cell) drawn as the compartment looks in a 40x confocal image of mouse cells (seed 000, Table 1):

0 ER                    reticular network (zero crossings of a band-pass field) through the
                        cytoplasm, denser near the nucleus, continuous with the nuclear envelope
1 IMM                   tubular mitochondrial fragments: a finer network gated by a coarse field
2 Golgi                 compact perinuclear ribbon on one side of the nucleus
3 Peroxisomes           many small uniform puncta (sub-resolution points, shaped by the PSF)
4 Early endosome        fewer, larger, brighter-varying puncta biased towards the nucleus
5 Cytosol               diffuse cytoplasmic fill, weaker in the nucleus
6 Nuclear envelope      a thin rim at the nuclear edge

``Appearance`` holds the numbers that define each pattern; plate, day and microscope effects
perturb them (morphology drift), which is how a later experiment can look subtly different.
Cells of one well also differ from each other (organelle number, extent, thickness; ``per_cell``):
the sizes and counts in ``PER_CELL`` may be arrays with one value per cell. The network
frequencies stay per plate (one band-pass filter per call).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from .cells import CellGeometry
from .noise import bandpass_noise, gaussian_blur, sparse_points

COOS7_CLASSES: tuple[str, ...] = (
    "Endoplasmic Reticulum",
    "Inner Mitochondrial Membrane",
    "Golgi",
    "Peroxisomes",
    "Early Endosome",
    "Cytosol",
    "Nuclear Envelope",
)


@dataclass(frozen=True)
class Appearance:
    er_frequency: float = 0.11  # cycles/px of the reticulum
    er_line_width: float = 0.45  # in band-pass sd units
    er_decay: float = 7.0  # px, perinuclear enrichment
    imm_frequency: float = 0.19
    imm_gate_frequency: float = 0.05
    golgi_angular_width: float = 0.55  # rad
    golgi_distance: float = 2.5  # px from the nuclear edge
    golgi_thickness: float = 2.5  # px
    peroxisome_count: float = 45.0
    endosome_count: float = 14.0
    endosome_size: float = 1.3  # px, intrinsic blur before the PSF
    endosome_decay: float = 6.0  # px
    cytosol_nuclear_fraction: float = 0.55
    envelope_width: float = 1.1  # px
    chromatin_contrast: float = 0.3
    chromocenter_count: float = 7.0

    def perturbed(self, rng: np.random.Generator, sd: float) -> Appearance:
        """Every positive parameter multiplied by ``exp(N(0, sd))`` (``sd = 0`` returns self)."""
        if sd <= 0:
            return self
        return replace(
            self, **{f.name: getattr(self, f.name) * float(np.exp(rng.normal(0, sd))) for f in fields(self)}
        )

    def per_cell(self, rng: np.random.Generator, n: int, sd: float) -> Appearance:
        """Cell-to-cell variation: each field of ``PER_CELL`` becomes ``n`` values, the plate's value
        times ``exp(N(0, sd))`` drawn per cell (``sd = 0`` returns self)."""
        if sd <= 0:
            return self
        draws = np.exp(rng.normal(0, sd, (len(PER_CELL), n))).astype(np.float32)
        return replace(self, **{name: np.float32(getattr(self, name)) * d for name, d in zip(PER_CELL, draws)})


# fields that vary from cell to cell within a well (Appearance.per_cell)
PER_CELL: tuple[str, ...] = (
    "er_line_width", "er_decay", "golgi_angular_width", "golgi_distance", "golgi_thickness",
    "peroxisome_count", "endosome_count", "endosome_size", "endosome_decay", "cytosol_nuclear_fraction",
    "envelope_width",
)


def _cellwise(value) -> np.ndarray | float:
    """A scalar as is; per-cell values as ``n x 1 x 1`` to broadcast over the image."""
    return np.asarray(value, np.float32).reshape(-1, 1, 1) if np.ndim(value) else value


def _normalise(density: np.ndarray, cell: np.ndarray) -> np.ndarray:
    mean = (density * cell).sum(axis=(1, 2)) / np.maximum(cell.sum(axis=(1, 2)), 1.0)
    return density / np.maximum(mean, 1e-6)[:, None, None]


def _network(rng, n, size, f0, width):
    field = bandpass_noise(rng, n, size, f0, f0 * 0.35)
    return np.exp(-((field / np.float32(width)) ** 2))


def _rim(geom: CellGeometry, width) -> np.ndarray:
    return np.exp(-((geom.edge_distance / _cellwise(np.float32(width))) ** 2))


def localisation_pattern(
    label: int, geom: CellGeometry, rng: np.random.Generator, app: Appearance
) -> tuple[np.ndarray, np.ndarray]:
    """Density of class ``label`` and an extra per-cell blur (px) for intrinsically large objects."""
    n, size, _ = geom.cell.shape
    cyto = geom.cytoplasm
    outside = np.maximum(geom.edge_distance, 0.0)
    extra_blur = np.zeros(n, np.float32)
    if label == 0:  # ER
        net = _network(rng, n, size, app.er_frequency, _cellwise(app.er_line_width))
        dens = cyto * net * (0.35 + np.exp(-outside / _cellwise(app.er_decay))) + 0.6 * _rim(geom, 1.2)
    elif label == 1:  # inner mitochondrial membrane
        tubes = _network(rng, n, size, app.imm_frequency, 0.35)
        gate = 0.5 * (np.tanh(2.0 * bandpass_noise(rng, n, size, app.imm_gate_frequency, 0.03)) + 1)
        dens = cyto * tubes * gate * (0.5 + np.exp(-outside / 10.0))
    elif label == 2:  # Golgi
        direction = rng.uniform(-np.pi, np.pi, n).astype(np.float32)[:, None, None]
        dphi = geom.nuclear_angle - direction  # wrapped to [-pi, pi]
        dphi -= np.float32(2 * np.pi) * np.round(dphi * np.float32(0.5 / np.pi))
        angular = np.exp(-(dphi**2) / (2 * _cellwise(app.golgi_angular_width) ** 2))
        radial = np.exp(-(((geom.edge_distance - _cellwise(app.golgi_distance)) / _cellwise(app.golgi_thickness)) ** 2))
        texture = 0.55 + 0.45 * np.tanh(1.5 * bandpass_noise(rng, n, size, 0.16, 0.05)) ** 2
        dens = geom.cell * angular * radial * texture * 6.0 + 0.04 * cyto
    elif label == 3:  # peroxisomes
        pts = sparse_points(rng, cyto, np.broadcast_to(np.float32(app.peroxisome_count), (n,)))
        dens = pts * 40.0 + 0.03 * cyto
    elif label == 4:  # early endosome
        weight = cyto * np.exp(-outside / _cellwise(app.endosome_decay))
        pts = sparse_points(rng, weight, np.broadcast_to(np.float32(app.endosome_count), (n,)))
        hits = np.flatnonzero(pts)
        pts.flat[hits] *= np.exp(rng.standard_normal(hits.size, dtype=np.float32) * np.float32(0.5))
        dens = gaussian_blur(pts, app.endosome_size) * 60.0 + 0.05 * cyto
    elif label == 5:  # cytosol
        mod = 1.0 + 0.15 * bandpass_noise(rng, n, size, 0.03, 0.02)
        dens = (cyto + _cellwise(app.cytosol_nuclear_fraction) * geom.nucleus) * mod
    elif label == 6:  # nuclear envelope
        dens = _rim(geom, app.envelope_width) * geom.cell + 0.04 * cyto
    else:
        raise ValueError(f"unknown COOS-7 class label {label}; expected 0..{len(COOS7_CLASSES) - 1}")
    dens = np.clip(dens, 0.0, None).astype(np.float32, copy=False)
    return _normalise(dens, geom.cell), extra_blur


def nuclear_stain(geom: CellGeometry, rng: np.random.Generator, app: Appearance) -> np.ndarray:
    """DNA stain: nucleus with band-pass chromatin texture and bright chromocenters (mouse cells)."""
    n, size, _ = geom.cell.shape
    chromatin = 1.0 + app.chromatin_contrast * bandpass_noise(rng, n, size, 0.15, 0.05)
    pts = sparse_points(rng, np.square(np.square(geom.nucleus)), np.full(n, app.chromocenter_count, np.float32))
    centers = gaussian_blur(pts, 1.2) * 12.0
    dens = np.clip(geom.nucleus * chromatin, 0.0, None) + centers * geom.nucleus
    return _normalise(dens.astype(np.float32, copy=False), geom.nucleus)
