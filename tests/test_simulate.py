import numpy as np
import pytest

from cellbench.simulate import COOS7_CLASSES, COOS7_SPLIT_SIZES, CoosDesign, coos7_layout, simulate_coos7


def test_deterministic_for_a_seed_and_independent_of_chunking():
    a = simulate_coos7(CoosDesign(size=0.002, seed=5, chunk_cells=64)).materialize()
    b = simulate_coos7(CoosDesign(size=0.002, seed=5, chunk_cells=100000)).materialize()
    np.testing.assert_array_equal(a.images, b.images)
    c = simulate_coos7(CoosDesign(size=0.002, seed=6)).materialize()
    assert not np.array_equal(a.images[:5], c.images[:5])


def test_layout_follows_the_seed_design():
    lay = coos7_layout(CoosDesign(size=0.1))
    assert set(lay.label_name) == set(COOS7_CLASSES)
    per_class = lay.groupby("label").plate.nunique()
    assert (per_class == 7).all()  # 4 training + 2 test3 + 1 test4 plates
    assert (lay.groupby("plate").well.nunique() == 8).all()
    t2 = lay[lay.pool == "test2"]
    assert t2.edge.all() and t2.well.map(lambda w: w[0] in "AP" or w[1:] in ("01", "24")).all()
    assert (lay[lay.pool == "test4"].microscope == "opera_b").all()
    assert set(lay[lay.pool == "test3"].day) == {20, 21}
    # split sizes proportional to the seed's Table 2
    total = lay.groupby("pool").n_cells.sum()
    ratio = total["test3"] / total["test4"]
    assert ratio == pytest.approx(COOS7_SPLIT_SIZES["test3"] / COOS7_SPLIT_SIZES["test4"], rel=0.1)


def test_crops_and_metadata(small_coos):
    c = small_coos
    assert c.images.dtype == np.uint16 and c.images.shape[1:] == (2, 64, 64)
    assert set(c.metadata.Metadata_Split) == {"train", "test1", "test2", "test3", "test4"}
    assert set(c.metadata.Metadata_Label) == set(range(7))
    for col in ("Metadata_Plate", "Metadata_Well", "Metadata_Batch", "Metadata_Source", "Metadata_Site"):
        assert col in c.metadata
    # nucleus channel is brighter in the centre than at the crop border
    centre = c.images[:, 1, 24:40, 24:40].mean()
    border = c.images[:, 1, :6, :].mean()
    assert centre > 1.5 * border


def test_severity_zero_makes_test_plates_exchangeable():
    from cellbench.simulate.designs import _plate_effects

    d = CoosDesign(size=0.01, shift_severity=0.0)
    eff = _plate_effects(d, coos7_layout(d))
    e = list(eff.values())
    assert all(np.allclose(x.expression, 1.0) and x.morphology == 1.0 for x in e)
    assert all(x.scope.psf_sigma == e[0].scope.psf_sigma and x.appearance == e[0].appearance for x in e)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"shift_severity": -0.5}, "shift_severity must be >= 0"),
        ({"plates_train": -1}, "plates_train must be a positive count"),
        ({"classes": ["Golgi", "Lysosome"]}, r"unknown COOS-7 class\(es\) \['Lysosome'\]"),
        ({"wells_per_plate": 400}, "impossible plate layout"),
        ({"edge_wells_per_train_plate": 8}, "edge_wells_per_train_plate must be in"),
        ({"colour": "red"}, "unknown COOS-7 simulation parameter"),
        ({"nuisance": {"gravity": 1}}, "unknown nuisance parameter"),
    ],
)
def test_invalid_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        CoosDesign.from_params(params)
