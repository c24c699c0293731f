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
        ({"neighbours_per_crop": -1}, "neighbours_per_crop must be >= 0"),
        ({"cell_appearance_sd": -0.1}, "cell_appearance_sd must be >= 0"),
        ({"cell_defocus_sd": float("nan")}, "cell_defocus_sd must be >= 0"),
    ],
)
def test_invalid_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        CoosDesign.from_params(params)


def test_neighbours_shift_occlusion_and_brightness_by_hand():
    from cellbench.simulate.cells import _paste_neighbours, add_neighbours

    # the paste kernel by hand: cell 1 (a 4 x 4 ramp, mask 1 everywhere) moved by (dy, dx) = (1, -2)
    # into crop 0, whose own cell occupies the top-left pixel only; expression ratio 3 / 1.5 = 2
    img = np.arange(16, dtype=np.float32).reshape(4, 4)
    density = np.stack([np.zeros((1, 4, 4), np.float32), img[None]])
    cell = np.stack([np.zeros((4, 4), np.float32), np.ones((4, 4), np.float32)])
    cell[0, 1, 0] = 1.0
    out = density.copy()
    _paste_neighbours(out, density, cell, np.array([[1.5], [3.0]], np.float32), np.array([[0, 1, 1, -2]]))
    np.testing.assert_array_equal(out[0, 0], 2 * np.array([[0, 0, 0, 0], [0, 3, 0, 0], [6, 7, 0, 0], [10, 11, 0, 0]]))
    np.testing.assert_array_equal(out[1], density[1])  # only crop 0 was pasted into
    _paste_neighbours(out, density, cell, np.ones((2, 1), np.float32), np.array([[0, 1, 4, 0]]))  # off the crop
    np.testing.assert_array_equal(out[0, 0], 2 * np.array([[0, 0, 0, 0], [0, 3, 0, 0], [6, 7, 0, 0], [10, 11, 0, 0]]))

    # two 9 x 9 "cells": a 3 x 3 block in the centre (area 9 -> R = sqrt(9 / pi)); cell 1 is twice
    # as bright in channel 0 (expression 2 against 1) and density 1 where it is
    size = 9
    cell = np.zeros((2, size, size), np.float32)
    cell[:, 3:6, 3:6] = 1.0
    density = np.stack([cell, cell], axis=1) * np.array([1.0, 5.0], np.float32)[None, :, None, None]
    expression = np.array([[1.0, 1.0], [2.0, 1.0]], np.float32)
    rng = np.random.default_rng(0)
    out = add_neighbours(rng, density, cell, expression, rate=50.0, spacing=(1.0, 1.0), max_neighbours=1)
    # each crop's own cell is untouched (occluded neighbours add nothing there)
    np.testing.assert_array_equal(out[:, :, 3:6, 3:6], density[:, :, 3:6, 3:6])
    # a neighbour at distance 2R = 3.39 px overlaps the centre block at most at a corner pixel, which
    # stays hidden; crop 0 sees cell 1 at e1 / e0 = 2 in channel 0, crop 1 sees cell 0 at 1/2
    extra = out - density
    assert extra[0, 0].max() == pytest.approx(2.0) and extra[0, 1].max() == pytest.approx(5.0)
    assert extra[1, 0].max() == pytest.approx(0.5) and extra[1, 1].max() == pytest.approx(5.0)
    assert (extra >= 0).all() and extra[0, 0].sum() > 0
    np.testing.assert_array_equal(add_neighbours(rng, density, cell, expression, rate=0.0), density)


def test_simulated_crops_have_neighbours_at_their_borders():
    crowded = simulate_coos7(CoosDesign(size=0.002, seed=3, neighbours_per_crop=2.0)).materialize()
    alone = simulate_coos7(CoosDesign(size=0.002, seed=3, neighbours_per_crop=0.0)).materialize()
    border = (slice(None), 1, slice(0, 6))  # nucleus channel, top rows
    assert crowded.images[border].astype(float).max(axis=(1, 2)).mean() > alone.images[border].astype(float).max(axis=(1, 2)).mean() + 20


def test_per_cell_appearance_by_hand():
    from cellbench.simulate.phenotypes import PER_CELL, Appearance

    app = Appearance()
    assert app.per_cell(np.random.default_rng(0), 5, 0.0) is app  # sd 0: identical cells, no draws
    varied = app.per_cell(np.random.default_rng(1), 4, 0.5)
    draws = np.exp(np.random.default_rng(1).normal(0, 0.5, (len(PER_CELL), 4))).astype(np.float32)
    for name, d in zip(PER_CELL, draws):
        np.testing.assert_allclose(getattr(varied, name), np.float32(getattr(app, name)) * d, rtol=1e-6)
    assert varied.er_frequency == app.er_frequency  # network frequencies stay per plate


def test_per_cell_values_reach_their_own_cell():
    from dataclasses import replace

    from cellbench.simulate.cells import draw_cells
    from cellbench.simulate.phenotypes import Appearance, localisation_pattern

    geom = draw_cells(np.random.default_rng(0), 2, 64)
    # peroxisomes: cell 0 expects 2 puncta, cell 1 expects 200
    app = replace(Appearance(), peroxisome_count=np.array([2.0, 200.0], np.float32))
    dens, _ = localisation_pattern(3, geom, np.random.default_rng(1), app)
    inside = geom.cytoplasm > 0.9
    baseline = np.array([np.percentile(d[m], 10) for d, m in zip(dens, inside)])  # the 0.03 diffuse part
    puncta = (dens > 100 * baseline[:, None, None]).sum(axis=(1, 2))  # a punctum is ~1,300x it
    assert puncta[0] <= 6 and puncta[1] > 100
    # nuclear envelope: a thicker rim in cell 1 spreads the same (normalised) signal further out
    app = replace(Appearance(), envelope_width=np.array([0.6, 3.0], np.float32))
    dens, _ = localisation_pattern(6, geom, np.random.default_rng(1), app)
    d = geom.edge_distance
    ring = [(dens[i][(d[i] > -3.5) & (d[i] < -2.5)].mean() / dens[i][np.abs(d[i]) < 0.5].mean()) for i in range(2)]
    assert ring[0] < 0.05 and ring[1] > 0.25  # exp(-(3 / 0.6)^2) ~ 0 against exp(-(3 / 3)^2) = 0.37


def test_defocused_cells_are_blurrier():
    def sharpness(design):  # steepest nuclear edge (3 x 3 box against shot noise) over the range
        img = simulate_coos7(design).materialize().images[:, 1].astype(np.float64)  # nucleus channel
        box = sum(img[:, i:i + 62, j:j + 62] for i in range(3) for j in range(3)) / 9
        grad = np.hypot(*np.gradient(box, axis=(1, 2)))
        lo, hi = np.percentile(box, [1, 99], axis=(1, 2))
        return np.median(grad.max(axis=(1, 2)) / (hi - lo))

    sharp = CoosDesign(size=0.002, seed=5, cell_defocus_sd=0.0, cell_appearance_sd=0.0)
    blurred = CoosDesign(size=0.002, seed=5, cell_defocus_sd=0.8, cell_appearance_sd=0.0)
    assert sharpness(blurred) < 0.8 * sharpness(sharp)
