"""Harmony batch correction of profiles (Korsunsky et al. 2019, Nature Methods 16:1289), the last
step of the JUMP Cell Painting recipe (Arevalo et al. 2024): PCA of the profiles, then Harmony on
the principal components with the batch key; the output features are the corrected components.

PCA: ``X_c = X - mean(X)`` over all rows, ``X_c = U S V^T``, scores ``Z = X_c V_k`` for the first
``k = min(n_components, n - 1, d)`` components. Harmony itself is ``harmonypy`` (soft k-means with a
diversity penalty ``theta`` per batch, then a mixture-of-experts linear correction per cluster,
iterated to convergence); it is not written again here.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cellbench.metadata import metadata_columns, require_columns

from ._common import resolve_features

log = logging.getLogger(__name__)


def check_batches(profiles: pd.DataFrame, batch: str | list[str], where: str) -> list[str]:
    """The batch columns, after checking they exist, have no missing value, and every batch holds
    at least two rows."""
    keys = [batch] if isinstance(batch, str) else list(batch)
    require_columns(profiles, keys, where)
    for key in keys:
        if profiles[key].isna().any():
            raise ValueError(f"{where}: batch column {key!r} has missing values (row {profiles.index[profiles[key].isna()][0]!r})")
        sizes = profiles[key].value_counts()
        if len(sizes) < 2:
            raise ValueError(f"{where}: batch column {key!r} has a single batch ({sizes.index[0]!r}); nothing to correct")
        small = sizes[sizes < 2]
        if len(small):
            raise ValueError(f"{where}: batch {small.index[0]!r} of column {key!r} has a single well; a batch needs "
                             "at least two rows to be corrected (merge it or drop it)")
    return keys


def harmony(profiles: pd.DataFrame, batch: str | list[str] = "Metadata_Batch", features: list[str] | str = "infer",
            n_components: int = 50, theta: float | list[float] = 2.0, sigma: float = 0.1, n_clusters: int | None = None,
            max_iter: int = 10, seed: int = 0) -> pd.DataFrame:
    """Metadata + ``harmony_PC1..k``: the Harmony-corrected principal components of the profiles.

    ``batch`` is one column or several (e.g. ``[Metadata_Source, Metadata_Batch]``); ``theta`` the
    diversity penalty (one value, or one per batch column); ``n_clusters`` defaults to harmonypy's
    ``min(n / 30, 100)``. Missing or infinite features and constant features are errors naming the
    column (PCA and Harmony need finite, varying features: select features first).
    """
    import harmonypy

    where = "harmony"
    keys = check_batches(profiles, batch, where)
    features = resolve_features(profiles, features, where)
    X = profiles[features].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{where}: feature column {features[col]!r} has a missing or infinite value in row "
                         f"{profiles.index[row]!r}; impute or drop it (feature_select drop_na_columns) first")
    spread = X.max(axis=0) - X.min(axis=0)
    if (spread == 0).any():
        raise ValueError(f"{where}: feature column {features[int(np.argmax(spread == 0))]!r} is constant; drop it "
                         "(feature_select variance_threshold) first")
    if int(n_components) < 1:
        raise ValueError(f"{where}: n_components must be >= 1, got {n_components!r}")
    k = int(min(n_components, len(X) - 1, X.shape[1]))
    Xc = X - X.mean(axis=0)
    U, S, _ = np.linalg.svd(Xc, full_matrices=False)
    Z = U[:, :k] * S[:k]
    meta = profiles[keys].astype(str).reset_index(drop=True)
    ho = harmonypy.run_harmony(Z, meta, keys, theta=theta, sigma=sigma, nclust=n_clusters,
                               max_iter_harmony=int(max_iter), random_state=int(seed), verbose=False)
    corrected = np.asarray(ho.Z_corr)
    if corrected.shape != Z.shape:  # harmonypy returns components x rows
        corrected = corrected.T
    log.info("harmony: %d rows, %d components, batches %s", len(X), k,
             {key: profiles[key].nunique() for key in keys})
    out = pd.DataFrame(corrected, columns=[f"harmony_PC{i + 1}" for i in range(k)], index=profiles.index)
    return pd.concat([profiles[metadata_columns(profiles)], out], axis=1)
