"""Compiled per-group median / mean over the columns of a block (numba, parallel over columns)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _select_median(buf: np.ndarray, m: int) -> float:
    """Median of ``buf[:m]`` (reordered in place): quickselect for the middle element(s)."""
    k = m // 2
    lo, hi = 0, m - 1
    while lo < hi:  # Hoare quickselect for the k-th smallest
        pivot = buf[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while buf[i] < pivot:
                i += 1
            while buf[j] > pivot:
                j -= 1
            if i <= j:
                buf[i], buf[j] = buf[j], buf[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    upper = buf[k]
    if m % 2 == 1:
        return upper
    lower = buf[0]  # the largest of buf[:k], all <= upper after selection
    for t in range(1, k):
        if buf[t] > lower:
            lower = buf[t]
    return 0.5 * (lower + upper)


@numba.njit(parallel=True, cache=True)
def group_reduce(values: np.ndarray, order: np.ndarray, bounds: np.ndarray, median: bool) -> np.ndarray:
    """``out[g, j]`` = median (or mean) of ``values[order[bounds[g]:bounds[g+1]], j]``, NaN skipped."""
    n_groups = bounds.shape[0] - 1
    n_cols = values.shape[1]
    out = np.empty((n_groups, n_cols), dtype=np.float64)
    max_size = 0
    for g in range(n_groups):
        max_size = max(max_size, bounds[g + 1] - bounds[g])
    for j in numba.prange(n_cols):
        buf = np.empty(max_size, dtype=np.float64)
        for g in range(n_groups):
            m = 0
            total = 0.0
            for r in range(bounds[g], bounds[g + 1]):
                v = values[order[r], j]
                if not np.isnan(v):
                    buf[m] = v
                    total += v
                    m += 1
            if m == 0:
                out[g, j] = np.nan
            elif median:
                out[g, j] = _select_median(buf, m)
            else:
                out[g, j] = total / m
    return out
