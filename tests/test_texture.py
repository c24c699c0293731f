import math

import mahotas
import numpy as np
import pytest

from cellbench.features import HARALICK_NAMES, coos_texture_features, haralick
from cellbench.features.texture import rescale_unit

DISTANCES = (1, 2, 4, 8, 16)


def _mahotas(images, distances=DISTANCES):
    return np.array([[mahotas.features.haralick(im, distance=d, return_mean=True) for d in distances] for im in images])


def _assert_close(ours, ref):
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_parity_random_8bit(rng, backend):
    imgs = rng.integers(0, 256, (6, 64, 64)).astype(np.uint8)
    _assert_close(haralick(imgs, backend=backend), _mahotas(imgs))


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_parity_few_levels_and_uint16(rng, backend):
    imgs = rng.integers(0, 5, (4, 32, 48)).astype(np.uint16)
    _assert_close(haralick(imgs, distances=(1, 3), levels=5, backend=backend), _mahotas(imgs, (1, 3)))


def test_parity_on_simulated_cells(small_coos):
    q = np.rint(rescale_unit(small_coos.images[:12, 0]) * 255).astype(np.uint8)
    ref = _mahotas(q)
    _assert_close(haralick(q, batch_size=5, n_jobs=2, backend="numpy"), ref)
    _assert_close(haralick(q, n_jobs=2, backend="numba"), ref)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_hand_computed_4x4_horizontal(backend):
    # Haralick's example image; horizontal neighbours (distance 1), symmetric matrix
    img = np.array([[[0, 0, 1, 1], [0, 0, 1, 1], [0, 2, 2, 2], [2, 2, 3, 3]]], np.uint8)
    # counts worked out by hand: (0,0) 4, (0,1)=(1,0) 2, (1,1) 4, (0,2)=(2,0) 1, (2,2) 6,
    # (2,3)=(3,2) 1, (3,3) 2; total 24
    glcm = {(0, 0): 4, (0, 1): 2, (1, 0): 2, (1, 1): 4, (0, 2): 1, (2, 0): 1, (2, 2): 6, (2, 3): 1, (3, 2): 1, (3, 3): 2}
    t = 24
    f = haralick(img, distances=(1,), levels=4, directions=((0, 1),), backend=backend)[0, 0]
    assert f[0] == pytest.approx(sum(c * c for c in glcm.values()) / t**2)  # 84 / 576
    assert f[1] == pytest.approx(sum(c * (i - j) ** 2 for (i, j), c in glcm.items()) / t)  # 14 / 24
    assert f[4] == pytest.approx(sum(c / (1 + (i - j) ** 2) for (i, j), c in glcm.items()) / t)
    assert f[5] == pytest.approx(sum(c * (i + j) for (i, j), c in glcm.items()) / t)
    assert f[8] == pytest.approx(-sum(c / t * math.log2(c / t) for c in glcm.values()))
    assert f[1] == pytest.approx(14 / 24)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_constant_and_zero_images_are_defined(backend):
    imgs = np.stack([np.zeros((16, 16), np.uint8), np.full((16, 16), 9, np.uint8)])
    f = haralick(imgs, distances=(1, 2), backend=backend)
    assert np.isfinite(f).all()
    np.testing.assert_allclose(f[:, :, 0], 1.0)  # one matrix entry: ASM = 1
    np.testing.assert_allclose(f[:, :, 2], 1.0)  # correlation defined as 1 without variance
    np.testing.assert_allclose(f[:, :, 8], 0.0, atol=1e-12)  # entropy 0
    _assert_close(f, _mahotas(imgs, (1, 2)))


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_two_grey_levels(rng, backend):
    imgs = (rng.random((3, 20, 20)) > 0.5).astype(np.uint8)
    _assert_close(haralick(imgs, distances=(1, 2), levels=2, backend=backend), _mahotas(imgs, (1, 2)))


@pytest.mark.parametrize(
    "images, kwargs, match",
    [
        (np.zeros((2, 8, 8), np.float32), {}, "integer grey levels"),
        (np.full((2, 8, 8), -1, np.int16), {}, ">= 0"),
        (np.zeros((8, 8), np.uint8), {}, "rank 3"),
        (np.full((2, 8, 8), 7, np.uint8), {"levels": 4}, "< levels=4"),
        (np.zeros((2, 8, 8), np.uint8), {"distances": (8,)}, "distances must be in 1..7"),
    ],
)
def test_bad_input(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        haralick(images, **kwargs)


def test_coos_texture_table(small_coos):
    df = coos_texture_features(small_coos.images[:10])
    assert df.shape == (10, 13 * 5 + 4)
    assert f"Texture_{HARALICK_NAMES[0]}_d16" in df.columns
    assert np.isfinite(df.to_numpy()).all()
    assert ((df["Correlation_Protein_Nucleus"] >= -1) & (df["Correlation_Protein_Nucleus"] <= 1)).all()
    # mean of a crop rescaled to [0, 1], times its pixel count, is the sum
    np.testing.assert_allclose(df["Intensity_Protein_Sum"], df["Intensity_Protein_Mean"] * 64 * 64)
