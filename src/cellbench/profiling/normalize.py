"""Normalisation of profiles against a reference population (all rows or the controls).

``normalize`` has the arguments and numerics of ``pycytominer.normalize`` 1.7.1 (PROFILING.md):
fit on ``profiles.query(samples)``, transform every row, output = metadata + features.
Added: ``by=`` fits and applies the normalisation separately within each plate or batch (the
per-plate DMSO normalisation most pipelines use; pycytominer issue #154), and clear errors.

Methods, with mu / sigma / med / q / MAD computed on the reference rows R, feature by feature:

* ``standardize``: (x - mu) / sigma, sigma the population SD (ddof 0); sigma = 0 -> 1 (sklearn).
* ``robustize``: (x - med) / (q75 - q25), linear-interpolated quantiles; IQR = 0 -> 1 (sklearn).
* ``mad_robustize``: (x - med) / (1.4826 MAD + eps), MAD = median |x - med| (NaN skipped).
* ``inverse_normal``: rank-based inverse normal transform (:func:`inverse_normal`; pycytominer
  1.7.1's ``InverseNormalTransform``), e.g. the JUMP recipe's step after MAD robustize.
* ``spherize``: whitening fitted by SVD of the centred (PCA, ZCA) or standardised (PCA-cor,
  ZCA-cor) reference matrix X_c = U S V^T: W = V diag(1 / (s + eps)) sqrt(n - 1), and for ZCA
  W V^T; output X_c W. With n <= d the singular values past the rank r are set to s_r. This is the
  1.7.1 behaviour; versions 1.1.0-1.7.0 took the SVD of the raw matrix (issue #747) and did not
  whiten.

Missing values as in pycytominer 1.7.1 (its scikit-learn scalers and ``RobustMAD``): NaN are
skipped when the statistics are fitted and stay NaN in the output; an infinite value is an error
naming its column and row (scikit-learn refuses infinity too, without naming it). Spherize needs
a reference without NaN and says so.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from cellbench.metadata import metadata_columns

from ._common import finite_or_nan, resolve_features, select_samples

METHODS = ("standardize", "robustize", "mad_robustize", "spherize", "inverse_normal")
BOUNDS_THRESHOLD = 1e-7  # scikit-learn's QuantileTransformer: inputs this close to the ends map to them
SPHERIZE_METHODS = ("PCA", "ZCA", "PCA-cor", "ZCA-cor")


def inverse_normal(ref: np.ndarray, X: np.ndarray, n_quantiles: int = 1000) -> np.ndarray:
    """Rank-based inverse normal transform of ``X``, fitted on ``ref`` (pycytominer 1.7.1's
    ``InverseNormalTransform``, i.e. scikit-learn's ``QuantileTransformer(output_distribution=
    "normal")``), feature by feature:

    * landmarks: ``r_k = k / (m - 1)``, ``k = 0..m-1``, ``m = min(n_quantiles, n_ref)``, and the
      reference quantiles ``q_k`` (linear interpolation, NaN skipped);
    * ``u(x) = (F(x) + G(x)) / 2``, ``F`` the linear interpolation of ``(q_k, r_k)`` and ``G`` the same
      read from the top down (so tied quantiles give the middle of their range); ``u = 0`` where
      ``x - 1e-7 < q_0`` and ``u = 1`` where ``x + 1e-7 > q_{m-1}``;
    * output ``Phi^-1(u)``, clipped to ``Phi^-1(1e-7 - eps)`` .. ``Phi^-1(1 - (1e-7 - eps))``
      (about +-5.2); NaN stays NaN.

    scikit-learn fits on a random subsample of 10,000 rows when there are more (not reproducible
    without a seed); this fits on every reference row.
    """
    from scipy import stats

    m = max(1, min(int(n_quantiles), len(ref)))
    refs = np.linspace(0, 1, m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column gives NaN quantiles
        quantiles = np.nanpercentile(ref, refs * 100, axis=0)
    lo = stats.norm.ppf(BOUNDS_THRESHOLD - np.spacing(1))
    hi = stats.norm.ppf(1 - (BOUNDS_THRESHOLD - np.spacing(1)))
    out = np.empty_like(X, dtype=np.float64)
    for j in range(X.shape[1]):
        col, q = X[:, j].astype(np.float64), quantiles[:, j]
        with np.errstate(invalid="ignore"):
            lower, upper = col - BOUNDS_THRESHOLD < q[0], col + BOUNDS_THRESHOLD > q[-1]
        finite = ~np.isnan(col)
        col[finite] = 0.5 * (np.interp(col[finite], q, refs) - np.interp(-col[finite], -q[::-1], -refs[::-1]))
        col[upper], col[lower] = 1.0, 0.0
        with np.errstate(invalid="ignore"):
            out[:, j] = np.clip(stats.norm.ppf(col), lo, hi)
    return out


def _fit_transform(ref: np.ndarray, X: np.ndarray, method: str, eps_mad: float, center: bool,
                   sph_method: str, sph_eps: float, where: str, n_quantiles: int = 1000) -> np.ndarray:
    if method == "standardize":  # NaN skipped when fitting and kept when transforming (sklearn)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column gives NaN, as in sklearn
            mu = np.nanmean(ref, axis=0)
            sd = np.nanstd(ref, axis=0)
        sd = np.where(sd < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mu), 1.0), 1.0, sd)
        return (X - mu) / sd
    if method == "robustize":
        med = np.nanmedian(ref, axis=0)
        q25, q75 = np.nanpercentile(ref, [25, 75], axis=0)
        iqr = q75 - q25
        iqr = np.where(iqr < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(q75), 1.0), 1.0, iqr)
        return (X - med) / iqr
    if method == "mad_robustize":
        med = np.nanmedian(ref, axis=0)
        mad = 1.4826 * np.nanmedian(np.abs(ref - med), axis=0)
        return (X - med) / (mad + eps_mad)
    if method == "inverse_normal":
        return inverse_normal(ref, X, n_quantiles)
    return _spherize(ref, X, center, sph_method, sph_eps, where)


def spherize_matrix(ref: np.ndarray, center: bool = True, method: str = "ZCA-cor", epsilon: float = 1e-6,
                    where: str = "spherize") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(shift, scale, W)`` so that ``((X - shift) / scale) @ W`` is the sphered ``X`` (see module doc)."""
    if method not in SPHERIZE_METHODS:
        raise ValueError(f"{where}: spherize_method must be one of {list(SPHERIZE_METHODS)}, got {method!r}")
    if method.endswith("-cor") and not center:
        raise ValueError(f"{where}: {method} requires spherize_center=True")
    n, d = ref.shape
    if np.isnan(ref).any():
        raise ValueError(f"{where}: NaN in the reference rows; impute or drop NaN features first "
                         "(feature_select operation drop_na_columns)")
    shift = ref.mean(axis=0) if center else np.zeros(d)
    scale = np.ones(d)
    if method.endswith("-cor"):
        var = ref.var(axis=0)
        zero = np.flatnonzero(var == 0)
        if len(zero):
            raise ValueError(f"{where}: {len(zero)} feature(s) have zero variance in the reference rows "
                             f"(e.g. column index {zero[0]}); remove them first (feature_select variance_threshold)")
        scale = np.sqrt(var)
    Xc = (ref - shift) / scale
    r = np.linalg.matrix_rank(Xc)
    if not (r == d or (center and r == n - 1) or (not center and r == n)):
        raise ValueError(f"{where}: the reference matrix is not full rank (n = {n}, d = {d}, rank = {r}); "
                         "remove linearly dependent features (feature_select correlation_threshold)")
    _, s, vt = np.linalg.svd(Xc, full_matrices=True)
    if n <= d:
        s = np.concatenate([s[:r], np.repeat(s[r - 1], d - r)])
    s = s + epsilon
    W = (vt / s[:, None]).T * np.sqrt(n - 1)
    if method.startswith("ZCA"):
        W = W @ vt
    return shift, scale, W


