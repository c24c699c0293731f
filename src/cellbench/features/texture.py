"""Haralick texture features, batched and exact to mahotas, and the COOS-7 Texture feature set.

For an integer image ``f`` and an offset ``delta = d * u`` (``u`` one of the four 2-D directions
(0,1), (1,1), (1,0), (1,-1)), the symmetric grey-level co-occurrence matrix counts every pixel
pair ``(f[x], f[x + delta])`` in both orders; ``p = C / T`` with ``T = 2 * #pairs``. With
``px = py`` the marginal of ``p``, ``p_{x+y}(k) = sum_{i+j=k} p(i,j)`` and
``p_{x-y}(k) = sum_{|i-j|=k} p(i,j)`` (entropies in bits, ``0 log 0 = 0``), the 13 features are,
in mahotas' order (Haralick, Shanmugam & Dinstein 1973):

 0 angular second moment       sum p(i,j)^2
 1 contrast                    sum k^2 p_{x-y}(k)
 2 correlation                 (sum i j p(i,j) - mu^2) / sigma^2     (1 if sigma = 0)
 3 sum of squares: variance    sigma^2 = sum k^2 px(k) - mu^2
 4 inverse difference moment   sum p(i,j) / (1 + (i - j)^2)
 5 sum average                 sum k p_{x+y}(k)
 6 sum variance                sum k^2 p_{x+y}(k) - (sum average)^2
 7 sum entropy                 H(p_{x+y})
 8 entropy                     HXY = H(p)
 9 difference variance         variance of the vector p_{x-y}(0 .. max f)   (mahotas' default)
10 difference entropy          H(p_{x-y})
11 info. measure of corr. 1    (HXY - HXY1) / max(HX, HY),  HXY1 = -sum p(i,j) log2(px(i) py(j))
12 info. measure of corr. 2    sqrt(1 - exp(-2 (HXY2 - HXY))),  HXY2 = -sum px py log2(px py)

and are averaged over the four directions (``mahotas.features.haralick(f, distance=d,
return_mean=True)``). Feature 9 depends on ``max f`` because mahotas sizes the matrix by the
image maximum; this is reproduced.

Why it is fast: a 64x64 crop has at most 4,032 pixel pairs per offset, so the 256x256 matrix is
mostly empty. The pair codes ``min(i,j) * L + max(i,j)`` are radix-sorted row-wise for a
whole batch; each run of equal codes is one non-zero matrix entry and its count. Every feature
follows from those entries: ``px``, ``p_{x+y}`` and ``p_{x-y}`` are short weighted histograms of
them, ``sum p^2`` and ``H(p)`` sums over them, ``E[ij] = (E[(i+j)^2] - E[(i-j)^2]) / 4``, and for
a symmetric matrix ``HXY1 = HXY2 = 2 HX`` exactly. Nothing of size ``L^2`` is ever formed.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

HARALICK_NAMES: tuple[str, ...] = (
    "AngularSecondMoment",
    "Contrast",
    "Correlation",
    "Variance",
    "InverseDifferenceMoment",
    "SumAverage",
    "SumVariance",
    "SumEntropy",
    "Entropy",
    "DifferenceVariance",
    "DifferenceEntropy",
    "InfoMeas1",
    "InfoMeas2",
)
DIRECTIONS = ((0, 1), (1, 1), (1, 0), (1, -1))


def _entropy_rows(p: np.ndarray) -> np.ndarray:
    """Row-wise entropy in bits of probability rows, ``0 log 0 = 0``."""
    safe = np.where(p > 0, p, 1.0)
    return -(p * np.log2(safe)).sum(axis=1)


def _pairs(images: np.ndarray, dr: int, dc: int) -> tuple[np.ndarray, np.ndarray]:
    n, h, w = images.shape
    r0, r1 = max(0, -dr), h - max(0, dr)
    c0, c1 = max(0, -dc), w - max(0, dc)
    a = images[:, r0:r1, c0:c1].reshape(n, -1)
    b = images[:, r0 + dr : r1 + dr, c0 + dc : c1 + dc].reshape(n, -1)
    return a, b


def _row_bincount(rows: np.ndarray, idx: np.ndarray, weights: np.ndarray, n: int, bins: int) -> np.ndarray:
    return np.bincount(rows * bins + idx, weights=weights, minlength=n * bins).reshape(n, bins)


def _features_one_offset(img: np.ndarray, dr: int, dc: int, levels: int, maxv: np.ndarray) -> np.ndarray:
    """13 features of every image in the batch for one offset (rows: images)."""
    n = img.shape[0]
    a, b = _pairs(img, dr, dc)
    m = a.shape[1]
    if m == 0:
        raise ValueError(f"offset ({dr}, {dc}) leaves no pixel pairs in {img.shape[1]}x{img.shape[2]} images")
    t = 2.0 * m
    # unordered pair codes, sorted per image; each run is one matrix entry (i <= j) and its count
    code_dtype = np.uint16 if levels <= 256 else np.uint64
    codes = np.minimum(a, b).astype(code_dtype) * code_dtype(levels) + np.maximum(a, b).astype(code_dtype)
    codes.sort(axis=1, kind="stable")
    new = np.empty(codes.shape, bool)
    new[:, 0] = True
    np.not_equal(codes[:, 1:], codes[:, :-1], out=new[:, 1:])
    starts = np.flatnonzero(new)
    runs = np.diff(starts, append=codes.size).astype(np.float64)
    rows = starts // m
    vals = codes.ravel()[starts].astype(np.int64)
    i, j = vals // levels, vals % levels
    diag = i == j
    cnt = np.where(diag, 2.0 * runs, runs)  # value of the symmetric matrix at (i, j)
    mult = np.where(diag, 1.0, 2.0)  # off-diagonal values occur at (i, j) and (j, i)
    two_runs = 2.0 * runs  # mass of the entry pair (i, j) + (j, i), or of (i, i)

    px = (_row_bincount(rows, i, runs, n, levels) + _row_bincount(rows, j, runs, n, levels)) / t
    p_sum = _row_bincount(rows, i + j, two_runs, n, 2 * levels) / t
    p_diff = _row_bincount(rows, j - i, two_runs, n, levels) / t
    k = np.arange(levels, dtype=np.float64)
    k2 = k * k
    tk = np.arange(2 * levels, dtype=np.float64)
    mu = px @ k
    var = px @ k2 - mu * mu
    hx = _entropy_rows(px)
    hxy = np.log2(t) - np.bincount(rows, weights=mult * cnt * np.log2(cnt), minlength=n) / t

    out = np.empty((n, 13), np.float64)
    out[:, 0] = np.bincount(rows, weights=mult * cnt * cnt, minlength=n) / (t * t)
    out[:, 1] = p_diff @ k2
    sum_avg = p_sum @ tk
    sum_sq = p_sum @ (tk * tk)
    exy = (sum_sq - out[:, 1]) / 4.0  # E[ij] = (E[(i+j)^2] - E[(i-j)^2]) / 4
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, 2] = np.where(var > 0, (exy - mu * mu) / np.where(var > 0, var, 1.0), 1.0)
    out[:, 3] = var
    out[:, 4] = p_diff @ (1.0 / (1.0 + k2))
    out[:, 5] = sum_avg
    out[:, 6] = sum_sq - sum_avg**2
    out[:, 7] = _entropy_rows(p_sum)
    out[:, 8] = hxy
    out[:, 9] = (p_diff * p_diff).sum(axis=1) / maxv - 1.0 / (maxv * maxv)
    out[:, 10] = _entropy_rows(p_diff)
    # symmetric matrix: HXY1 = -sum p(i,j) log2(px(i) px(j)) = 2 HX, and HXY2 = 2 HX too
    hxy1 = hxy2 = 2.0 * hx
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, 11] = np.where(hx > 0, (hxy - hxy1) / np.where(hx > 0, hx, 1.0), hxy - hxy1)
    out[:, 12] = np.sqrt(np.maximum(0.0, 1.0 - np.exp(-2.0 * (hxy2 - hxy))))
    return out


def _validate(images: np.ndarray, distances, levels: int) -> tuple[np.ndarray, tuple[int, ...]]:
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"haralick: images must be a batch N x H x W (rank 3), got shape {images.shape}")
    if not np.issubdtype(images.dtype, np.integer):
        raise ValueError(
            f"haralick: images must be integer grey levels in [0, levels), got dtype {images.dtype}; "
            "quantise float images first (e.g. np.rint(x * (levels - 1)).astype(np.uint8))"
        )
    if not 2 <= int(levels) <= 65536:
        raise ValueError(f"haralick: levels must be in 2..65536, got {levels}")
    if images.size and images.min() < 0:
        raise ValueError(f"haralick: grey levels must be >= 0, got minimum {images.min()}")
    if images.size and images.max() >= levels:
        raise ValueError(f"haralick: grey levels must be < levels={levels}, got maximum {images.max()}")
    distances = tuple(int(d) for d in np.atleast_1d(distances))
    h, w = images.shape[1:]
    bad = [d for d in distances if d < 1 or d >= min(h, w)]
    if not distances or bad:
        raise ValueError(f"haralick: distances must be in 1..{min(h, w) - 1} for {h}x{w} images, got {distances}")
    return images, distances


def haralick(
    images: np.ndarray,
    distances=(1, 2, 4, 8, 16),
    levels: int = 256,
    batch_size: int = 256,
    n_jobs: int | None = None,
    directions=DIRECTIONS,
    backend: str = "auto",
) -> np.ndarray:
    """Haralick features of a batch: ``N x len(distances) x 13`` float64, mahotas order.

    Parameters
    ----------
    images : (N, H, W) integer array with values in ``[0, levels)``.
    distances : pixel distances of the co-occurrence offsets.
    levels : number of grey levels (256 for 8-bit images).
    batch_size : crops processed together (memory is ``O(batch_size * H * W)``).
    n_jobs : threads over batches (default: the CPUs available).
    directions : unit offsets averaged over (default mahotas' four 2-D directions).
    backend : ``"numba"`` (compiled single pass over the pairs, parallel over images),
        ``"numpy"`` (vectorised over the batch), or ``"auto"`` (numba when importable).
        Both give the same numbers.

    Examples
    --------
    >>> img = np.array([[[0, 0, 1, 1], [0, 0, 1, 1], [0, 2, 2, 2], [2, 2, 3, 3]]], np.uint8)
    >>> haralick(img, distances=(1,), levels=4).shape
    (1, 1, 13)
    """
    images, distances = _validate(images, distances, levels)
    n = images.shape[0]
    out = np.empty((n, len(distances), 13), np.float64)
    if n == 0:
        return out
    if backend not in ("auto", "numba", "numpy"):
        raise ValueError(f"haralick: backend must be 'auto', 'numba' or 'numpy', got {backend!r}")
    if backend in ("auto", "numba") and images.shape[1] * images.shape[2] < 65536:
        try:
            from ._haralick_kernel import haralick_batch
        except ImportError:
            if backend == "numba":
                raise
        else:
            return _run_numba(haralick_batch, images, distances, directions, int(levels), n_jobs, out)
    work = images if images.dtype in (np.int32, np.int64, np.uint8, np.uint16) else images.astype(np.int64)

    def run(start: int) -> None:
        img = work[start : start + batch_size]
        maxv = img.reshape(img.shape[0], -1).max(axis=1).astype(np.float64) + 1.0
        for j, d in enumerate(distances):
            acc = np.zeros((img.shape[0], 13))
            for dr, dc in directions:
                acc += _features_one_offset(img, dr * d, dc * d, int(levels), maxv)
            out[start : start + batch_size, j] = acc / len(directions)

    starts = range(0, n, batch_size)
    if n_jobs is None:
        n_jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n_jobs <= 1 or n <= batch_size:
        for s in starts:
            run(s)
    else:
        with ThreadPoolExecutor(n_jobs) as pool:
            list(pool.map(run, starts))
    return out


def _run_numba(kernel, images, distances, directions, levels, n_jobs, out):
    import numba

    previous = numba.get_num_threads()
    if n_jobs is not None:
        numba.set_num_threads(max(1, min(int(n_jobs), numba.config.NUMBA_NUM_THREADS)))
    try:
        kernel(
            np.ascontiguousarray(images),
            np.asarray(distances, np.int64),
            np.asarray(directions, np.int64).reshape(-1, 2),
            levels,
            out,
        )
    finally:
        numba.set_num_threads(previous)
    return out


def rescale_unit(images: np.ndarray) -> np.ndarray:
    """Per-image min-max rescaling of ``N x H x W`` to [0, 1] (constant images become 0)."""
    x = np.asarray(images, np.float64)
    lo = x.min(axis=(1, 2), keepdims=True)
    rng = x.max(axis=(1, 2), keepdims=True) - lo
    return np.where(rng > 0, (x - lo) / np.where(rng > 0, rng, 1.0), 0.0)


def coos_texture_features(
    images: np.ndarray,
    distances=(1, 2, 4, 8, 16),
    levels: int = 256,
    protein_channel: int = 0,
    nucleus_channel: int = 1,
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """The COOS-7 Texture representation (seed 000, section 3.1) of ``N x C x H x W`` crops.

    Each channel is rescaled to [0, 1] per crop; the protein channel is quantised to ``levels``
    grey levels (``rint(x * (levels - 1))``) for Haralick's 13 features at each distance
    (averaged over 4 directions); plus the mean, sum and standard deviation of the rescaled
    protein channel and the Pearson correlation of the protein and nucleus channels (0 when
    either is constant). Returns ``N x (13 * len(distances) + 4)`` feature columns.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"coos_texture_features: crops must be N x C x H x W, got shape {images.shape}")
    if max(protein_channel, nucleus_channel) >= images.shape[1]:
        raise ValueError(
            f"coos_texture_features: channel index out of range for {images.shape[1]} channels"
        )
    prot = rescale_unit(images[:, protein_channel])
    nuc = rescale_unit(images[:, nucleus_channel])
    dtype = np.uint8 if levels <= 256 else np.uint16
    q = np.rint(prot * (levels - 1)).astype(dtype)
    distances = tuple(int(d) for d in distances)
    har = haralick(q, distances=distances, levels=levels, n_jobs=n_jobs)
    cols = {}
    for j, d in enumerate(distances):
        for f, name in enumerate(HARALICK_NAMES):
            cols[f"Texture_{name}_d{d}"] = har[:, j, f]
    flat_p = prot.reshape(len(prot), -1)
    flat_n = nuc.reshape(len(nuc), -1)
    cols["Intensity_Protein_Mean"] = flat_p.mean(axis=1)
    cols["Intensity_Protein_Sum"] = flat_p.sum(axis=1)
    cols["Intensity_Protein_Std"] = flat_p.std(axis=1)
    pc = flat_p - flat_p.mean(axis=1, keepdims=True)
    nc = flat_n - flat_n.mean(axis=1, keepdims=True)
    denom = np.sqrt((pc * pc).sum(axis=1) * (nc * nc).sum(axis=1))
    cols["Correlation_Protein_Nucleus"] = np.where(denom > 0, (pc * nc).sum(axis=1) / np.where(denom > 0, denom, 1), 0.0)
    return pd.DataFrame(cols)


