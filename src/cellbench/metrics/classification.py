"""Class-balanced classification metrics (seed 000 reports balanced error, Table 3).

``balanced_error = 1 - (1/K) sum_k TP_k / P_k`` over the ``K`` classes present in ``y_true``
(the mean per-class sensitivity, i.e. balanced accuracy, subtracted from one). It equals
``1 - sklearn.metrics.balanced_accuracy_score``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D, got shapes {y_true.shape} and {y_pred.shape}")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("balanced error of an empty set is undefined")
    return y_true, y_pred


def per_class_sensitivity(y_true, y_pred, labels: Sequence | None = None) -> np.ndarray:
    """Recall of each class in ``labels`` (default: sorted classes of ``y_true``); NaN if absent."""
    y_true, y_pred = _check(y_true, y_pred)
    labels = np.unique(y_true) if labels is None else np.asarray(labels)
    out = np.full(len(labels), np.nan)
    for k, lab in enumerate(labels):
        mask = y_true == lab
        if mask.any():
            out[k] = np.mean(y_pred[mask] == lab)
    return out


def balanced_error(y_true, y_pred) -> float:
    """``1 - mean_k recall_k`` over the classes present in ``y_true``.

    >>> balanced_error([0, 0, 0, 1], [0, 0, 1, 1])  # recalls 2/3 and 1
    0.16666666666666663
    """
    return float(1.0 - np.mean(per_class_sensitivity(y_true, y_pred)))


def confusion_matrix(y_true, y_pred, labels: Sequence) -> np.ndarray:
    """Counts ``C[i, j]`` of true ``labels[i]`` predicted as ``labels[j]`` (int64)."""
    y_true, y_pred = _check(y_true, y_pred)
    labels = np.asarray(labels)
    index = {lab: i for i, lab in enumerate(labels.tolist())}
    k = len(labels)
    ti = np.array([index.get(v, -1) for v in y_true.tolist()])
    pi = np.array([index.get(v, -1) for v in y_pred.tolist()])
    ok = (ti >= 0) & (pi >= 0)
    return np.bincount(ti[ok] * k + pi[ok], minlength=k * k).reshape(k, k).astype(np.int64)
