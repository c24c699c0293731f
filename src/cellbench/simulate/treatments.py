"""Treatment assays: compounds x concentrations with mechanisms of action (MoA), on 3 channels.

BBBC021-like (Caie et al. 2010; Ljosa et al. 2013): MCF-7-like cells stained for DNA, tubulin and
actin; each compound is tested at several concentrations in replicate wells of one weekly batch;
every plate carries DMSO control wells; weeks differ by batch effects. JUMP-like (several
sources): the same compounds in every source, each source a lab with its own microscope and
staining, batches and plates within a source (``Metadata_Source/Batch/Plate/Well`` as in JUMP).

A MoA is a vector of phenotype strengths (``MOA_PHENOTYPES``); a treatment applies it scaled by a
Hill curve ``s(c) = c / (c + EC50)`` of its concentration and by the compound's potency; inactive
compounds have potency 0. Phenotypes (each a number, 0 = untreated):

* ``nucleus_size``: log change of nuclear radius (DNA damage, Aurora: polyploid, larger)
* ``condensation``: brighter, smaller, rounder nuclei (mitotic arrest: Eg5, MT stabilisers)
* ``fragmentation``: extra micronuclei around the nucleus (DNA damage, Aurora)
* ``cell_size``: log change of cell radius (protein synthesis: smaller; kinase: larger)
* ``mt_loss``: microtubule network fades to a diffuse cytoplasmic stain (MT destabilisers)
* ``mt_bundling``: thick, bright, long microtubule bundles (MT stabilisers)
* ``actin_loss``: stress fibres replaced by punctate aggregates (actin disruptors)
* ``actin_cortex``: actin concentrated at the cell rim (epithelial, rounding)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from cellbench.crops import ChunkedCrops, rechunk

from .cells import draw_cells
from .imaging import Microscope, acquire
from ._params import reject_unknown
from .noise import bandpass_noise, gaussian_blur, sparse_points

CHANNELS = ("DNA", "Tubulin", "Actin")
PHENOTYPES = ("nucleus_size", "condensation", "fragmentation", "cell_size", "mt_loss", "mt_bundling",
              "actin_loss", "actin_cortex")

# strength at full effect of each phenotype, per MoA (the 12 BBBC021 MoAs)
MOA_PHENOTYPES: dict[str, dict[str, float]] = {
    "Actin disruptors": {"actin_loss": 1.0, "cell_size": -0.1},
    "Aurora kinase inhibitors": {"nucleus_size": 0.35, "fragmentation": 0.6, "cell_size": 0.25},
    "Cholesterol-lowering": {"cell_size": 0.12, "actin_cortex": 0.4},
    "DNA damage": {"nucleus_size": 0.2, "fragmentation": 1.0, "cell_size": 0.1},
    "DNA replication": {"nucleus_size": 0.12, "condensation": -0.3, "cell_size": 0.15},
    "Eg5 inhibitors": {"condensation": 1.0, "cell_size": -0.2, "actin_cortex": 0.8},
    "Epithelial": {"actin_cortex": 1.0, "cell_size": -0.1, "mt_loss": 0.2},
    "Kinase inhibitors": {"cell_size": 0.3, "actin_loss": 0.3},
    "Microtubule destabilizers": {"mt_loss": 1.0, "condensation": 0.5, "cell_size": -0.15},
    "Microtubule stabilizers": {"mt_bundling": 1.0, "condensation": 0.6},
    "Protein degradation": {"nucleus_size": -0.1, "cell_size": -0.2, "condensation": 0.3, "actin_loss": 0.2},
    "Protein synthesis": {"cell_size": -0.3, "nucleus_size": -0.1, "mt_loss": 0.3},
}
CONTROL = "DMSO"
PLATE_ROWS = "BCDEFG"  # a BBBC021-like 96-well plate, 60 inner wells (B-G x 2-11)
PLATE_COLS = range(2, 12)
DMSO_WELLS = ("B02", "C02", "D02", "E11", "F11", "G11")


@dataclass(frozen=True)
class TreatmentNuisance:
    """Batch / plate / well / source effect sizes at ``shift_severity = 1`` (log scale)."""

    batch_expression_sd: float = 0.25
    batch_background_sd: float = 0.3
    batch_morphology_sd: float = 0.06
    batch_texture_sd: float = 0.15
    plate_expression_sd: float = 0.1
    well_expression_sd: float = 0.06
    source_expression_sd: float = 0.45
    source_morphology_sd: float = 0.1
    source_psf_sd: float = 0.25
    source_texture_sd: float = 0.3


@dataclass(frozen=True)
class TreatmentDesign:
    """A treatment screen: ``n_sources`` labs x ``batches_per_source`` weeks x plates.

    Each compound lives in one batch of every source (BBBC021: one week) and is tested at
    ``concentrations`` in ``replicates`` wells on different plates of that batch. A fraction
    ``inactive_fraction`` of the compounds has no effect (their MoA label is kept).
    """

    name: str = "bbbc021"
    seed: int = 0
    shift_severity: float = 1.0
    crop_size: int = 64
    moas: tuple[str, ...] = tuple(MOA_PHENOTYPES)
    compounds_per_moa: int = 3
    concentrations: tuple[float, ...] = (0.1, 1.0, 10.0)  # uM
    ec50_range: tuple[float, float] = (0.3, 3.0)  # uM, log-uniform per compound
    inactive_fraction: float = 0.1
    replicates: int = 3
    n_sources: int = 1
    batches_per_source: int = 4
    cells_per_well: int = 24
    sites_per_well: int = 4
    chunk_cells: int = 2048
    nuisance: TreatmentNuisance = field(default_factory=TreatmentNuisance)

    @classmethod
    def from_params(cls, params: dict) -> TreatmentDesign:
        params = dict(params)
        preset = params.pop("design", params.get("name", "bbbc021"))
        base = dict(PRESETS.get(preset, {}))
        reject_unknown(params, cls, "treatment simulation")
        nuis = {**base.pop("nuisance", {}), **(params.pop("nuisance", None) or {})}
        reject_unknown(nuis, TreatmentNuisance, "nuisance")
        for key in ("moas", "concentrations", "ec50_range"):
            if params.get(key) is not None:
                params[key] = tuple(params[key])
        design = cls(**{**base, **params}, nuisance=TreatmentNuisance(**nuis))
        design.validate()
        return design

    def validate(self) -> None:
        if not np.isfinite(self.shift_severity) or self.shift_severity < 0:
            raise ValueError(f"shift_severity must be >= 0, got {self.shift_severity}")
        for name in ("compounds_per_moa", "replicates", "n_sources", "batches_per_source", "cells_per_well",
                     "sites_per_well", "chunk_cells"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be a positive count, got {getattr(self, name)}")
        unknown = [m for m in self.moas if m not in MOA_PHENOTYPES]
        if unknown or not self.moas:
            raise ValueError(f"unknown MoA(s) {unknown}; expected a subset of {list(MOA_PHENOTYPES)}")
        if not self.concentrations or min(self.concentrations) <= 0:
            raise ValueError(f"concentrations must be positive numbers, got {list(self.concentrations)}")
        if not 0 <= self.inactive_fraction < 1:
            raise ValueError(f"inactive_fraction must be in [0, 1), got {self.inactive_fraction}")
        wells = len(PLATE_ROWS) * len(PLATE_COLS) - len(DMSO_WELLS)
        n_treat = len(self.moas) * self.compounds_per_moa * len(self.concentrations)
        per_batch = -(-n_treat // self.batches_per_source)
        if per_batch > wells:
            raise ValueError(f"impossible plate layout: {per_batch} treatments per batch do not fit the "
                             f"{wells} treatment wells of a plate; add batches_per_source")
        if self.crop_size < 32:
            raise ValueError(f"crop_size must be >= 32 pixels, got {self.crop_size}")


PRESETS: dict[str, dict] = {
    "bbbc021": {"name": "bbbc021", "n_sources": 1, "batches_per_source": 4},
    "jump": {"name": "jump", "n_sources": 3, "batches_per_source": 2, "compounds_per_moa": 2,
             "concentrations": (1.0, 10.0)},
}


def treatment_layout(design: TreatmentDesign) -> pd.DataFrame:
    """One row per well: source, batch, plate, well, compound, concentration, MoA, replicate."""
    design.validate()
    rng = np.random.default_rng(np.random.SeedSequence([design.seed, 8001]))
    compounds = []
    for moa in design.moas:
        for k in range(design.compounds_per_moa):
            inactive = rng.random() < design.inactive_fraction
            abbr = "".join(w[0] for w in moa.replace("-", " ").split()).lower()  # "DNA damage" -> "dd"
            compounds.append({"compound": f"{abbr}{k + 1}", "moa": moa,
                              "ec50": float(np.exp(rng.uniform(*np.log(design.ec50_range)))),
                              "potency": 0.0 if inactive else float(rng.uniform(0.7, 1.2))})
    order = rng.permutation(len(compounds))
    rows = []
    for src in range(design.n_sources):
        source = f"source_{src + 1}"
        for b in range(design.batches_per_source):
            batch = f"{source}_week{b + 1}" if design.n_sources > 1 else f"Week{b + 1}"
            mine = [compounds[i] for i in order[b::design.batches_per_source]]
            treatments = [(c, conc) for c in mine for conc in design.concentrations]
            for r in range(design.replicates):
                plate = f"{batch}_P{r + 1}"
                wells = [f"{row}{col:02d}" for row in PLATE_ROWS for col in PLATE_COLS]
                wells = [w for w in wells if w not in DMSO_WELLS]
                wells = [wells[i] for i in rng.permutation(len(wells))]
                for w in DMSO_WELLS:
                    rows.append(dict(source=source, batch=batch, plate=plate, well=w, compound=CONTROL,
                                     concentration=0.0, moa=CONTROL, ec50=1.0, potency=0.0, replicate=r + 1))
                for (c, conc), w in zip(treatments, wells):
                    rows.append(dict(source=source, batch=batch, plate=plate, well=w, compound=c["compound"],
                                     concentration=conc, moa=c["moa"], ec50=c["ec50"], potency=c["potency"],
                                     replicate=r + 1))
    return pd.DataFrame(rows)


@dataclass
class _Context:
    expression: np.ndarray  # per channel
    background: np.ndarray
    morphology: float
    texture: float
    scope: Microscope


def _contexts(design: TreatmentDesign, layout: pd.DataFrame) -> dict[str, _Context]:
    s, nz = design.shift_severity, design.nuisance
    rng = np.random.default_rng(np.random.SeedSequence([design.seed, 8002]))
    ref = Microscope(name="scope_1", photons=(150.0, 90.0, 110.0), background=(5.0, 8.0, 7.0))
    sources = {}
    for k, src in enumerate(sorted(layout["source"].unique())):
        scope = ref if k == 0 else replace(ref, name=f"scope_{k + 1}",
                                            psf_sigma=ref.psf_sigma * float(np.exp(rng.normal(0, s * nz.source_psf_sd))),
                                            gain=ref.gain * float(np.exp(rng.normal(0, s * 0.3))),
                                            offset=ref.offset * float(np.exp(rng.normal(0, s * 0.5))))
        sources[src] = (np.exp(rng.normal(0, s * nz.source_expression_sd, 3)) if k else np.ones(3),
                        float(np.exp(rng.normal(0, s * nz.source_morphology_sd))) if k else 1.0,
                        float(np.exp(rng.normal(0, s * nz.source_texture_sd))) if k else 1.0, scope)
    batches = {b: (np.exp(rng.normal(0, s * nz.batch_expression_sd, 3)), np.exp(rng.normal(0, s * nz.batch_background_sd, 3)),
                   float(np.exp(rng.normal(0, s * nz.batch_morphology_sd))),
                   float(np.exp(rng.normal(0, s * nz.batch_texture_sd))))
               for b in sorted(layout["batch"].unique())}
    out = {}
    for plate, grp in layout.groupby("plate", sort=True):
        src_expr, src_morph, src_tex, scope = sources[grp["source"].iloc[0]]
        b_expr, b_back, b_morph, b_tex = batches[grp["batch"].iloc[0]]
        expr = src_expr * b_expr * np.exp(rng.normal(0, s * nz.plate_expression_sd, 3))
        out[plate] = _Context(expr, b_back, src_morph * b_morph, src_tex * b_tex, scope)
    return out


def _fibres(rng, n, size, angle, freq, sharp):
    """Oriented line texture: |cos| of a sinusoid along ``angle`` warped by a smooth random field."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) - size / 2
    u = xx[None] * np.cos(angle)[:, None, None] + yy[None] * np.sin(angle)[:, None, None]
    warp = 3.0 * bandpass_noise(rng, n, size, 0.03, 0.02)
    return np.abs(np.cos(2 * np.pi * freq * (u + warp))) ** sharp