def multichannel_texture_features(
    images: np.ndarray,
    channel_names: tuple[str, ...],
    distances=(1, 4),
    levels: int = 64,
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Per-channel texture and intensity features of ``N x C x H x W`` crops (treatment profiling).

    For every channel ``X``: Haralick's 13 features at each distance on the per-crop rescaled image
    quantised to ``levels`` grey levels (``X_Texture_<Name>_d<d>``, as in
    :func:`coos_texture_features`), the mean and standard deviation of the raw intensities
    (``X_Intensity_Mean``, ``X_Intensity_Std``: absolute, so plate and batch effects show), and
    for every channel pair the Pearson correlation of the rescaled images (``Correlation_X_Y``).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != len(channel_names):
        raise ValueError(f"multichannel_texture_features: crops must be N x {len(channel_names)} x H x W "
                         f"for channels {list(channel_names)}, got shape {images.shape}")
    distances = tuple(int(d) for d in distances)
    dtype = np.uint8 if levels <= 256 else np.uint16
    cols, rescaled = {}, []
    for c, name in enumerate(channel_names):
        unit = rescale_unit(images[:, c])
        rescaled.append(unit.reshape(len(unit), -1))
        har = haralick(np.rint(unit * (levels - 1)).astype(dtype), distances=distances, levels=levels, n_jobs=n_jobs)
        for j, d in enumerate(distances):
            for f, feat in enumerate(HARALICK_NAMES):
                cols[f"{name}_Texture_{feat}_d{d}"] = har[:, j, f]
        raw = images[:, c].reshape(len(images), -1).astype(np.float64)
        cols[f"{name}_Intensity_Mean"] = raw.mean(axis=1)
        cols[f"{name}_Intensity_Std"] = raw.std(axis=1)
    for a in range(len(channel_names)):
        for b in range(a + 1, len(channel_names)):
            pa = rescaled[a] - rescaled[a].mean(axis=1, keepdims=True)
            pb = rescaled[b] - rescaled[b].mean(axis=1, keepdims=True)
            den = np.sqrt((pa * pa).sum(axis=1) * (pb * pb).sum(axis=1))
            cols[f"Correlation_{channel_names[a]}_{channel_names[b]}"] = np.where(
                den > 0, (pa * pb).sum(axis=1) / np.where(den > 0, den, 1), 0.0)
    return pd.DataFrame(cols)
