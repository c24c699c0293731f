"""Single-cell analysis (seed 002, Figs 5 and 6).

Multi-localisation score of a cell between compartments A and B (Methods, "Single cell analysis
of multiply-localized proteins"): with ``mu_A`` and ``mu_B`` the mean features of the cells of
proteins localised to A alone and to B alone,

    s(f) = log( ||f - mu_A||_2 / ||f - mu_B||_2 ),

negative when the cell is closer to A, positive when closer to B, about 0 for an even mix.

Single-cell clustering (Fig 6): the cells of one spatially variable protein are clustered by
hierarchical agglomerative clustering; cutting the tree into as many clades as the protein has
sub-populations gives clades to compare with them (ARI).
"""

from __future__ import annotations

import numpy as np
from scipy.cluster import hierarchy
from sklearn.metrics import adjusted_rand_score


def multilocalisation_score(feats: np.ndarray, ref_a: np.ndarray, ref_b: np.ndarray) -> np.ndarray:
    """``log(||f - ref_a|| / ||f - ref_b||)`` for every row ``f`` of ``feats`` (module docstring)."""
    feats = np.asarray(feats, dtype=np.float64)
    d_a = np.linalg.norm(feats - np.asarray(ref_a, np.float64)[None], axis=1)
    d_b = np.linalg.norm(feats - np.asarray(ref_b, np.float64)[None], axis=1)
    tiny = np.finfo(np.float64).tiny
    return np.log(np.maximum(d_a, tiny) / np.maximum(d_b, tiny))


def cell_clades(feats: np.ndarray, n_clades: int, linkage: str) -> tuple[np.ndarray, np.ndarray]:
    """``(tree, clades)``: the linkage matrix of one protein's cells (features as given, already
    standardised over the whole table) and the clade (1..n_clades) of each cell."""
    feats = np.asarray(feats, dtype=np.float64)
    if len(feats) < max(2, n_clades):
        raise ValueError(f"single-cell clustering needs at least {max(2, n_clades)} cells, got {len(feats)}")
    tree = hierarchy.linkage(feats, method=linkage, metric="euclidean")
    return tree, hierarchy.fcluster(tree, t=n_clades, criterion="maxclust")


def clade_agreement(truth: np.ndarray, clades: np.ndarray) -> float:
    """ARI between the true sub-populations and the clades."""
    return float(adjusted_rand_score(np.asarray(truth), np.asarray(clades)))
