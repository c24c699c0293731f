"""A protein library (seed 002's Human Protein Atlas analyses, simulated): many proteins per
localisation class, each imaged in several cell lines, with the ground truth of every cell.

Every protein is one fluorescent-protein (or antibody) pattern with its own parameters: the
compartment's ``Appearance`` (phenotypes.py) perturbed per protein by ``exp(N(0, protein_sd))``,
and its own expression level. Each protein is imaged in ``images_per_protein`` different cell
lines (one image each, about ``cells_per_image`` cells); cell lines differ in morphology (nuclear
radius, cell-to-nucleus size ratio, chromatin texture), which is what Table 2 of seed 002 controls
for. Kinds of protein (``Metadata_Kind``):

* ``single``: one compartment of ``classes`` (``proteins_per_class`` each);
* ``rare``: the rare compartment (``rare_class``, default the nucleolar rim of Fig 4 D1), only
  ``rare_proteins`` proteins; the first one is the "known member" (MKI67 in the seed);
* ``multi``: two compartments ``(A, B)`` of ``multi_pairs`` mixed in every cell,
  ``density = (1 - p) * d_A + p * d_B`` with both densities normalised to mean 1 in the cell, so
  ``p`` (``Metadata_Proportion``) is exactly the share of the cell's protein that sits in B. The
  protein has a mean share ``m ~ U(0.2, 0.8)``; each cell draws ``p ~ Beta(m k, (1 - m) k)``,
  ``k = mix_concentration`` (seed 002 Fig 5: cytosol-and-nucleoplasm, nucleoli-and-nucleus);
* ``variable``: spatially variable proteins (Fig 6: SMPDL3A, DECR1, NEK1): each cell belongs to
  one sub-population (``Metadata_Subpopulation``) localised to one of the protein's compartments,
  in proportions drawn per protein; these images have ``variable_cells`` cells.

Compartments beyond COOS-7's seven: ``Nucleoplasm`` (diffuse nuclear fill sparing the nucleoli),
``Nucleoli`` (1-4 large nuclear bodies) and ``Nucleolar Rim`` (a ring around each nucleolus). A
cell's nucleoli are drawn once and shared by all its nuclear compartments.

``Metadata_Split``: ``train`` for a ``train_fraction`` of the ``single`` proteins of each class
(what a supervised network such as DeepLoc may learn from), ``test`` for the other single ones,
``explore`` for rare, multi-localising and variable proteins. ``Metadata_Plate`` is the cell line
and ``Metadata_Well`` the image, so paired cell inpainting pairs cells of one image, as in the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from cellbench.crops import ChunkedCrops, rechunk

from ._params import reject_unknown
from .cells import CellGeometry, add_neighbours, draw_cells
from .imaging import Microscope, acquire
from .noise import bandpass_noise, gaussian_blur, sparse_points
from .phenotypes import COOS7_CLASSES, Appearance, _normalise, localisation_pattern, nuclear_stain

NUCLEAR_COMPARTMENTS = ("Nucleoplasm", "Nucleoli", "Nucleolar Rim")
LIBRARY_COMPARTMENTS: tuple[str, ...] = COOS7_CLASSES + NUCLEAR_COMPARTMENTS

# morphology of each cell line: nuclear radius (px), cell radius / nuclear radius range, chromatin
# contrast of the DNA stain (names of Human Protein Atlas lines, the numbers are this simulator's)
CELL_LINES: dict[str, dict] = {
    "U-2 OS": {"nucleus_radius": 8.5, "cell_ratio": (1.9, 2.5), "chromatin_contrast": 0.3},
    "A-431": {"nucleus_radius": 7.0, "cell_ratio": (1.5, 1.9), "chromatin_contrast": 0.45},
    "U-251 MG": {"nucleus_radius": 9.5, "cell_ratio": (2.2, 2.9), "chromatin_contrast": 0.2},
    "HEK 293": {"nucleus_radius": 7.8, "cell_ratio": (1.4, 1.7), "chromatin_contrast": 0.35},
}
KINDS = ("single", "rare", "multi", "variable")


@dataclass(frozen=True)
class LibraryDesign:
    """Parameters of the simulated protein library (see the module docstring)."""

    seed: int = 0
    crop_size: int = 64
    classes: tuple[str, ...] = COOS7_CLASSES + ("Nucleoplasm", "Nucleoli")
    proteins_per_class: int = 6
    rare_class: str = "Nucleolar Rim"
    rare_proteins: int = 3
    multi_pairs: tuple[tuple[str, str], ...] = (("Cytosol", "Nucleoplasm"), ("Nucleoli", "Nucleoplasm"))
    multi_proteins_per_pair: int = 4
    variable_proteins: tuple[tuple[str, ...], ...] = (
        ("Inner Mitochondrial Membrane", "Nucleoli"),
        ("Cytosol", "Inner Mitochondrial Membrane"),
        ("Nuclear Envelope", "Nucleoli"),
    )
    variable_cells: int = 48
    cell_lines: tuple[str, ...] = ("U-2 OS", "A-431", "U-251 MG")
    images_per_protein: int = 2
    cells_per_image: float = 12.0
    min_cells_per_image: int = 5  # the seed drops images with fewer than 5 cells
    protein_sd: float = 0.25
    expression_sd: float = 0.4
    mix_concentration: float = 8.0
    train_fraction: float = 0.5
    neighbours_per_crop: float = 0.5
    cell_appearance_sd: float = 0.3
    cell_defocus_sd: float = 0.2
    chunk_cells: int = 2048

    @classmethod
    def from_params(cls, params: dict) -> LibraryDesign:
        """Build from a parameters dict (``ingestion.simulation`` with ``design: protein_library``),
        rejecting unknown keys."""
        params = dict(params)
        params.pop("design", None)
        reject_unknown(params, cls, "protein library simulation")
        for key in ("classes", "cell_lines"):
            if params.get(key) is not None:
                params[key] = tuple(params[key])
        for key in ("multi_pairs", "variable_proteins"):
            if params.get(key) is not None:
                params[key] = tuple(tuple(p) for p in params[key])
        design = cls(**params)
        design.validate()
        return design

    def validate(self) -> None:
        def known(where: str, names) -> None:
            bad = [c for c in names if c not in LIBRARY_COMPARTMENTS]
            if bad:
                raise ValueError(f"{where}: unknown compartment(s) {bad}; expected names from {list(LIBRARY_COMPARTMENTS)}")

        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be a non-empty list of distinct compartments, got {list(self.classes)}")
        known("classes", self.classes)
        known("rare_class", [self.rare_class])
        if self.rare_class in self.classes:
            raise ValueError(f"rare_class {self.rare_class!r} must not also be one of classes")
        for where, groups in (("multi_pairs", self.multi_pairs), ("variable_proteins", self.variable_proteins)):
            for group in groups:
                known(where, group)
                if len(group) < 2 or len(set(group)) != len(group) or (where == "multi_pairs" and len(group) != 2):
                    raise ValueError(f"{where}: each entry needs {'two' if where == 'multi_pairs' else 'two or more'}"
                                     f" distinct compartments, got {list(group)}")
        bad_lines = [c for c in self.cell_lines if c not in CELL_LINES]
        if bad_lines or not self.cell_lines:
            raise ValueError(f"cell_lines: unknown {bad_lines}; expected names from {list(CELL_LINES)}")
        for name in ("proteins_per_class", "images_per_protein", "chunk_cells", "variable_cells",
                     "min_cells_per_image"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be a positive count, got {getattr(self, name)}")
        for name in ("rare_proteins", "multi_proteins_per_pair"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.images_per_protein > len(self.cell_lines):
            raise ValueError(f"images_per_protein ({self.images_per_protein}) must be at most the number of "
                             f"cell_lines ({len(self.cell_lines)}): a protein has one image per cell line")
        for name in ("protein_sd", "expression_sd", "neighbours_per_crop", "cell_appearance_sd", "cell_defocus_sd"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.cells_per_image > 0 or not self.mix_concentration > 0:
            raise ValueError("cells_per_image and mix_concentration must be > 0")
        if not 0 < self.train_fraction < 1:
            raise ValueError(f"train_fraction must be in (0, 1), got {self.train_fraction}")
        if self.crop_size < 48:
            raise ValueError(f"crop_size must be >= 48 pixels (cell lines are up to 27 px in radius), got {self.crop_size}")


@dataclass(frozen=True)
class NuclearAppearance:
    """Pattern parameters of the nuclear compartments."""

    nucleoli_count: float = 2.0  # Poisson mean, 1-4 per cell
    nucleoli_size: float = 2.6  # px, blur of the nucleolar seeds (nucleoli about 4 px in radius)
    rim_width: float = 0.9  # px
    nucleoplasm_contrast: float = 0.2

    def perturbed(self, rng: np.random.Generator, sd: float) -> NuclearAppearance:
        return replace(self, **{k: v * float(np.exp(rng.normal(0, sd))) for k, v in vars(self).items()})


@dataclass(frozen=True)
class Protein:
    name: str
    kind: str
    compartments: tuple[str, ...]
    appearance: Appearance
    nuclear: NuclearAppearance
    expression: float
    mean_share: float  # multi: mean share of the second compartment; variable: share of each sub-population
    shares: tuple[float, ...]
    split: str


def library_proteins(design: LibraryDesign) -> list[Protein]:
    """The proteins of the library, in a fixed order (single by class, rare, multi, variable)."""
    design.validate()
    rng = np.random.default_rng(np.random.SeedSequence([design.seed, 8001]))
    specs: list[tuple[str, tuple[str, ...], str]] = []
    for cls in design.classes:
        n_train = max(1, int(round(design.train_fraction * design.proteins_per_class)))
        order = rng.permutation(design.proteins_per_class)
        specs += [("single", (cls,), "train" if order[i] < n_train else "test") for i in range(design.proteins_per_class)]
    specs += [("rare", (design.rare_class,), "explore")] * design.rare_proteins
    for pair in design.multi_pairs:
        specs += [("multi", tuple(pair), "explore")] * design.multi_proteins_per_pair
    specs += [("variable", tuple(g), "explore") for g in design.variable_proteins]
    proteins = []
    for i, (kind, comps, split) in enumerate(specs):
        shares = tuple(rng.dirichlet(np.full(len(comps), 3.0))) if kind == "variable" else ()
        proteins.append(Protein(
            name=f"PRT{i + 1:04d}", kind=kind, compartments=comps,
            appearance=Appearance().perturbed(rng, design.protein_sd),
            nuclear=NuclearAppearance().perturbed(rng, design.protein_sd),
            expression=float(np.exp(rng.normal(0, design.expression_sd))),
            mean_share=float(rng.uniform(0.2, 0.8)) if kind == "multi" else float("nan"),
            shares=shares, split=split))
    return proteins


def library_layout(design: LibraryDesign) -> pd.DataFrame:
    """One row per image: protein, kind, compartments, cell line, split and cell count."""
    proteins = library_proteins(design)
    rng = np.random.default_rng(np.random.SeedSequence([design.seed, 8002]))
    rows = []
    for p in proteins:
        lines = rng.choice(len(design.cell_lines), design.images_per_protein, replace=False)
        for k in sorted(lines):
            mean = design.variable_cells if p.kind == "variable" else design.cells_per_image
            rows.append(dict(protein=p.name, kind=p.kind, compartments="|".join(p.compartments),
                             cell_line=design.cell_lines[k], split=p.split,
                             n_cells=max(int(rng.poisson(mean)), design.min_cells_per_image)))
    return pd.DataFrame(rows)


def _nucleoli(geom: CellGeometry, rng: np.random.Generator, nuc: NuclearAppearance) -> np.ndarray:
    """Soft masks (``n x H x W`` in [0, 1]) of 1-4 nucleoli per cell inside the nucleus core."""
    n = geom.nucleus.shape[0]
    core = np.square(np.square(geom.nucleus))
    counts = np.clip(rng.poisson(nuc.nucleoli_count, n), 1, 4).astype(np.float32)
    seeds = sparse_points(rng, core, counts)
    empty = seeds.reshape(n, -1).max(axis=1) == 0  # no seed fired: put one at the nuclear centre
    for i in np.flatnonzero(empty):
        seeds[i].flat[np.argmax(core[i])] = 1.0
    blobs = gaussian_blur(np.minimum(seeds, 1.0), nuc.nucleoli_size)
    peak = np.maximum(blobs.reshape(n, -1).max(axis=1), 1e-6)[:, None, None]
    return (0.5 * (np.tanh(8.0 * (blobs / peak - 0.35)) + 1.0) * geom.nucleus).astype(np.float32)


def compartment_density(name: str, geom: CellGeometry, rng: np.random.Generator, app: Appearance,
                        nuc: NuclearAppearance, nucleoli: np.ndarray) -> np.ndarray:
    """Density (``n x H x W``, mean 1 in the cell) of one compartment for every cell of ``geom``."""
    if name in COOS7_CLASSES:
        dens, _ = localisation_pattern(COOS7_CLASSES.index(name), geom, rng, app)
        return dens
    n, size, _ = geom.cell.shape
    if name == "Nucleoplasm":
        texture = 1.0 + nuc.nucleoplasm_contrast * bandpass_noise(rng, n, size, 0.12, 0.05)
        dens = geom.nucleus * np.clip(texture, 0.0, None) * (1.0 - 0.85 * nucleoli) + 0.02 * geom.cytoplasm
    elif name == "Nucleoli":
        dens = nucleoli * 4.0 + 0.03 * geom.nucleus
    elif name == "Nucleolar Rim":
        smooth = gaussian_blur(nucleoli, 0.5 * nuc.rim_width)
        gy, gx = np.gradient(smooth, axis=(1, 2))
        dens = np.sqrt(gy**2 + gx**2) * geom.nucleus * 6.0 + 0.02 * geom.nucleus
    else:
        raise ValueError(f"unknown compartment {name!r}; expected one of {list(LIBRARY_COMPARTMENTS)}")
    return _normalise(np.clip(dens, 0.0, None).astype(np.float32, copy=False), geom.cell)


def _render_image(design: LibraryDesign, protein: Protein, cell_line: str, n: int, rng) -> tuple[np.ndarray, dict]:
    line = CELL_LINES[cell_line]
    scale = np.exp(rng.normal(0, 0.08, n)).astype(np.float32)
    geom = draw_cells(rng, n, design.crop_size, scale=scale, nucleus_radius=line["nucleus_radius"],
                      cell_ratio=line["cell_ratio"])
    app = protein.appearance.per_cell(rng, n, design.cell_appearance_sd)
    nucleoli = _nucleoli(geom, rng, protein.nuclear)
    dens = [compartment_density(c, geom, rng, app, protein.nuclear, nucleoli) for c in protein.compartments]
    share = np.full(n, np.nan)
    sub = np.full(n, -1, np.int64)
    if protein.kind == "multi":
        k = design.mix_concentration
        share = rng.beta(protein.mean_share * k, (1 - protein.mean_share) * k, n)
        protein_density = (1 - share)[:, None, None] * dens[0] + share[:, None, None] * dens[1]
    elif protein.kind == "variable":
        sub = rng.choice(len(dens), n, p=np.asarray(protein.shares) / np.sum(protein.shares))
        protein_density = np.stack(dens)[sub, np.arange(n)]
    else:
        protein_density = dens[0]
    dna = nuclear_stain(geom, rng, replace(protein.appearance, chromatin_contrast=line["chromatin_contrast"]))
    density = np.stack([protein_density.astype(np.float32), dna], axis=1)
    expression = np.stack([protein.expression * np.exp(rng.normal(0, 0.35, n)), np.exp(rng.normal(0, 0.12, n))],
                          axis=1).astype(np.float32)
    density = add_neighbours(rng, density, geom.cell, expression, design.neighbours_per_crop)
    blur = np.zeros((n, 2), np.float32)
    if design.cell_defocus_sd > 0:
        defocus = np.exp(design.cell_defocus_sd * np.abs(rng.standard_normal(n))).astype(np.float32)
        blur[:] = np.sqrt(Microscope().psf_sigma ** 2 * (defocus**2 - 1))[:, None]
    images = acquire(rng, density, expression, Microscope(), blur)
    names = list(LIBRARY_COMPARTMENTS)
    if protein.kind == "variable":
        label = np.array([names.index(protein.compartments[s]) for s in sub], np.int64)
        label_name = np.array([protein.compartments[s] for s in sub], dtype=object)
    elif protein.kind == "multi":
        label, label_name = np.full(n, -1, np.int64), np.full(n, " + ".join(protein.compartments), dtype=object)
    else:
        label = np.full(n, names.index(protein.compartments[0]), np.int64)
        label_name = np.full(n, protein.compartments[0], dtype=object)
    meta = {"Metadata_Label": label, "Metadata_LabelName": label_name, "Metadata_Proportion": share,
            "Metadata_Subpopulation": sub}
    return images, meta


def simulate_library(design: LibraryDesign) -> ChunkedCrops:
    """Simulated protein-library crops (uint16, ``N x 2 x S x S``; channel 0 protein, 1 nucleus),
    lazily, with the ground truth in the metadata (module docstring). Deterministic for
    ``design.seed``; every image has its own random stream."""
    design.validate()
    proteins = {p.name: p for p in library_proteins(design)}
    layout = library_layout(design)

    def pieces():
        for idx, row in enumerate(layout.itertuples(index=False)):
            rng = np.random.default_rng(np.random.SeedSequence([design.seed, 8100, idx]))
            p = proteins[row.protein]
            images, truth = _render_image(design, p, row.cell_line, int(row.n_cells), rng)
            n = images.shape[0]
            yield images, pd.DataFrame({
                "Metadata_Protein": np.full(n, p.name, dtype=object),
                "Metadata_Kind": np.full(n, p.kind, dtype=object),
                "Metadata_Compartments": np.full(n, row.compartments, dtype=object),
                "Metadata_CellLine": np.full(n, row.cell_line, dtype=object),
                "Metadata_Image": np.full(n, f"{p.name}/{row.cell_line}", dtype=object),
                "Metadata_Plate": np.full(n, row.cell_line, dtype=object),
                "Metadata_Well": np.full(n, f"{p.name}/{row.cell_line}", dtype=object),
                "Metadata_Split": np.full(n, p.split, dtype=object),
                **truth,
            })

    def chunks():
        return rechunk(pieces(), design.chunk_cells)

    return ChunkedCrops(chunks, n_crops=int(layout["n_cells"].sum()), info={"layout": layout})
