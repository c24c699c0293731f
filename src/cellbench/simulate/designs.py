"""Experiment designs: who is on which plate, well, day and microscope, and what that does.

COOS-7 design (seed 000, Table 2). Every class (one fluorescent protein per well) has 7 plates of
8 wells of a 384-well plate:

* 4 *training* plates imaged on the reference microscope, days 0-3 (a week apart):
  6 interior wells give Training and Test1 (a random 20 % hold-out of their cells),
  2 edge wells (row A/P or column 1/24) give Test2;
* 2 *Test3* plates reproduced months later (days 20, 21) on the same microscope;
* 1 *Test4* plate reproduced on another day and imaged on a second microscope.

Split sizes are the seed's (41,456 / 10,364 / 17,021 / 32,596 / 30,772) times ``size``. Crops are
centred on one cell and, as crops cut from fields of a culture, show parts of neighbouring cells of
the same well (``neighbours_per_crop``, ``cells.add_neighbours``).
Nuisance effects, each scaled by ``shift_severity`` (0 = none, 1 = default, > 1 stronger):
plate effects on expression, background, morphology, class appearance and focus; well effects on
expression; edge-well effects (evaporation: brighter, larger cells, more background); a late-day
drift in morphology, expression and class appearance; and the second microscope's optics and
camera. With ``shift_severity = 0`` every plate is a draw from one distribution, so Test1-4 are
exchangeable with Training.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from cellbench.crops import ChunkedCrops, rechunk

from ._params import reject_unknown
from .cells import add_neighbours, draw_cells
from .imaging import Microscope, acquire
from .phenotypes import COOS7_CLASSES, Appearance, localisation_pattern, nuclear_stain

COOS7_SPLIT_SIZES = {"train": 41456, "test1": 10364, "test2": 17021, "test3": 32596, "test4": 30772}
SPLITS = tuple(COOS7_SPLIT_SIZES)
PLATE_ROWS = string.ascii_uppercase[:16]  # 384-well plate: A-P x 1-24
PLATE_COLS = 24


@dataclass(frozen=True)
class Nuisance:
    """Sizes of the nuisance effects at ``shift_severity = 1`` (log-scale unless noted)."""

    plate_expression_sd: float = 0.25
    plate_background_sd: float = 0.3
    plate_morphology_sd: float = 0.05
    plate_appearance_sd: float = 0.06
    plate_focus_sd: float = 0.08
    well_expression_sd: float = 0.08
    edge_expression_shift: float = 0.3
    edge_morphology_shift: float = 0.06
    edge_background_shift: float = 0.5
    late_morphology_shift: float = -0.12
    late_expression_shift: float = -0.3
    late_appearance_sd: float = 0.22
    # second microscope, as multiplicative factors raised to the power ``shift_severity``
    scope_psf_factor: float = 1.2
    scope_gain_factor: float = 0.6
    scope_offset_factor: float = 2.0
    scope_read_noise_factor: float = 1.3
    scope_photon_factor: float = 0.9
    scope_vignetting_factor: float = 2.0
    # the seed's second instrument is the same model with the same 40x objective (Opera QHS, NA 0.9),
    # so the magnification does not change by default; set it to simulate another objective
    scope_pixel_scale_factor: float = 1.0


@dataclass(frozen=True)
class CoosDesign:
    """Parameters of the simulated COOS-7 experiment (see the module docstring)."""

    size: float = 0.05
    seed: int = 0
    shift_severity: float = 1.0
    crop_size: int = 64
    classes: tuple[str, ...] = COOS7_CLASSES
    plates_train: int = 4
    plates_test3: int = 2
    plates_test4: int = 1
    wells_per_plate: int = 8
    edge_wells_per_train_plate: int = 2
    test1_fraction: float = 10364 / (41456 + 10364)
    class_imbalance: float = 0.15
    sites_per_well: int = 12
    chunk_cells: int = 2048
    # crops are cut from fields of a culture: neighbouring cells of the same well intrude from the
    # sides (Poisson mean per crop; 0 = isolated cells)
    neighbours_per_crop: float = 1.0
    # cells of one well differ: organelle counts and extents (log-normal SD per cell, see
    # phenotypes.PER_CELL) and the cell's distance from the focal plane (PSF widened by
    # exp(cell_defocus_sd * |N(0, 1)|)); both are biology and optics within a well, not shifts
    cell_appearance_sd: float = 0.35
    cell_defocus_sd: float = 0.25
    nuisance: Nuisance = field(default_factory=Nuisance)

    @classmethod
    def from_params(cls, params: dict) -> CoosDesign:
        """Build from a parameters dict (e.g. ``ingestion.simulation``), rejecting unknown keys."""
        params = dict(params)
        params.pop("design", None)
        reject_unknown(params, cls, "COOS-7 simulation")
        nuis = params.pop("nuisance", None) or {}
        reject_unknown(nuis, Nuisance, "nuisance")
        if "classes" in params and params["classes"] is not None:
            params["classes"] = tuple(params["classes"])
        design = cls(**params, nuisance=Nuisance(**nuis))
        design.validate()
        return design

    def validate(self) -> None:
        if not np.isfinite(self.shift_severity) or self.shift_severity < 0:
            raise ValueError(f"shift_severity must be >= 0, got {self.shift_severity}")
        if not self.size > 0:
            raise ValueError(f"size must be > 0, got {self.size}")
        for name in ("plates_train", "plates_test3", "plates_test4", "wells_per_plate", "sites_per_well", "chunk_cells"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be a positive count, got {getattr(self, name)}")
        if self.edge_wells_per_train_plate < 1 or self.edge_wells_per_train_plate >= self.wells_per_plate:
            raise ValueError(
                f"edge_wells_per_train_plate must be in 1..wells_per_plate-1 ({self.wells_per_plate - 1}), "
                f"got {self.edge_wells_per_train_plate}"
            )
        n_edge = 2 * PLATE_COLS + 2 * (len(PLATE_ROWS) - 2)
        n_interior = len(PLATE_ROWS) * PLATE_COLS - n_edge
        if self.wells_per_plate > n_interior or self.edge_wells_per_train_plate > n_edge:
            raise ValueError(
                f"impossible plate layout: a 384-well plate has {n_interior} interior and {n_edge} edge "
                f"wells, asked for {self.wells_per_plate} wells with {self.edge_wells_per_train_plate} at the edge"
            )
        for name in ("neighbours_per_crop", "cell_appearance_sd", "cell_defocus_sd"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not 0 < self.test1_fraction < 1:
            raise ValueError(f"test1_fraction must be in (0, 1), got {self.test1_fraction}")
        if self.crop_size < 16:
            raise ValueError(f"crop_size must be >= 16 pixels, got {self.crop_size}")
        unknown = [c for c in self.classes if c not in COOS7_CLASSES]
        if unknown or not self.classes:
            raise ValueError(f"unknown COOS-7 class(es) {unknown}; expected a subset of {list(COOS7_CLASSES)}")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be unique, got {list(self.classes)}")


def _well_name(rng: np.random.Generator, edge: bool, taken: set[str]) -> str:
    while True:
        if edge:
            side = rng.integers(4)
            if side < 2:
                r, c = PLATE_ROWS[0 if side == 0 else -1], int(rng.integers(1, PLATE_COLS + 1))
            else:
                r, c = PLATE_ROWS[int(rng.integers(len(PLATE_ROWS)))], 1 if side == 2 else PLATE_COLS
        else:
            r, c = PLATE_ROWS[int(rng.integers(1, len(PLATE_ROWS) - 1))], int(rng.integers(2, PLATE_COLS))
        name = f"{r}{c:02d}"
        if name not in taken:
            taken.add(name)
            return name


def coos7_layout(design: CoosDesign) -> pd.DataFrame:
    """One row per well: class, plate, well, split pool, day, microscope, edge flag, cell count."""
    design.validate()
    rng = np.random.default_rng(np.random.SeedSequence([design.seed, 7001]))
    n_cls = len(design.classes)
    weights = 1.0 + design.class_imbalance * rng.uniform(-1, 1, n_cls)
    weights = weights / weights.sum()
    rows = []
    plate_no = 0
    for label_name in design.classes:
        label = COOS7_CLASSES.index(label_name)
        k = design.classes.index(label_name)
        per_class = {s: COOS7_SPLIT_SIZES[s] * design.size * weights[k] for s in SPLITS}
        plates = (
            [("train", d, "opera_a") for d in range(design.plates_train)]
            + [("test3", 20 + d, "opera_a") for d in range(design.plates_test3)]
            + [("test4", 30 + d, "opera_b") for d in range(design.plates_test4)]
        )
        for pool, day, scope in plates:
            plate_no += 1
            taken: set[str] = set()
            plate = f"P{plate_no:03d}"
            n_edge = design.edge_wells_per_train_plate if pool == "train" else 0
            for w in range(design.wells_per_plate):
                edge = w < n_edge
                split_pool = "test2" if (pool == "train" and edge) else pool
                if split_pool == "train":
                    target = (per_class["train"] + per_class["test1"]) / (
                        design.plates_train * (design.wells_per_plate - n_edge)
                    )
                elif split_pool == "test2":
                    target = per_class["test2"] / (design.plates_train * n_edge)
                elif split_pool == "test3":
                    target = per_class["test3"] / (design.plates_test3 * design.wells_per_plate)
                else:
                    target = per_class["test4"] / (design.plates_test4 * design.wells_per_plate)
                rows.append(
                    dict(
                        label=label,
                        label_name=label_name,
                        plate=plate,
                        well=_well_name(rng, edge, taken),
                        pool=split_pool,
                        day=day,
                        microscope=scope,
                        edge=edge,
                        n_cells=max(int(rng.poisson(target)), 2),
                    )
                )
    return pd.DataFrame(rows)


@dataclass
class _PlateEffects:
    expression: np.ndarray  # per channel multiplier
    background: np.ndarray
    morphology: float
    focus: float
    appearance: Appearance
    scope: Microscope


def _plate_effects(design: CoosDesign, layout: pd.DataFrame) -> dict[str, _PlateEffects]:
    s = design.shift_severity
    nz = design.nuisance
    rng = np.random.default_rng(np.random.SeedSequence([design.seed, 7002]))
    base_app = Appearance()
    # one late-period drift for the months-later experiments, another for the other lab's day
    late_app = {"test3": base_app.perturbed(rng, s * nz.late_appearance_sd),
                "test4": base_app.perturbed(rng, s * nz.late_appearance_sd)}
    ref = Microscope()
    scope_b = ref.scaled(
        psf_sigma=nz.scope_psf_factor**s,
        gain=nz.scope_gain_factor**s,
        offset=nz.scope_offset_factor**s,
        read_noise=nz.scope_read_noise_factor**s,
        vignetting=nz.scope_vignetting_factor**s,
        pixel_scale=nz.scope_pixel_scale_factor**s,
    )
    scope_b = replace(scope_b, name="opera_b", photons=tuple(p * nz.scope_photon_factor**s for p in ref.photons))
    effects = {}
    for plate, grp in layout.groupby("plate", sort=True):
        pool = grp["pool"].iloc[0]  # a training plate's wells are "train" or "test2"
        late = pool in ("test3", "test4")
        expr = np.exp(rng.normal(0, s * nz.plate_expression_sd, 2) + (s * nz.late_expression_shift if late else 0))
        back = np.exp(rng.normal(0, s * nz.plate_background_sd, 2))
        morph = float(np.exp(rng.normal(0, s * nz.plate_morphology_sd) + (s * nz.late_morphology_shift if late else 0)))
        focus = float(np.exp(rng.normal(0, s * nz.plate_focus_sd)))
        app = (late_app[pool] if late else base_app).perturbed(rng, s * nz.plate_appearance_sd)
        scope = scope_b if grp["microscope"].iloc[0] == "opera_b" else ref
        effects[plate] = _PlateEffects(expr, back, morph, focus, app, scope)
    return effects


def _render_well(design, row, eff: _PlateEffects, class_expr: float, rng) -> np.ndarray:
    s, nz, n = design.shift_severity, design.nuisance, int(row.n_cells)
    well_expr = np.exp(rng.normal(0, s * nz.well_expression_sd, 2))
    edge = bool(row.edge)
    expr_mult = eff.expression * well_expr * (np.exp(s * nz.edge_expression_shift) if edge else 1.0)
    morph = eff.morphology * eff.scope.pixel_scale * (np.exp(s * nz.edge_morphology_shift) if edge else 1.0)
    background = eff.background * (np.exp(s * nz.edge_background_shift) if edge else 1.0)
    scope = replace(eff.scope, psf_sigma=eff.scope.psf_sigma * eff.focus,
                    background=tuple(b * m for b, m in zip(eff.scope.background, background)))
    scale = morph * np.exp(rng.normal(0, 0.08, n)).astype(np.float32)
    geom = draw_cells(rng, n, design.crop_size, scale=scale)
    protein, extra = localisation_pattern(int(row.label), geom, rng,
                                          eff.appearance.per_cell(rng, n, design.cell_appearance_sd))
    dna = nuclear_stain(geom, rng, eff.appearance)
    density = np.stack([protein, dna], axis=1)
    expression = np.stack(
        [class_expr * np.exp(rng.normal(0, 0.35, n)), np.exp(rng.normal(0, 0.12, n))], axis=1
    ).astype(np.float32) * expr_mult.astype(np.float32)[None]
    density = add_neighbours(rng, density, geom.cell, expression, design.neighbours_per_crop)
    extra_blur = np.stack([extra, np.zeros(n, np.float32)], axis=1)
    if design.cell_defocus_sd > 0:  # the PSF of an out-of-focus cell: sigma * defocus for both channels
        defocus = np.exp(design.cell_defocus_sd * np.abs(rng.standard_normal(n))).astype(np.float32)
        extra_blur = np.sqrt(extra_blur**2 + (np.float32(scope.psf_sigma) ** 2 * (defocus**2 - 1))[:, None])
    return acquire(rng, density, expression, scope, extra_blur)


def simulate_coos7(design: CoosDesign) -> ChunkedCrops:
    """Simulated COOS-7 crops (uint16, ``N x 2 x S x S``; channel 0 protein, 1 nucleus), lazily.

    Deterministic for ``design.seed``: every well has its own random stream, so the result does not
    depend on chunking. Chunks hold whole wells, about ``chunk_cells`` crops each.
    """
    design.validate()
    layout = coos7_layout(design)
    effects = _plate_effects(design, layout)
    crng = np.random.default_rng(np.random.SeedSequence([design.seed, 7003]))
    class_expr = {lab: float(np.exp(crng.normal(0, 0.3))) for lab in range(len(COOS7_CLASSES))}

    def pieces():
        for idx, row in enumerate(layout.itertuples(index=False)):
            rng = np.random.default_rng(np.random.SeedSequence([design.seed, 7100, idx]))
            imgs = _render_well(design, row, effects[row.plate], class_expr[int(row.label)], rng)
            n = imgs.shape[0]
            split = np.full(n, row.pool, dtype=object)
            if row.pool == "train":
                k = int(round(design.test1_fraction * n))
                split[rng.permutation(n)[:k]] = "test1"
            meta = {
                "Metadata_Split": split.astype(str),
                "Metadata_Label": np.full(n, int(row.label), np.int64),
                "Metadata_LabelName": np.full(n, row.label_name, dtype=object),
                "Metadata_Source": np.full(n, row.microscope, dtype=object),
                "Metadata_Batch": np.full(n, f"day{row.day:02d}", dtype=object),
                "Metadata_Plate": np.full(n, row.plate, dtype=object),
                "Metadata_Well": np.full(n, row.well, dtype=object),
                "Metadata_Site": rng.integers(1, design.sites_per_well + 1, n).astype(np.int64),
                "Metadata_EdgeWell": np.full(n, bool(row.edge)),
            }
            yield imgs, pd.DataFrame(meta)

    def chunks():
        return rechunk(pieces(), design.chunk_cells)

    return ChunkedCrops(chunks, n_crops=int(layout["n_cells"].sum()), info={"layout": layout})