def _render_treatment_well(design: TreatmentDesign, row, ctx: _Context, rng) -> np.ndarray:
    n, size = design.cells_per_well, design.crop_size
    strength = row.potency * row.concentration / (row.concentration + row.ec50) if row.concentration > 0 else 0.0
    pheno = {p: 0.0 for p in PHENOTYPES}
    for p, v in MOA_PHENOTYPES.get(row.moa, {}).items():
        pheno[p] = v * strength
    # cell-to-cell heterogeneity of the response: not every cell responds fully
    resp = np.clip(rng.normal(1.0, 0.35, n), 0, None).astype(np.float32) if strength > 0 else np.zeros(n, np.float32)
    cond = pheno["condensation"] * resp
    scale = ctx.morphology * np.exp(pheno["cell_size"] * resp + rng.normal(0, 0.08, n)).astype(np.float32)
    nuc_r = 7.5 * np.exp(pheno["nucleus_size"] * resp - 0.25 * np.clip(cond, 0, None))
    geom = draw_cells(rng, n, size, scale=scale * nuc_r / 7.5, nucleus_radius=7.5,
                      cell_ratio=(2.0 * np.exp(-0.25 * np.clip(cond, 0, None).mean()), 2.7))
    cell_area = np.maximum(geom.cell.sum(axis=(1, 2)), 1.0)[:, None, None]

    def unit(d):  # untreated densities have mean 1 inside the cell; treatment effects act on top
        d = np.clip(d, 0, None)
        return d / np.maximum((d * geom.cell).sum(axis=(1, 2), keepdims=True) / cell_area, 1e-6)

    pos_cond = np.clip(cond, 0, None)[:, None, None]
    # DNA: chromatin texture; condensation brightens, fragmentation adds micronuclei around the nucleus
    chrom = 1.0 + (0.25 * ctx.texture) * bandpass_noise(rng, n, size, 0.14, 0.05)
    outside = np.maximum(geom.edge_distance, 0.0)
    ring = np.exp(-((outside - 4.0) / 3.0) ** 2) * geom.cell
    micro = sparse_points(rng, ring, np.clip(6.0 * pheno["fragmentation"] * resp, 0, None) + 1e-3)
    dna = unit(geom.nucleus * chrom) * (1.0 + 1.5 * pos_cond) + gaussian_blur(micro, 1.3) * 40.0
    # tubulin: filament network in the cytoplasm; loss -> diffuse; bundling -> thick bright bundles
    angle = rng.uniform(0, np.pi, n).astype(np.float32)
    filaments = _fibres(rng, n, size, angle, 0.12 * ctx.texture, 6.0)
    net = np.exp(-((bandpass_noise(rng, n, size, 0.1, 0.035) / 0.5) ** 2))
    mt = unit(geom.cytoplasm * (0.5 * filaments + 0.5 * net) + 0.1 * geom.nucleus)
    loss = np.clip(pheno["mt_loss"] * resp, 0, 1)[:, None, None]
    bundle = np.clip(pheno["mt_bundling"] * resp, 0, None)[:, None, None]
    thick = _fibres(rng, n, size, angle + 0.3, 0.05, 4.0) * geom.cytoplasm
    tub = (1 - loss) * mt + loss * unit(geom.cytoplasm + 0.1 * geom.nucleus) * 0.8 + bundle * thick * 4.0
    # actin: stress fibres across the cell and a cortical rim; disruption -> puncta; cortex -> bright rim
    fibres = _fibres(rng, n, size, rng.uniform(0, np.pi, n).astype(np.float32), 0.09, 8.0)
    cell_radius = np.sqrt(cell_area / np.pi)
    rim = np.exp(-((geom.edge_distance - (cell_radius - geom.nuclear_radius[:, None, None])) / 2.0) ** 2) * geom.cell
    dis = np.clip(pheno["actin_loss"] * resp, 0, 1)[:, None, None]
    cortex = np.clip(pheno["actin_cortex"] * resp, 0, None)[:, None, None]
    puncta = gaussian_blur(sparse_points(rng, geom.cytoplasm, np.full(n, 25.0, np.float32)), 1.0) * 30.0
    act = (1 - dis) * unit(geom.cell * (0.35 + 0.65 * fibres) + 0.4 * rim) + dis * unit(geom.cell * 0.2 + puncta) \
        + cortex * 3.0 * rim
    density = np.stack([np.clip(d, 0, None) for d in (dna, tub, act)], axis=1).astype(np.float32)
    expr = np.exp(rng.normal(0, [0.12, 0.25, 0.25], (n, 3))).astype(np.float32)
    expr *= (ctx.expression * np.exp(rng.normal(0, design.shift_severity * design.nuisance.well_expression_sd, 3)))[None]
    scope = replace(ctx.scope, background=tuple(b * m for b, m in zip(ctx.scope.background, ctx.background)))
    return acquire(rng, density, expr.astype(np.float32), scope)


