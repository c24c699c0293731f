"""Shared argument handling for the profiling functions (pycytominer-compatible conventions)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellbench.metadata import feature_columns


def resolve_features(df: pd.DataFrame, features, where: str, image_features: bool = True) -> list[str]:
    """``"infer"`` -> every non-``Metadata_`` column (cellbench's explicit convention, not a prefix
    guess), without the ``Image_`` columns when ``image_features`` is false (pycytominer's
    ``image_features=False``); a list is checked for presence and numeric dtype."""
    if isinstance(features, str):
        if features != "infer":
            raise ValueError(f"{where}: features must be a list of column names or 'infer', got {features!r}")
        features = feature_columns(df)
        if not image_features:
            features = [f for f in features if not str(f).startswith("Image_")]
    features = list(features)
    if not features:
        raise ValueError(f"{where}: no feature columns (every column starts with 'Metadata_')")
    missing = [f for f in features if f not in df.columns]
    if missing:
        raise ValueError(f"{where}: feature column(s) {missing[:5]} not in the table")
    bad = [f for f in features if not pd.api.types.is_numeric_dtype(df[f])]
    if bad:
        raise ValueError(f"{where}: feature column(s) {bad[:5]} are not numeric")
    return features


def select_samples(df: pd.DataFrame, samples: str, where: str) -> np.ndarray:
    """Boolean row mask of ``samples`` (``"all"`` or a ``DataFrame.query`` string, as in pycytominer)."""
    if samples == "all":
        return np.ones(len(df), dtype=bool)
    try:
        picked = df.query(samples).index
    except Exception as exc:
        raise ValueError(f"{where}: samples query {samples!r} failed ({type(exc).__name__}: {exc})") from exc
    mask = df.index.isin(picked)
    if not mask.any():
        raise ValueError(f"{where}: samples query {samples!r} selects no rows (e.g. no control wells)")
    return np.asarray(mask)


def finite_or_nan(df: pd.DataFrame, features: list[str], where: str) -> np.ndarray:
    """``df[features]`` as float64; NaN allowed (missing), +-inf an error naming the column and row."""
    X = df[features].to_numpy(dtype=np.float64)
    inf = np.isinf(X)
    if inf.any():
        row, col = np.argwhere(inf)[0]
        raise ValueError(f"{where}: feature column {features[col]!r} has an infinite value ({X[row, col]}) in row "
                         f"{df.index[row]!r}; replace it (e.g. by NaN) or drop the column")
    return X
