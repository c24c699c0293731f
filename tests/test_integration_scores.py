"""Batch-removal / biology scores (cellbench.metrics.integration): hand cases, and parity with
scib-metrics 0.5.10 (test-only dependency, installed by the README's test command)."""

import numpy as np
import pytest

from cellbench.metrics.integration import (
    Neighbours,
    graph_connectivity,
    ilisi,
    integration_scores,
    kmeans_nmi_ari,
    lisi,
    neighbours,
    silhouette_batch,
    silhouette_label,
)

LINE = np.array([[0.0], [1.0], [4.0], [5.0]])


def test_silhouettes_by_hand():
    # x=0: a = 1, b = (4 + 5) / 2 -> s = 3.5 / 4.5; x=1: a = 1, b = 3.5 -> s = 2.5 / 3.5 (symmetric for 4, 5)
    asw = (2 * 3.5 / 4.5 + 2 * 2.5 / 3.5) / 4
    assert silhouette_label(LINE, ["a", "a", "b", "b"]) == pytest.approx((asw + 1) / 2)
    assert silhouette_label(LINE, ["a", "a", "b", "b"], rescale=False) == pytest.approx(asw)
    # one label, batches A A B B: 1 - |s| per row
    assert silhouette_batch(LINE, ["L"] * 4, ["A", "A", "B", "B"]) == pytest.approx(1 - asw)
    with pytest.raises(ValueError, match="no label has rows in two or more batches"):
        silhouette_batch(LINE, ["L"] * 4, ["A"] * 4)


def complete_graph(n: int) -> Neighbours:
    """Every row's neighbours are all rows (itself first, at distance 0), the others at distance 1."""
    idx = np.array([[i] + [j for j in range(n) if j != i] for i in range(n)])
    dist = np.ones_like(idx, dtype=float)
    dist[:, 0] = 0
    return Neighbours(idx, dist)


def test_lisi_by_hand():
    """Equal distances: P is uniform over the other rows whatever beta, so LISI = 1 / sum(share^2)."""
    labels = np.array([0, 0, 1, 1, 0])
    expected = []
    for i in range(5):
        others = np.delete(labels, i)
        shares = np.bincount(others, minlength=2) / len(others)
        expected.append(1 / np.sum(shares**2))
    np.testing.assert_allclose(lisi(complete_graph(5), labels, perplexity=2), expected)
    # iLISI: (median LISI - 1) / (B - 1); here the median is 2 (rows 0, 1, 4 see 2 + 2)
    assert ilisi(complete_graph(5), labels, perplexity=2) == pytest.approx((np.median(expected) - 1) / 1)


def test_lisi_perplexity_is_met():
    """With unequal distances the bisection finds beta with exp(entropy) = perplexity."""
    X = np.random.default_rng(0).standard_normal((200, 3))
    g = neighbours(X, 31)
    value = lisi(g, np.zeros(200, dtype=int), perplexity=10)
    np.testing.assert_allclose(value, 1.0)  # a single label: LISI 1 whatever the weights


def test_graph_connectivity_by_hand():
    idx = np.array([[0, 1], [1, 0], [2, 3], [3, 2], [4, 0]])
    g = Neighbours(idx, np.array([[0, 1.0]] * 5))
    # label x: rows 0-3 form {0, 1} and {2, 3} -> 2 / 4; label y: row 4 alone -> 1
    assert graph_connectivity(g, ["x", "x", "x", "x", "y"]) == pytest.approx(0.75)


def test_kmeans_scores_and_overall():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 30)
    X = np.repeat(np.eye(3) * 10, 30, axis=0) + rng.standard_normal((90, 3)) * 0.3
    assert kmeans_nmi_ari(X, labels) == (pytest.approx(1.0), pytest.approx(1.0))
    batch = np.tile(["A", "B"], 45)
    s = integration_scores(X, batch, labels, k=15, extra_bio={"map_moa": 0.5})
    assert s["batch_score"] == pytest.approx(np.mean([s["silhouette_batch"], s["ilisi"], s["graph_connectivity"]]))
    assert s["bio_score"] == pytest.approx(np.mean([s["silhouette_label"], s["kmeans_nmi"], s["kmeans_ari"], 0.5]))
    assert s["overall"] == pytest.approx(0.4 * s["batch_score"] + 0.6 * s["bio_score"])
    assert s["ilisi"] > 0.5 and s["graph_connectivity"] > 0.95  # batches alternate within labels
    with pytest.raises(ValueError, match="missing values"):
        integration_scores(np.where(X > 9, np.nan, X), batch, labels)


# -- parity with scib-metrics -------------------------------------------------------------------

@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(4), 60)
    batch = rng.integers(0, 3, len(labels))
    X = rng.standard_normal((len(labels), 6)) + labels[:, None] * 1.5 + batch[:, None] * 0.8
    return X, labels, batch


def test_parity_with_scib_metrics(data):
    scib = pytest.importorskip("scib_metrics")
    from scib_metrics.nearest_neighbors import NeighborsResults

    X, labels, batch = data
    g = neighbours(X, 90)
    ref_graph = NeighborsResults(indices=g.indices, distances=g.distances)
    assert silhouette_label(X, labels) == pytest.approx(scib.silhouette_label(X, labels), rel=1e-6)
    assert silhouette_batch(X, labels, batch) == pytest.approx(scib.silhouette_batch(X, labels, batch), rel=1e-6)
    np.testing.assert_allclose(lisi(g, batch), scib.lisi_knn(ref_graph, batch), rtol=1e-4)
    assert ilisi(g, batch) == pytest.approx(scib.ilisi_knn(ref_graph, batch), rel=1e-4)
    sparse = neighbours(X, 5)
    assert graph_connectivity(sparse, labels) == pytest.approx(
        scib.graph_connectivity(NeighborsResults(indices=sparse.indices, distances=sparse.distances), labels))
    # NMI / ARI: the same sklearn scores of the same partition (well-separated clusters)
    sep = np.repeat(np.eye(4) * 20, 60, axis=0)[:, :4] + np.random.default_rng(0).standard_normal((240, 4))
    ref = scib.nmi_ari_cluster_labels_kmeans(sep, labels)
    nmi, ari = kmeans_nmi_ari(sep, labels)
    assert (nmi, ari) == (pytest.approx(ref["nmi"]), pytest.approx(ref["ari"]))
