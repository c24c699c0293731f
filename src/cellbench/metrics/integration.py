"""Batch removal and biology kept: the scores of the single-cell integration benchmark (scIB,
Luecken et al. 2022, Nature Methods 19:41) as the JUMP batch-correction benchmark uses them
(Arevalo et al. 2024, Nature Communications 15:6516), written after the definitions of
``scib-metrics`` 0.5 (its test suite pins cellbench's numbers to them).

Every score lies in [0, 1], higher is better:

* batch removal: :func:`silhouette_batch`, :func:`ilisi`, :func:`graph_connectivity`;
* biology kept: :func:`silhouette_label`, :func:`kmeans_nmi_ari` (NMI and ARI), and MoA mAP
  where the caller has it (``metrics.retrieval``, copairs conventions);
* ``overall = 0.4 * batch + 0.6 * biology``, each the mean of its scores (:func:`integration_scores`).

The neighbour graph is exact (scikit-learn, Euclidean), each row's own point first.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

BATCH_WEIGHT = 0.4  # scIB / Arevalo et al. 2024: overall = 0.4 batch + 0.6 biology


class Neighbours(NamedTuple):
    """The ``k`` nearest neighbours of every row (itself first): indices and Euclidean distances."""

    indices: np.ndarray
    distances: np.ndarray


def neighbours(X: np.ndarray, k: int = 90) -> Neighbours:
    """Exact k-nearest-neighbour graph of the rows of ``X`` (k = min(k, n), self included)."""
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X, dtype=np.float64)
    k = int(min(k, len(X)))
    if k < 2:
        raise ValueError(f"neighbours: need at least 2 rows, got {len(X)}")
    dist, idx = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    # put each row first among its zero-distance ties (duplicates), as scib-metrics expects
    for i in np.flatnonzero(idx[:, 0] != np.arange(len(X))):
        j = np.flatnonzero(idx[i] == i)
        if len(j):
            idx[i, [0, j[0]]] = idx[i, [j[0], 0]]
            dist[i, [0, j[0]]] = dist[i, [j[0], 0]]
    return Neighbours(idx, dist)


def silhouette_label(X: np.ndarray, labels, rescale: bool = True) -> float:
    """Label silhouette: mean over rows of ``s_i = (b_i - a_i) / max(a_i, b_i)`` (a: mean distance to
    the row's own label, b: to the nearest other label), rescaled ``(asw + 1) / 2``."""
    from sklearn.metrics import silhouette_samples

    asw = float(np.mean(silhouette_samples(X, np.asarray(labels))))
    return (asw + 1) / 2 if rescale else asw


def silhouette_batch(X: np.ndarray, labels, batch, rescale: bool = True) -> float:
    """Batch silhouette within labels: for every label with 2..n-1 batches among its rows, the
    silhouette ``s_i`` of the batch labels on those rows, scored ``1 - |s_i|`` (batches mixed -> 1),
    averaged over the label's rows, then over labels."""
    from sklearn.metrics import silhouette_samples

    labels, batch = np.asarray(labels), np.asarray(batch)
    means = []
    for group in np.unique(labels):
        mask = labels == group
        n_batches = len(np.unique(batch[mask]))
        if n_batches == 1 or n_batches == mask.sum():
            continue
        s = np.abs(silhouette_samples(X[mask], batch[mask]))
        means.append(np.mean(1 - s if rescale else s))
    if not means:
        raise ValueError("silhouette_batch: no label has rows in two or more batches (with some batch repeated)")
    return float(np.mean(means))


def _simpson(distances: np.ndarray, codes: np.ndarray, self_mask: np.ndarray, n_labels: int,
             perplexity: float, tol: float = 1e-5, max_tries: int = 50) -> np.ndarray:
    """Simpson index ``sum_l (sum_{j in N(i), label l} P_ij)^2`` per row, ``P_ij ~ exp(-beta_i d_ij)``
    over the neighbours other than the row itself, ``beta_i`` found by bisection so that the
    entropy of ``P_i`` is ``log(perplexity)`` (|difference| < ``tol``, at most 50 halvings); -1
    where the entropy is 0 (all neighbours at the same point)."""
    n = len(distances)
    beta = np.ones(n)
    betamin, betamax = np.full(n, -np.inf), np.full(n, np.inf)

    def entropy(beta):
        P = np.where(self_mask, np.exp(-distances * beta[:, None]), 0.0)
        sumP = np.nansum(P, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            H = np.where(sumP == 0, 0.0, np.log(sumP) + beta * np.nansum(distances * P, axis=1) / sumP)
            P = np.where(sumP[:, None] == 0, 0.0, P / sumP[:, None])
        return H, P

    H, P = entropy(beta)
    Hdiff = H - np.log(perplexity)
    tries = np.zeros(n, dtype=np.int64)
    active = (np.abs(Hdiff) >= tol) & (tries < max_tries)
    while active.any():
        up = Hdiff > 0
        new_betamin = np.where(up, beta, betamin)
        new_betamax = np.where(up, betamax, beta)
        new_beta = np.where(up, np.where(betamax == np.inf, beta * 2, (beta + betamax) / 2),
                            np.where(betamin == -np.inf, beta / 2, (beta + betamin) / 2))
        newH, newP = entropy(new_beta)
        a = active
        beta[a], betamin[a], betamax[a], H[a], P[a] = new_beta[a], new_betamin[a], new_betamax[a], newH[a], newP[a]
        Hdiff[a] = H[a] - np.log(perplexity)
        tries[a] += 1
        active = (np.abs(Hdiff) >= tol) & (tries < max_tries)
    sums = np.zeros((n, n_labels))
    np.add.at(sums, (np.repeat(np.arange(n), distances.shape[1]), codes.ravel()), P.ravel())
    return np.where(H == 0, -1.0, np.einsum("ij,ij->i", sums, sums))


def lisi(graph: Neighbours, labels, perplexity: float | None = None) -> np.ndarray:
    """Local inverse Simpson index of every row: ``1 / simpson_i`` (:func:`_simpson`), the effective
    number of labels among its neighbours (Korsunsky et al. 2019). Perplexity: k // 3 by default."""
    codes_all = np.asarray(pd.Categorical(np.asarray(labels)).codes)
    idx, dist = graph
    perplexity = float(np.floor(idx.shape[1] / 3)) if perplexity is None else float(perplexity)
    simpson = _simpson(dist, codes_all[idx], idx != np.arange(len(idx))[:, None], int(codes_all.max()) + 1, perplexity)
    return 1 / simpson


def ilisi(graph: Neighbours, batch, perplexity: float | None = None) -> float:
    """Integration LISI: ``(median_i LISI_i(batch) - 1) / (B - 1)`` with B batches (1: fully mixed)."""
    codes = np.asarray(pd.Categorical(np.asarray(batch)).codes)
    n_batches = len(np.unique(codes))
    if n_batches < 2:
        raise ValueError("ilisi: the batch labels have a single batch")
    return float((np.nanmedian(lisi(graph, codes, perplexity)) - 1) / (n_batches - 1))


def graph_connectivity(graph: Neighbours, labels) -> float:
    """Mean over labels of the share of the label's rows in the largest connected component of
    the kNN graph restricted to them (strong connectivity of the directed graph)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    idx, dist = graph
    n, k = idx.shape
    adj = csr_matrix((dist.ravel(), idx.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))
    labels = np.asarray(labels)
    shares = []
    for group in np.unique(labels):
        mask = labels == group
        _, comps = connected_components(adj[mask][:, mask], connection="strong")
        counts = np.bincount(comps)
        shares.append(counts.max() / counts.sum())
    return float(np.mean(shares))


def kmeans_nmi_ari(X: np.ndarray, labels, seed: int = 0, n_init: int = 10) -> tuple[float, float]:
    """k-means with as many clusters as labels (scikit-learn, ``n_init`` starts, ``seed``), then
    NMI (arithmetic normalisation) and ARI of the clusters against the labels."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = np.asarray(labels)
    k = len(np.unique(labels))
    clusters = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(np.asarray(X, dtype=np.float64))
    return float(normalized_mutual_info_score(labels, clusters)), float(adjusted_rand_score(labels, clusters))


def integration_scores(X: np.ndarray, batch, labels, k: int = 90, seed: int = 0,
                       extra_bio: dict[str, float] | None = None) -> dict[str, float]:
    """Every score plus ``batch_score`` / ``bio_score`` (means of each family; ``extra_bio``, e.g.
    ``{"map_moa": ...}``, joins the biology family) and ``overall = 0.4 batch + 0.6 biology``."""
    X = np.asarray(X, dtype=np.float64)
    batch, labels = np.asarray(batch), np.asarray(labels)
    if not (len(X) == len(batch) == len(labels)):
        raise ValueError(f"integration_scores: {len(X)} rows, {len(batch)} batch labels, {len(labels)} labels")
    if np.isnan(X).any():
        raise ValueError("integration_scores: the profiles have missing values")
    graph = neighbours(X, k)
    nmi, ari = kmeans_nmi_ari(X, labels, seed=seed)
    batch_scores = {"silhouette_batch": silhouette_batch(X, labels, batch), "ilisi": ilisi(graph, batch),
                    "graph_connectivity": graph_connectivity(graph, labels)}
    bio_scores = {"silhouette_label": silhouette_label(X, labels), "kmeans_nmi": nmi, "kmeans_ari": ari,
                  **(extra_bio or {})}
    out = {**batch_scores, **bio_scores}
    out["batch_score"] = float(np.mean(list(batch_scores.values())))
    out["bio_score"] = float(np.mean(list(bio_scores.values())))
    out["overall"] = BATCH_WEIGHT * out["batch_score"] + (1 - BATCH_WEIGHT) * out["bio_score"]
    return out