def simulate_treatments(design: TreatmentDesign) -> ChunkedCrops:
    """Simulated treatment-assay crops (uint16, ``N x 3 x S x S``: DNA, tubulin, actin), lazily and
    deterministically per seed (one random stream per well, chunks of whole wells)."""
    design.validate()
    layout = treatment_layout(design)
    contexts = _contexts(design, layout)
    moa_index = {m: i for i, m in enumerate(sorted(design.moas))}

    def pieces():
        for idx, row in enumerate(layout.itertuples(index=False)):
            rng = np.random.default_rng(np.random.SeedSequence([design.seed, 8100, idx]))
            x = _render_treatment_well(design, row, contexts[row.plate], rng)
            n = x.shape[0]
            control = row.compound == CONTROL
            meta = pd.DataFrame({
                "Metadata_Source": row.source, "Metadata_Batch": row.batch, "Metadata_Plate": row.plate,
                "Metadata_Well": row.well, "Metadata_Site": rng.integers(1, design.sites_per_well + 1, n),
                "Metadata_Compound": row.compound, "Metadata_Concentration": float(row.concentration),
                "Metadata_Treatment": f"{row.compound}@{row.concentration:g}", "Metadata_MoA": row.moa,
                "Metadata_Label": -1 if control else moa_index[row.moa], "Metadata_Control": bool(control),
                "Metadata_Replicate": int(row.replicate), "Metadata_Split": row.batch,
                "Metadata_Active": bool(row.potency > 0),
            }, index=range(n))
            yield x, meta

    def chunks():
        return rechunk(pieces(), design.chunk_cells)

    return ChunkedCrops(chunks, n_crops=len(layout) * design.cells_per_well, info={"layout": layout})
