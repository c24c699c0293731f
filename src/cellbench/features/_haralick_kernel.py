"""Compiled Haralick kernel (numba): one pass over the pixel pairs of each offset.

Same mathematics as the vectorised path in ``texture.py`` (see its docstring): for every image and
offset the unordered pair counts are accumulated in a ``levels x levels`` scratch table while the
touched entries are listed, then the entries are visited once to build ``px``, ``p_{x+y}``,
``p_{x-y}``, ``sum C^2`` and ``sum C log2 C`` and are reset. All histograms hold integer counts, so every
entropy is ``log2 t - sum(c log2 c) / t`` with ``c log2 c`` read from a table (no ``log`` calls). Work is ``O(pairs + levels)`` per
offset; images are processed in parallel (``prange``), each thread with its own scratch table.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, inline="always")
def _histogram_stats(hist, nbins, t, clog):
    """Mean, second moment and entropy (bits) of the distribution ``hist[:nbins] / t``.

    ``hist`` holds integer counts ``c``, so ``H = log2(t) - sum(c log2 c) / t`` with ``c log2 c``
    read from the table ``clog``.
    """
    m1 = 0.0
    m2 = 0.0
    acc = 0.0
    for k in range(nbins):
        c = hist[k]
        if c > 0:
            p = c / t
            m1 += k * p
            m2 += k * k * p
            acc += clog[c]
    return m1, m2, np.log2(t) - acc / t


@njit(cache=True, nogil=True, fastmath=False)
def _one_offset(img, dr, dc, levels, maxv, scratch, touched, px, psum, pdiff, clog, out):
    h, w = img.shape
    r0 = max(0, -dr)
    r1 = h - max(0, dr)
    c0 = max(0, -dc)
    c1 = w - max(0, dc)
    n_touched = 0
    m = 0
    for r in range(r0, r1):
        for c in range(c0, c1):
            a = img[r, c]
            b = img[r + dr, c + dc]
            lo = a if a < b else b
            hi = b if a < b else a
            code = lo * levels + hi
            if scratch[code] == 0:
                touched[n_touched] = code
                n_touched += 1
            scratch[code] += 1
            m += 1
    t = 2.0 * m
    for k in range(levels):
        px[k] = 0
        pdiff[k] = 0
    for k in range(2 * levels):
        psum[k] = 0
    sum_c2 = 0.0
    sum_clogc = 0.0
    for q in range(n_touched):
        code = touched[q]
        run = np.int64(scratch[code])
        scratch[code] = 0
        i = code // levels
        j = code - i * levels
        if i == j:
            cnt = 2 * run
            sum_c2 += float(cnt * cnt)
            sum_clogc += clog[cnt]
        else:
            sum_c2 += 2.0 * float(run * run)
            sum_clogc += 2.0 * clog[run]
        px[i] += run
        px[j] += run
        psum[i + j] += 2 * run
        pdiff[j - i] += 2 * run
    mu, ex2, hx = _histogram_stats(px, levels, t, clog)
    var = ex2 - mu * mu
    _, contrast, hdiff = _histogram_stats(pdiff, levels, t, clog)
    idm = 0.0
    sq = 0.0
    for k in range(levels):
        c = pdiff[k]
        if c > 0:
            p = c / t
            idm += p / (1.0 + k * k)
            sq += p * p
    sum_avg, sum_sq, hsum = _histogram_stats(psum, 2 * levels, t, clog)
    hxy = np.log2(t) - sum_clogc / t
    out[0] += sum_c2 / (t * t)
    out[1] += contrast
    if var > 0:
        out[2] += ((sum_sq - contrast) / 4.0 - mu * mu) / var
    else:
        out[2] += 1.0
    out[3] += var
    out[4] += idm
    out[5] += sum_avg
    out[6] += sum_sq - sum_avg * sum_avg
    out[7] += hsum
    out[8] += hxy
    out[9] += sq / maxv - 1.0 / (maxv * maxv)
    out[10] += hdiff
    hxy12 = 2.0 * hx
    if hx > 0:
        out[11] += (hxy - hxy12) / hx
    else:
        out[11] += hxy - hxy12
    v = 1.0 - np.exp(-2.0 * (hxy12 - hxy))
    out[12] += np.sqrt(v) if v > 0 else 0.0


@njit(cache=True, nogil=True, parallel=True)
def haralick_batch(images, distances, directions, levels, out):
    """Fill ``out[n, d, 13]`` with direction-averaged features of ``images[n]``."""
    n, h, w = images.shape
    n_dir = directions.shape[0]
    clog = np.zeros(2 * h * w + 1)
    for c in range(1, 2 * h * w + 1):
        clog[c] = c * np.log2(c)
    for idx in prange(n):
        img = images[idx].astype(np.int64)
        scratch = np.zeros(levels * levels, np.uint16)  # < 65,536 pairs per offset (checked by caller)
        touched = np.empty(h * w, np.int64)
        px = np.empty(levels, np.int64)
        pdiff = np.empty(levels, np.int64)
        psum = np.empty(2 * levels, np.int64)
        maxv = float(img.max()) + 1.0
        for jd in range(distances.shape[0]):
            acc = np.zeros(13)
            for q in range(n_dir):
                d = distances[jd]
                _one_offset(img, directions[q, 0] * d, directions[q, 1] * d, levels, maxv,
                            scratch, touched, px, psum, pdiff, clog, acc)
            for f in range(13):
                out[idx, jd, f] = acc[f] / n_dir
