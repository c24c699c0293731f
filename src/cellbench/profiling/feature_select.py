"""Feature selection with the semantics of ``pycytominer.feature_select`` 1.7.1 (PROFILING.md).

Operations run in the order given, each on the features the previous ones kept:

* ``drop_na_columns``: drop a feature whose fraction of missing values exceeds ``na_cutoff``.
* ``variance_threshold``: drop a feature whose population variance is <= ``min_variance``
  (sklearn ``VarianceThreshold``: variance > threshold is kept; a constant feature is always dropped).
* ``correlation_threshold``: for every pair with Pearson r > ``corr_threshold`` (signed, as in
  pycytominer: strongly anti-correlated pairs are kept), drop the member whose summed |r| to all
  features is larger (ties broken by the later position in a stable sort).
* ``frequency_threshold`` (caret's ``nearZeroVar``): drop a feature whose frequency ratio
  n_2 / n_1 (counts of its second most and most common values, NaN left out; 0 with fewer than
  two distinct values) is < ``freq_cut``, or whose share of distinct values (distinct non-missing
  values / rows) is < ``unique_cut``.
* ``blocklist``: drop the features named in ``blocklist`` (a list) or ``blocklist_file`` (a text
  file, one name a line under a ``blocklist`` header, pycytominer's format); names not in the
  table are ignored. cellbench ships no default list (pycytominer's is CellProfiler-specific).
* ``drop_outliers``: drop a feature with max |x| > ``outlier_cutoff`` or |min x| > ``outlier_cutoff``.
* ``noise_removal``: drop a feature whose within-group population SD (groups: the column
  ``noise_removal_perturb_groups``, or one label per sample row), averaged over groups, is >
  ``noise_removal_stdev_cutoff`` (both required).

``image_features=False`` leaves ``Image_`` columns out of the inferred features (pycytominer's
default); cellbench's default keeps every non-``Metadata_`` column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import finite_or_nan, resolve_features, select_samples

OPERATIONS = ("drop_na_columns", "variance_threshold", "correlation_threshold", "frequency_threshold", "blocklist",
              "drop_outliers", "noise_removal")


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


def low_frequency(X: np.ndarray, freq_cut: float = 0.05, unique_cut: float = 0.01) -> np.ndarray:
    """Boolean mask of the columns to drop by the near-zero-variance rule (module doc)."""
    if not 0 <= freq_cut <= 1:
        raise ValueError(f"feature_select: freq_cut must be in [0, 1], got {freq_cut}")
    if not 0 <= unique_cut <= 1:
        raise ValueError(f"feature_select: unique_cut must be in [0, 1], got {unique_cut}")
    n = X.shape[0]
    drop = np.zeros(X.shape[1], dtype=bool)
    for j in range(X.shape[1]):
        col = X[:, j]
        _, counts = np.unique(col[~np.isnan(col)], return_counts=True)
        if len(counts) < 2:
            ratio = 0.0
        else:
            top = np.partition(counts, len(counts) - 2)[-2:]
            ratio = top[0] / top[1]
        drop[j] = ratio < freq_cut or (len(counts) / n if n else 0.0) < unique_cut
    return drop


def outliers(X: np.ndarray, cutoff: float = 500.0) -> np.ndarray:
    """Boolean mask of the columns to drop: max |x| or |min x| above ``cutoff`` (NaN ignored)."""
    if cutoff < 0:
        raise ValueError(f"feature_select: outlier_cutoff must be >= 0, got {cutoff}")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column is kept
        return (np.abs(np.nanmax(X, axis=0)) > cutoff) | (np.abs(np.nanmin(X, axis=0)) > cutoff)


def noisy(X: np.ndarray, groups: np.ndarray, cutoff: float) -> np.ndarray:
    """Boolean mask of the columns to drop: mean over groups of the within-group population SD >
    ``cutoff`` (rows with a missing group label left out, NaN values skipped)."""
    frame = pd.DataFrame(X)
    sd = frame.groupby(pd.Series(groups, index=frame.index)).std(ddof=0).mean()
    return (sd > cutoff).to_numpy()


def read_blocklist(path: str) -> list[str]:
    """Feature names of a blocklist file: one a line, under a ``blocklist`` header line."""
    from pathlib import Path

    try:
        lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise ValueError(f"feature_select: cannot read blocklist_file {path!r} ({exc.strerror})") from exc
    if not lines or lines[0] != "blocklist":
        raise ValueError(f"feature_select: blocklist_file {path!r} must start with a 'blocklist' header line, "
                         f"got {lines[0] if lines else 'an empty file'!r}")
    return lines[1:]


def feature_select(profiles: pd.DataFrame, features: list[str] | str = "infer", image_features: bool = True,
                   samples: str = "all", operation: str | list[str] = "variance_threshold", na_cutoff: float = 0.05,
                   corr_threshold: float = 0.9, freq_cut: float = 0.05, unique_cut: float = 0.01,
                   blocklist: list[str] | None = None, blocklist_file: str | None = None,
                   outlier_cutoff: float = 500.0, noise_removal_perturb_groups: str | list | None = None,
                   noise_removal_stdev_cutoff: float | None = None, min_variance: float = 1e-6) -> pd.DataFrame:
    """The profiles without the features the operations exclude (statistics from ``samples`` rows)."""
    where = "feature_select"
    ops = [operation] if isinstance(operation, str) else list(operation)
    unknown = [op for op in ops if op not in OPERATIONS]
    if unknown:
        raise ValueError(f"{where}: unknown operation(s) {unknown}; expected {list(OPERATIONS)}")
    features = resolve_features(profiles, features, where, image_features=image_features)
    rows = select_samples(profiles, samples, where)
    kept = list(features)
    finite_or_nan(profiles.loc[rows], features, where)
    groups = None
    if "noise_removal" in ops:
        groups = _noise_groups(profiles, rows, noise_removal_perturb_groups, noise_removal_stdev_cutoff, where)
    if "blocklist" in ops and blocklist is None and blocklist_file is None:
        raise ValueError(f"{where}: operation 'blocklist' needs blocklist (a list of feature names) or blocklist_file")
    for op in ops:
        X = profiles.loc[rows, kept].to_numpy(dtype=np.float64)
        if op == "drop_na_columns":
            drop = drop_na_columns(X, na_cutoff)
        elif op == "variance_threshold":
            drop = low_variance(X, min_variance)
        elif op == "correlation_threshold":
            drop = high_correlation(X, corr_threshold)
        elif op == "frequency_threshold":
            drop = low_frequency(X, freq_cut, unique_cut)
        elif op == "drop_outliers":
            drop = outliers(X, outlier_cutoff)
        elif op == "noise_removal":
            drop = noisy(X, groups, noise_removal_stdev_cutoff)
        else:
            names = set(blocklist or []) | set(read_blocklist(blocklist_file) if blocklist_file else [])
            drop = np.array([f in names for f in kept], dtype=bool)
        kept = [f for f, d in zip(kept, drop) if not d]
    if not kept:
        raise ValueError(f"{where}: every feature was excluded by {ops}")
    excluded = set(features) - set(kept)
    return profiles[[c for c in profiles.columns if c not in excluded]]


def _noise_groups(profiles: pd.DataFrame, rows: np.ndarray, groups, cutoff, where: str) -> np.ndarray:
    """The group label of every sample row for ``noise_removal`` (a column name or one label a row)."""
    if groups is None or cutoff is None:
        raise ValueError(f"{where}: operation 'noise_removal' needs both noise_removal_perturb_groups (a column "
                         "or one label per sample row) and noise_removal_stdev_cutoff")
    if isinstance(groups, str):
        if groups not in profiles.columns:
            raise ValueError(f"{where}: noise_removal_perturb_groups column {groups!r} not in the table")
        return profiles.loc[rows, groups].to_numpy()
    groups = np.asarray(list(groups), dtype=object)
    if len(groups) != int(rows.sum()):
        raise ValueError(f"{where}: noise_removal_perturb_groups has {len(groups)} labels for {int(rows.sum())} "
                         "sample rows; give one label per row or a column name")
    return groups
