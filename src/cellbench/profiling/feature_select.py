"""Feature selection with the semantics of ``pycytominer.feature_select`` 1.7.1 (PROFILING.md).

Operations run in the order given, each on the features the previous ones kept:

* ``drop_na_columns``: drop a feature whose fraction of missing values exceeds ``na_cutoff``.
* ``variance_threshold``: drop a feature whose population variance is <= ``min_variance``
  (sklearn ``VarianceThreshold``: variance > threshold is kept; a constant feature is always dropped).
* ``correlation_threshold``: for every pair with Pearson r > ``corr_threshold`` (signed, as in
  pycytominer: strongly anti-correlated pairs are kept), drop the member whose summed |r| to all
  features is larger (ties broken by the later position in a stable sort).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import finite_or_nan, resolve_features, select_samples

OPERATIONS = ("drop_na_columns", "variance_threshold", "correlation_threshold")


def drop_na_columns(X: np.ndarray, cutoff: float = 0.05) -> np.ndarray:
    """Boolean mask of the columns to drop: fraction of NaN > ``cutoff``."""
    if not 0 <= cutoff <= 1:
        raise ValueError(f"feature_select: na_cutoff must be in [0, 1], got {cutoff}")
    return np.isnan(X).mean(axis=0) > cutoff


def low_variance(X: np.ndarray, min_variance: float = 1e-6) -> np.ndarray:
    """Boolean mask of the columns to drop: population variance <= ``min_variance`` (NaN ignored)."""
    if min_variance < 0:
        raise ValueError(f"feature_select: min_variance must be >= 0, got {min_variance}")
    var = np.nanvar(X, axis=0)
    return ~(var > min_variance) | (np.nanmax(X, axis=0) == np.nanmin(X, axis=0))


def high_correlation(X: np.ndarray, threshold: float = 0.9) -> np.ndarray:
    """Boolean mask of the columns to drop by pycytominer's correlation rule (module doc)."""
    if not 0 <= threshold <= 1:
        raise ValueError(f"feature_select: corr_threshold must be in [0, 1], got {threshold}")
    d = X.shape[1]
    if d < 2:
        return np.zeros(d, dtype=bool)
    if np.isnan(X).any():
        r = pd.DataFrame(X).corr().to_numpy()
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.corrcoef(X, rowvar=False)
    abs_sum = np.nansum(np.abs(r), axis=0)
    rank = np.empty(d, dtype=np.int64)
    rank[np.argsort(abs_sum, kind="quicksort")] = np.arange(d)  # pandas sort_values default
    a, b = np.tril_indices(d, k=-1)  # pair_a = row (later feature), pair_b = column
    hit = r[a, b] > threshold
    drop = np.where(rank[a[hit]] > rank[b[hit]], a[hit], b[hit])
    mask = np.zeros(d, dtype=bool)
    mask[drop] = True
    return mask


def feature_select(profiles: pd.DataFrame, features: list[str] | str = "infer", samples: str = "all",
                   operation: str | list[str] = "variance_threshold", na_cutoff: float = 0.05,
                   corr_threshold: float = 0.9, min_variance: float = 1e-6) -> pd.DataFrame:
    """The profiles without the features the operations exclude (statistics from ``samples`` rows)."""
    where = "feature_select"
    ops = [operation] if isinstance(operation, str) else list(operation)
    unknown = [op for op in ops if op not in OPERATIONS]
    if unknown:
        raise ValueError(f"{where}: unknown operation(s) {unknown}; expected {list(OPERATIONS)}")
    features = resolve_features(profiles, features, where)
    rows = select_samples(profiles, samples, where)
    kept = list(features)
    finite_or_nan(profiles.loc[rows], features, where)
    for op in ops:
        X = profiles.loc[rows, kept].to_numpy(dtype=np.float64)
        if op == "drop_na_columns":
            drop = drop_na_columns(X, na_cutoff)
        elif op == "variance_threshold":
            drop = low_variance(X, min_variance)
        else:
            drop = high_correlation(X, corr_threshold)
        kept = [f for f, d in zip(kept, drop) if not d]
    if not kept:
        raise ValueError(f"{where}: every feature was excluded by {ops}")
    excluded = set(features) - set(kept)
    return profiles[[c for c in profiles.columns if c not in excluded]]
