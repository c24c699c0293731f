"""Compiled camera model (numba): exact Poisson photon counts, Gaussian read noise, 16-bit ADC.

For every pixel of every row (one crop-channel) of ``lam``:

    ADU = round(gain * N + offset + read_noise * Z),  N ~ Poisson(lam),  Z ~ Normal(0, 1)

clipped to [0, 65535]. The Poisson draw is exact, split by the additivity of independent Poisson
variables, ``Poisson(lam) = Poisson(lam_b) + Poisson(lam - lam_b)``, with ``lam_b`` the row's
smallest rate (the background floor, at most ``TABLE_MAX``):

- ``Poisson(lam_b)`` is shared by the whole row, so it is drawn by inversion of its tabulated CDF
  with a guide table (Chen and Asau 1974): one uniform and one or two comparisons per pixel;
- the remainder ``r = lam - lam_b`` (zero for most background pixels) by sequential-search
  inversion (Devroye 1986, X.3.3) when ``r < SEARCH_MAX``, else by Hoermann's transformed
  rejection with squeeze, PTRS (Hoermann 1993, "The transformed rejection method for generating
  Poisson random variables", Insurance: Mathematics and Economics 12, 39-45).

Uniforms come from SplitMix64 (Steele, Lea and Flood 2014) seeded by one draw of the caller's
``numpy.random.Generator``, so the image is a deterministic function of that generator's state;
normals from a 128-layer ziggurat (Marsaglia and Tsang 2000, "The ziggurat method for generating
random variables", J. Stat. Softw. 5(8)), one 64-bit draw per normal on the fast path (layer from
the low 7 bits, sign from bit 7, abscissa from the top 53 bits). Written for speed on one core: numpy's ``Generator.poisson``
(multiplication method below 10, PTRS above) costs about 40 ns per background pixel here, this
kernel about 20 ns including the read noise (``benchmarks/bench_simulator.py``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

TABLE_MAX = 64.0  # largest shared rate tabulated (the CDF needs about lam_b + 12 sqrt(lam_b) + 30 cells)
SEARCH_MAX = 12.0  # remainders below this go by sequential search, above by PTRS
_TABLE = 256
_GUIDE = 64

# Ziggurat tables: layer boundaries x_1 = R > x_2 > ... > x_N = 0 with equal areas V
_ZN, _ZR, _ZV = 128, 3.442619855899, 9.91256303526217e-3


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = np.zeros(_ZN + 1)
    x[1] = _ZR
    for i in range(1, _ZN - 1):
        x[i + 1] = math.sqrt(-2.0 * math.log(_ZV / x[i] + math.exp(-0.5 * x[i] ** 2)))
    width = x[:_ZN].copy()  # layer j spans [0, x_j] x [f(x_j), f(x_{j+1})]
    width[0] = _ZV / math.exp(-0.5 * _ZR**2)  # base layer: rectangle plus tail, as one pseudo-width
    inner = np.append(_ZR / width[0], x[2:_ZN + 1] / x[1:_ZN])  # share of the layer under the curve
    f = np.exp(-0.5 * x**2)
    return width, inner, f[:_ZN], f[1:]


_ZW, _ZK, _ZF_LO, _ZF_HI = _ziggurat_tables()

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_LOW7, _BIT7 = np.uint64(127), np.uint64(128)


@njit(cache=True, inline="always")
def _mix(s):
    """SplitMix64 output for state ``s`` (64 bits)."""
    z = (s ^ (s >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def _unit(z):
    """The top 53 bits of the 64-bit ``z`` as a double in [0, 1)."""
    return (z >> _S11) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _uniform(s):
    """SplitMix64 output for state ``s`` as a double in [0, 1) (53 random bits)."""
    return _unit(_mix(s))


@njit(cache=True)
def _normal_slow(s, layer, x):
    """Ziggurat wedge and tail: finish a draw whose fast test failed (about 1 % of draws)."""
    while True:
        if layer == 0:  # tail beyond R (Marsaglia 1964): x = R + e1 / R with 2 e2 > (e1 / R)^2
            while True:
                s += _GOLDEN
                t = -math.log(1.0 - _uniform(s)) / _ZR
                s += _GOLDEN
                e = -math.log(1.0 - _uniform(s))
                if e + e > t * t:
                    return _ZR + t, s
        s += _GOLDEN
        y = _ZF_LO[layer] + _uniform(s) * (_ZF_HI[layer] - _ZF_LO[layer])
        if y < math.exp(-0.5 * x * x):
            return x, s
        s += _GOLDEN
        z = _mix(s)
        layer = int(z & _LOW7)
        u = _unit(z)
        x = u * _ZW[layer]
        if u < _ZK[layer]:
            return x, s


@njit(cache=True, inline="always")
def _normal(s):
    """One standard normal draw by the ziggurat; returns (value, state)."""
    s += _GOLDEN
    z = _mix(s)
    layer = int(z & _LOW7)
    u = _unit(z)
    x = u * _ZW[layer]
    if u >= _ZK[layer]:
        x, s = _normal_slow(s, layer, x)
    return (-x if z & _BIT7 else x), s


@njit(cache=True)
def _ptrs(lam, s):
    """One Poisson(lam) draw, lam >= 10, by transformed rejection with squeeze (Hoermann 1993)."""
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        s += _GOLDEN
        u = _uniform(s) - 0.5
        s += _GOLDEN
        v = _uniform(s)
        us = 0.5 - abs(u)
        k = int(math.floor((2.0 * a / us + b) * u + lam + 0.43))
        if us >= 0.07 and v <= v_r:
            return k, s
        if k < 0 or (us < 0.013 and v > us):
            continue
        log_inv_alpha = math.log(1.1239 + 1.1328 / (b - 3.4))
        if math.log(v) + log_inv_alpha - math.log(a / (us * us) + b) <= -lam + k * loglam - math.lgamma(k + 1.0):
            return k, s


def kernel_seed(rng: np.random.Generator) -> np.uint64:
    """One draw of ``rng`` that seeds a kernel's SplitMix64 stream (so the kernels' output is a
    deterministic function of the caller's generator)."""
    return np.uint64(rng.integers(0, np.iinfo(np.int64).max))


