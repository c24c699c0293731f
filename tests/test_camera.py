"""The compiled camera model: exact Poisson counts, ziggurat read noise, 16-bit quantisation."""

import numpy as np
import pytest
from scipy import stats

from cellbench.simulate import Microscope, acquire
from cellbench.simulate._camera_kernel import SEARCH_MAX, TABLE_MAX, camera_kernel, normal_fill
from cellbench.simulate.noise import standard_normal


def _counts(lam: np.ndarray, seed: int = 1) -> np.ndarray:
    out = np.empty(lam.shape, np.uint16)
    camera_kernel(np.ascontiguousarray(lam, np.float32), 1.0, 0.0, 0.0, seed, out)
    return out.astype(np.int64)


def test_hand_cases_gain_offset_rounding_and_clipping():
    zero = np.zeros((2, 8), np.float32)
    out = np.empty(zero.shape, np.uint16)
    camera_kernel(zero, 2.0, 100.0, 0.0, 3, out)  # no photons, no read noise: the offset exactly
    assert (out == 100).all()
    camera_kernel(zero, 2.0, 2.5, 0.0, 3, out)  # round half up: floor(2.5 + 0.5) = 3
    assert (out == 3).all()
    camera_kernel(zero, 2.0, -50.0, 0.0, 3, out)  # below zero clips to 0
    assert (out == 0).all()
    camera_kernel(np.full((1, 8), 1e5, np.float32), 2.0, 100.0, 0.0, 3, out[:1])  # saturates
    assert (out[:1] == 65535).all()


@pytest.mark.parametrize("lam", [0.3, 5.0, SEARCH_MAX - 0.5, SEARCH_MAX + 0.5, 40.0, TABLE_MAX, TABLE_MAX + 0.5, 400.0])
def test_constant_rate_matches_the_poisson_pmf(lam):
    k = _counts(np.full((64, 4096), lam)).ravel()
    values, observed = np.unique(k, return_counts=True)
    expected = stats.poisson.pmf(values, lam) * k.size
    keep = expected > 20
    chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3
    assert abs(k.mean() - lam) < 5 * np.sqrt(lam / k.size)


def test_varying_rates_split_into_table_search_and_rejection():
    # each row: a floor of 5 photons, then a ramp to 300 (remainders from 0 through the search
    # range into PTRS); every pixel's mean and variance over the rows must equal its own rate
    lam = np.tile(np.concatenate([np.full(16, 5.0), np.linspace(5.0, 300.0, 112)]), (6000, 1))
    k = _counts(lam, seed=7)
    rate = lam[0]
    se_mean = np.sqrt(rate / k.shape[0])
    assert (np.abs(k.mean(axis=0) - rate) < 5 * se_mean).all()
    z_var = (k.var(axis=0, ddof=1) - rate) / (rate * np.sqrt(2.0 / k.shape[0]))
    assert np.abs(z_var).max() < 5
    pooled = (k - rate) / np.sqrt(rate)  # standardised counts pooled over pixels: mean 0, sd 1
    assert abs(pooled.mean()) < 0.01 and abs(pooled.std() - 1) < 0.01


def test_same_seed_same_image_other_seed_other_image():
    lam = np.linspace(0.0, 200.0, 3 * 512, dtype=np.float32).reshape(3, 512)
    assert np.array_equal(_counts(lam, 5), _counts(lam, 5))
    assert not np.array_equal(_counts(lam, 5), _counts(lam, 6))


def test_normal_fill_is_standard_normal():
    z = np.empty(1_000_000, np.float32)
    normal_fill(11, z)
    assert abs(z.mean()) < 0.005 and abs(z.std() - 1) < 0.005
    assert abs(stats.skew(z)) < 0.01 and abs(stats.kurtosis(z)) < 0.02
    assert stats.kstest(z, "norm").pvalue > 1e-3
    tail = (np.abs(z) > 3.5).mean()  # the ziggurat's tail beyond R = 3.44 is drawn separately
    assert abs(tail - 2 * stats.norm.sf(3.5)) < 5 * np.sqrt(2 * stats.norm.sf(3.5) / z.size)


def test_standard_normal_is_seeded_by_the_generator():
    a = standard_normal(np.random.default_rng(3), (4, 5))
    b = standard_normal(np.random.default_rng(3), (4, 5))
    assert a.dtype == np.float32 and a.shape == (4, 5) and np.array_equal(a, b)


def test_acquire_noise_model_in_adu():
    # a flat, blur-free scene: ADU mean = gain * lam + offset, variance = gain^2 lam + read^2
    scope = Microscope(psf_sigma=0.0, gain=2.0, offset=100.0, read_noise=3.0, photons=(50.0,),
                       background=(10.0,), vignetting=0.0, tilt=0.0)
    density = np.ones((200, 1, 32, 32), np.float32)
    adu = acquire(np.random.default_rng(0), density, np.ones((200, 1), np.float32), scope).astype(float)
    lam = 60.0
    assert abs(adu.mean() - (2 * lam + 100)) < 0.1
    assert abs(adu.var() - (4 * lam + 9 + 1 / 12)) / (4 * lam + 9) < 0.02
