"""The simulated treatment screens (BBBC021-like, JUMP-like) and their profiling pipeline."""

import numpy as np
import pytest

from cellbench.features import multichannel_texture_features
from cellbench.simulate import MOA_PHENOTYPES, TreatmentDesign, simulate_treatments, treatment_layout

SMALL = dict(cells_per_well=6, compounds_per_moa=2, concentrations=(1.0, 10.0), replicates=2, batches_per_source=3)


def test_bbbc021_layout_follows_the_published_structure():
    lay = treatment_layout(TreatmentDesign(**SMALL))
    assert set(lay.loc[lay.compound == "DMSO", "well"]) == {"B02", "C02", "D02", "E11", "F11", "G11"}
    assert (lay.groupby("plate").apply(lambda g: (g.compound == "DMSO").sum()) == 6).all()  # DMSO on every plate
    treated = lay[lay.compound != "DMSO"]
    assert treated.groupby("compound").batch.nunique().max() == 1  # a compound lives in one week
    assert (treated.groupby(["compound", "concentration"]).size() == 2).all()  # replicates
    assert (treated.groupby(["compound", "concentration"]).plate.nunique() == 2).all()  # on different plates
    assert set(treated.moa) == set(MOA_PHENOTYPES) and treated.groupby("moa").compound.nunique().min() == 2
    assert not lay.duplicated(["plate", "well"]).any()


def test_jump_layout_has_sources():
    lay = treatment_layout(TreatmentDesign.from_params({"design": "jump", "cells_per_well": 4}))
    assert lay.source.nunique() == 3
    assert (lay.groupby("compound").source.nunique()[lambda s: s.index != "DMSO"] == 3).all()


def test_simulation_is_deterministic_and_labelled():
    d = TreatmentDesign(**{**SMALL, "moas": ("Microtubule stabilizers", "Actin disruptors"), "batches_per_source": 1})
    a = simulate_treatments(d).materialize()
    b = simulate_treatments(d).materialize()
    np.testing.assert_array_equal(np.asarray(a.images), np.asarray(b.images))
    assert a.shape[1:] == (3, 64, 64) and a.dtype == np.uint16
    meta = a.metadata
    assert {"Metadata_Source", "Metadata_Batch", "Metadata_Plate", "Metadata_Well", "Metadata_Compound",
            "Metadata_Concentration", "Metadata_MoA", "Metadata_Control", "Metadata_Treatment"} <= set(meta.columns)
    assert meta.loc[meta.Metadata_Control, "Metadata_MoA"].eq("DMSO").all()


def test_moa_phenotypes_are_dose_dependent():
    """MT stabilisers bundle tubulin: brighter, more heterogeneous tubulin, growing with dose."""
    d = TreatmentDesign(moas=("Microtubule stabilizers",), compounds_per_moa=1, concentrations=(0.01, 30.0),
                        replicates=1, batches_per_source=1, cells_per_well=40, inactive_fraction=0.0,
                        shift_severity=0.0)
    c = simulate_treatments(d).materialize()
    f = multichannel_texture_features(np.asarray(c.images), ("DNA", "Tubulin", "Actin"), distances=(1,), levels=32)
    conc = c.metadata["Metadata_Concentration"].to_numpy()
    dmso = c.metadata["Metadata_Control"].to_numpy()
    high, low = f[conc == 30.0], f[(conc == 0.01)]
    assert high["Tubulin_Intensity_Std"].mean() > 1.3 * f[dmso]["Tubulin_Intensity_Std"].mean()
    assert high["Tubulin_Intensity_Std"].mean() > low["Tubulin_Intensity_Std"].mean()
    assert high["DNA_Intensity_Mean"].mean() > f[dmso]["DNA_Intensity_Mean"].mean()  # condensed, brighter


@pytest.mark.parametrize("bad, message", [
    ({"moas": ("Telekinesis",)}, "unknown MoA"),
    ({"shift_severity": -1}, "shift_severity must be >= 0"),
    ({"replicates": 0}, "positive count"),
    ({"batches_per_source": 1, "compounds_per_moa": 3, "concentrations": (1, 2, 3, 4)}, "impossible plate layout"),
    ({"concentrations": (0.0, 1.0)}, "concentrations must be positive"),
])
def test_invalid_treatment_designs(bad, message):
    with pytest.raises(ValueError, match=message):
        TreatmentDesign(**bad).validate()
    with pytest.raises(ValueError, match="unknown treatment simulation parameter"):
        TreatmentDesign.from_params({"colour": "red"})


def test_multichannel_features_shape_and_errors():
    x = np.random.default_rng(0).integers(100, 2000, (5, 3, 32, 32)).astype(np.uint16)
    f = multichannel_texture_features(x, ("DNA", "Tubulin", "Actin"), distances=(1, 4), levels=32)
    assert f.shape == (5, 3 * 13 * 2 + 3 * 2 + 3)
    assert {"Correlation_DNA_Actin", "Tubulin_Intensity_Mean", "DNA_Intensity_Std"} <= set(f.columns)
    with pytest.raises(ValueError, match="N x 2 x H x W"):
        multichannel_texture_features(x, ("a", "b"))