def _spherize(ref, X, center, method, eps, where) -> np.ndarray:
    shift, scale, W = spherize_matrix(ref, center, method, eps, where)
    return ((X - shift) / scale) @ W


def normalize(profiles: pd.DataFrame, features: list[str] | str = "infer", meta_features: list[str] | str = "infer",
              image_features: bool = True, samples: str = "all", method: str = "standardize", mad_robustize_epsilon: float = 1e-18,
              spherize_center: bool = True, spherize_method: str = "ZCA-cor", spherize_epsilon: float = 1e-6,
              by: str | list[str] | None = None, inverse_normal_n_quantiles: int = 1000) -> pd.DataFrame:
    """Normalised profiles: fitted on the ``samples`` rows (of each ``by`` group), applied to all rows.

    Returns ``meta_features`` then the features (``PC1..PCd`` for PCA sphering) in the input row order.
    ``image_features=False`` leaves ``Image_`` columns out of the inferred features (pycytominer's
    default); cellbench's default keeps every non-``Metadata_`` column. ``Image_`` and ``ome_arrow_``
    columns that are neither features nor metadata pass through unchanged after the metadata, as
    in pycytominer 1.7.1.
    """
    where = "normalize"
    if method not in METHODS:
        raise ValueError(f"{where}: method must be one of {list(METHODS)}, got {method!r}")
    if mad_robustize_epsilon is None or mad_robustize_epsilon < 0:
        raise ValueError(f"{where}: mad_robustize_epsilon must be a float >= 0, got {mad_robustize_epsilon!r}")
    if not inverse_normal_n_quantiles or inverse_normal_n_quantiles < 1:
        raise ValueError(f"{where}: inverse_normal_n_quantiles must be a positive integer, got {inverse_normal_n_quantiles!r}")
    features = resolve_features(profiles, features, where, image_features=image_features)
    if isinstance(meta_features, str):
        if meta_features != "infer":
            raise ValueError(f"{where}: meta_features must be a list or 'infer', got {meta_features!r}")
        meta_features = metadata_columns(profiles)
    X = finite_or_nan(profiles, features, where)
    ref_mask = select_samples(profiles, samples, where)
    out = np.empty_like(X)
    if by is None:
        groups = [(None, np.arange(len(profiles)))]
    else:
        by = [by] if isinstance(by, str) else list(by)
        missing = [c for c in by if c not in profiles.columns]
        if missing:
            raise ValueError(f"{where}: by column(s) {missing} not in the table")
        groups = [(key, idx) for key, idx in profiles.groupby(by, sort=True, dropna=False).indices.items()]
    for key, idx in groups:
        ref = X[idx[ref_mask[idx]]]
        label = where if key is None else f"{where} (by {by} = {key})"
        if len(ref) == 0:
            raise ValueError(f"{label}: samples query {samples!r} selects no rows in this group")
        if method == "spherize" and len(ref) < 2:
            raise ValueError(f"{label}: spherize needs at least 2 reference rows, got {len(ref)}")
        out[idx] = _fit_transform(ref, X[idx], method, mad_robustize_epsilon, spherize_center,
                                  spherize_method, spherize_epsilon, label, inverse_normal_n_quantiles)
    columns = ([f"PC{i}" for i in range(1, len(features) + 1)]
               if method == "spherize" and spherize_method.startswith("PCA") else features)
    taken = set(features) | set(meta_features)
    passthrough = [c for c in profiles.columns if c not in taken and str(c).startswith(("Image_", "ome_arrow_"))]
    return pd.concat([profiles[meta_features + passthrough].reset_index(drop=True),
                      pd.DataFrame(out, columns=columns)], axis=1)
