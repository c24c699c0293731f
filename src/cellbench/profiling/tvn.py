"""Typical variation normalisation (TVN) and per-batch CORAL (PROFILING.md section 3, METHODS.md 5.2).

TVN (Ando et al. 2017): fit a PCA whitening on the negative-control profiles and apply it to all.
With mu the control mean and C = V diag(s) V^T the control covariance (ddof 1),

    TVN(x) = (x - mu) V diag(1 / sqrt(s + lambda))          (rotate=False, DeepProfiler BBBC021)
    TVN(x) = (x - mu) V diag(1 / sqrt(s + lambda)) V^T      (rotate=True, ZCA form)

so the controls get (near) identity covariance and directions of typical, nuisance variation are
shrunk; lambda regularises directions the controls barely span (DeepProfiler uses lambda = 1).

CORAL per batch (Sun et al. 2016, as in DeepProfiler's BBBC021 script): with uncentred second
moments M(X) = X^T X / n of control rows, target T = sqrtm(M(all controls) + lambda I) and, for each
batch b, S_b = sqrtm(M(controls of b) + lambda I)^-1, every row of batch b becomes x S_b T.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import resolve_features, select_samples


def _sqrtm_psd(a: np.ndarray, inverse: bool = False) -> np.ndarray:
    vals, vecs = np.linalg.eigh((a + a.T) / 2)
    vals = np.clip(vals, 0, None)
    root = np.sqrt(vals)
    if inverse:
        if np.any(root <= 0):
            raise ValueError("CORAL: a regularised second-moment matrix is singular; use lambda > 0")
        root = 1.0 / root
    return (vecs * root) @ vecs.T


def tvn_fit(controls: np.ndarray, reg: float = 1.0, rotate: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, W)`` of the TVN transform fitted on ``controls`` (module doc); apply as ``(x - mu) @ W``."""
    controls = np.asarray(controls, dtype=np.float64)
    if controls.ndim != 2 or len(controls) < 2:
        raise ValueError(f"TVN: need at least 2 control profiles, got {len(controls)}")
    if np.isnan(controls).any():
        raise ValueError("TVN: NaN in the control profiles; drop or impute NaN features first")
    if reg < 0:
        raise ValueError(f"TVN: reg must be >= 0, got {reg}")
    mu = controls.mean(axis=0)
    cov = np.cov(controls, rowvar=False, ddof=1).reshape(controls.shape[1], controls.shape[1])
    vals, vecs = np.linalg.eigh(cov)
    vals = np.clip(vals, 0, None) + reg
    if np.any(vals <= 0):
        raise ValueError(f"TVN: the controls span fewer directions ({np.sum(vals > 0)}) than there are "
                         f"features ({len(vals)}); use reg > 0")
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    W = vecs / np.sqrt(vals)
    if rotate:
        W = W @ vecs.T
    return mu, W


def coral_per_batch(X: np.ndarray, batches: np.ndarray, control_mask: np.ndarray, reg: float = 1.0) -> np.ndarray:
    """Per-batch CORAL of ``X`` (module doc): align each batch's control second moments to the global ones."""
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    eye = reg * np.eye(d)
    ctrl = X[control_mask]
    if len(ctrl) == 0:
        raise ValueError("CORAL: no control rows")
    target = _sqrtm_psd(ctrl.T @ ctrl / len(ctrl) + eye)
    out = np.empty_like(X)
    for b in pd.unique(batches):
        rows = np.asarray(batches == b)
        cb = X[rows & control_mask]
        if len(cb) == 0:
            raise ValueError(f"CORAL: batch {str(b)!r} has no control rows")
        source = _sqrtm_psd(cb.T @ cb / len(cb) + eye, inverse=True)
        out[rows] = X[rows] @ source @ target
    return out


def tvn(profiles: pd.DataFrame, features: list[str] | str = "infer", samples: str = "Metadata_Control == True",
        reg: float = 1.0, rotate: bool = False, by: str | None = None, coral_by: str | None = None,
        coral_reg: float = 1.0) -> pd.DataFrame:
    """TVN-whitened profiles (fitted on the ``samples`` controls, globally or per ``by`` group),
    then optionally CORAL per ``coral_by`` batch. Metadata kept; features renamed ``TVN_1..TVN_d``
    (the output lives in the whitened basis, not in the input features)."""
    where = "tvn"
    features = resolve_features(profiles, features, where)
    ctrl = select_samples(profiles, samples, where)
    X = profiles[features].to_numpy(dtype=np.float64)
    out = np.empty_like(X)
    groups = [np.arange(len(X))] if by is None else list(profiles.groupby(by, sort=True).indices.values())
    for idx in groups:
        mu, W = tvn_fit(X[idx[ctrl[idx]]], reg, rotate)
        out[idx] = (X[idx] - mu) @ W
    if coral_by is not None:
        if coral_by not in profiles.columns:
            raise ValueError(f"{where}: coral_by column {coral_by!r} not in the table")
        out = coral_per_batch(out, profiles[coral_by].to_numpy(), ctrl, coral_reg)
    meta = profiles[[c for c in profiles.columns if c not in features]].reset_index(drop=True)
    return pd.concat([meta, pd.DataFrame(out, columns=[f"TVN_{i}" for i in range(1, X.shape[1] + 1)])], axis=1)