@njit(cache=True)
def camera_kernel(lam, gain, offset, read_noise, seed, out):
    """Fill ``out`` (uint16, rows x pixels) from rates ``lam`` (float32, same shape); see module."""
    s = np.uint64(seed)
    n_rows, n_pix = lam.shape
    cdf = np.empty(_TABLE)
    guide = np.empty(_GUIDE, np.int64)
    for r in range(n_rows):
        row = lam[r]
        lam_b = min(max(np.float64(row.min()), 0.0), TABLE_MAX)
        p = math.exp(-lam_b)
        acc = p
        cdf[0] = acc
        top = 0
        while acc < 1.0 - 1e-15 and top < _TABLE - 2:
            top += 1
            p *= lam_b / top
            acc += p
            cdf[top] = acc
        cdf[top] = 2.0  # the last cell takes every u (rounding and the < 1e-15 tail)
        j = 0
        for g in range(_GUIDE):
            while cdf[j] <= g / _GUIDE:
                j += 1
            guide[g] = j
        for i in range(n_pix):
            s += _GOLDEN
            u = _uniform(s)
            k = guide[int(u * _GUIDE)]
            while cdf[k] <= u:
                k += 1
            rem = np.float64(row[i]) - lam_b
            if rem >= SEARCH_MAX:
                m, s = _ptrs(rem, s)
                k += m
            elif rem > 0.0:
                s += _GOLDEN
                u = _uniform(s)
                if u > 1.0 - rem:  # else u <= 1 - rem <= exp(-rem) = P(0): zero events, no exp
                    q = math.exp(-rem)
                    acc = q
                    m = 0
                    while u > acc and m < 200:
                        m += 1
                        q *= rem / m
                        acc += q
                    k += m
            z, s = _normal(s)
            v = math.floor(gain * k + offset + read_noise * z + 0.5)
            out[r, i] = 0 if v < 0.0 else (65535 if v > 65535.0 else int(v))


@njit(cache=True)
def normal_fill(seed, out):
    """Fill the float32 array ``out`` (any shape, C-contiguous) with standard normal draws."""
    s = np.uint64(seed)
    flat = out.reshape(-1)
    for i in range(flat.size):
        z, s = _normal(s)
        flat[i] = z
