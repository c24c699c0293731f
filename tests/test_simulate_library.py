"""The simulated protein library (seed 002's exploration): layout, ground truth visible in the
images, cell-line morphology, determinism and bad parameters."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from cellbench.ingest.sources import simulation
from cellbench.simulate import LibraryDesign, simulate_library
from cellbench.simulate.library import library_layout, library_proteins

SMALL = dict(classes=("Cytosol", "Nucleoli", "Golgi"), proteins_per_class=2, rare_proteins=2,
             multi_proteins_per_pair=3, variable_proteins=(("Nuclear Envelope", "Nucleoli"),), variable_cells=30,
             cells_per_image=10)


@pytest.fixture(scope="module")
def library():
    return simulate_library(LibraryDesign(**SMALL, neighbours_per_crop=0.0)).materialize()


def test_layout_has_every_kind_of_protein():
    design = LibraryDesign(**SMALL)
    proteins = library_proteins(design)
    kinds = [p.kind for p in proteins]
    assert kinds.count("single") == 6 and kinds.count("rare") == 2 and kinds.count("multi") == 6
    assert kinds.count("variable") == 1
    assert {p.split for p in proteins if p.kind == "single"} == {"train", "test"}
    assert {p.split for p in proteins if p.kind != "single"} == {"explore"}
    layout = library_layout(design)
    per_protein = layout.groupby("protein")["cell_line"]
    assert (per_protein.size() == 2).all() and (per_protein.nunique() == 2).all()  # two different cell lines
    assert (layout["n_cells"] >= design.min_cells_per_image).all()


def test_ground_truth_in_the_metadata(library):
    m = library.metadata
    assert library.images.dtype == np.uint16 and library.images.shape[1:] == (2, 64, 64)
    multi = m[m.Metadata_Kind == "multi"]
    assert multi.Metadata_Proportion.between(0, 1).all() and multi.Metadata_Label.eq(-1).all()
    assert m.loc[m.Metadata_Kind != "multi", "Metadata_Proportion"].isna().all()
    var = m[m.Metadata_Kind == "variable"]
    assert set(var.Metadata_Subpopulation) == {0, 1}
    names = var.Metadata_Compartments.iloc[0].split("|")
    assert (var.Metadata_LabelName == [names[s] for s in var.Metadata_Subpopulation]).all()
    assert (m.Metadata_Well == m.Metadata_Image).all() and (m.Metadata_Plate == m.Metadata_CellLine).all()


def _nuclear_mask(crop):
    dna = crop[1].astype(float)
    lo, hi = np.percentile(dna, [5, 99])
    return dna > lo + 0.1 * (hi - lo)


def _protein(crop):
    p = crop[0].astype(float)
    return np.clip(p - np.percentile(p, 5), 0, None)


def test_mixing_proportion_is_visible_in_the_image(library):
    """The share of protein intensity inside the nucleus (from the DNA channel) rises with the
    true share of Nucleoplasm for Cytosol + Nucleoplasm proteins."""
    m = library.metadata
    rows = np.flatnonzero((m.Metadata_Compartments == "Cytosol|Nucleoplasm").to_numpy())
    assert len(rows) > 40
    share = [_protein(library.images[i])[_nuclear_mask(library.images[i])].sum() / _protein(library.images[i]).sum()
             for i in rows]
    rho = spearmanr(share, m.Metadata_Proportion.to_numpy()[rows]).statistic
    assert rho > 0.6, rho
    # Nucleoli + Nucleoplasm: the more nucleoplasm, the less peaked the nuclear signal
    rows = np.flatnonzero((m.Metadata_Compartments == "Nucleoli|Nucleoplasm").to_numpy())
    peak = [np.percentile(p := _protein(library.images[i])[_nuclear_mask(library.images[i])], 99) / p.mean()
            for i in rows]
    assert spearmanr(peak, m.Metadata_Proportion.to_numpy()[rows]).statistic < -0.2


def test_cell_lines_differ_in_morphology():
    c = simulate_library(LibraryDesign(**SMALL, cell_lines=("A-431", "U-251 MG"), neighbours_per_crop=0.0)).materialize()
    area = np.array([_nuclear_mask(crop).sum() for crop in c.images])
    line = c.metadata.Metadata_CellLine.to_numpy()
    assert area[line == "U-251 MG"].mean() > 1.4 * area[line == "A-431"].mean()


def test_deterministic_and_independent_of_chunking():
    a = simulate_library(LibraryDesign(**SMALL, chunk_cells=16)).materialize()
    b = simulate_library(LibraryDesign(**SMALL, chunk_cells=100000)).materialize()
    np.testing.assert_array_equal(a.images, b.images)
    assert a.metadata.equals(b.metadata)


@pytest.mark.parametrize("change, message", [
    ({"classes": ["Cytosol", "Lysosome"]}, "unknown compartment.*Lysosome"),
    ({"rare_class": "Cytosol"}, "rare_class 'Cytosol' must not also be one of classes"),
    ({"images_per_protein": 4}, "images_per_protein .4. must be at most the number of cell_lines .3."),
    ({"multi_pairs": [["Cytosol", "Cytosol"]]}, "multi_pairs: each entry needs two distinct"),
    ({"cell_lines": ["HeLa"]}, "cell_lines: unknown .'HeLa'."),
    ({"proteins_per_clas": 3}, "proteins_per_clas"),
    ({"train_fraction": 1.0}, "train_fraction must be in"),
])
def test_bad_parameters_name_the_key(change, message):
    with pytest.raises(ValueError, match=message):
        simulation({"design": "protein_library", **change}, "exploration.ingestion.simulation")
