"""Protein-level analysis (seed 002, Fig 4 and the nucleolar-rim search).

A protein's profile is the mean of its cells' features; profiles are standardised over proteins
(zero mean, unit variance per feature, "mean-centred and normalised" in the seed) and clustered
by hierarchical agglomerative clustering on Euclidean distances (``scipy.cluster.hierarchy``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.cluster import hierarchy
from scipy.spatial.distance import pdist, squareform
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from cellbench.metadata import feature_columns
from cellbench.metrics.retrieval import standardise

LINKAGES = ("average", "complete", "single", "ward", "weighted", "centroid", "median")


def protein_profiles(table: pd.DataFrame, protein: str, min_cells: int) -> pd.DataFrame:
    """One row per protein (sorted): the mean of its cells' features, with the ``Metadata_``
    columns that are constant within every protein and ``Metadata_Cells`` (its cell count).

    A protein with fewer than ``min_cells`` cells is an error naming it (its mean would be one
    cell's noise)."""
    if protein not in table.columns:
        raise ValueError(f"feature table has no {protein!r} column (the protein of each cell); "
                         f"its metadata columns are {[c for c in table.columns if c.startswith('Metadata_')]}")
    feats = feature_columns(table)
    if not feats:
        raise ValueError("feature table has no feature columns")
    counts = table.groupby(protein, sort=True).size()
    few = counts[counts < min_cells]
    if len(few):
        raise ValueError(f"protein {few.index[0]!r} has {int(few.iloc[0])} cell(s); a protein profile needs at least "
                         f"min_cells_per_protein = {min_cells}")
    meta = [c for c in table.columns if c.startswith("Metadata_") and c != protein]
    constant = [c for c in meta if (table.groupby(protein)[c].nunique(dropna=False) <= 1).all()]
    means = table.groupby(protein, sort=True)[feats].mean()
    first = table.groupby(protein, sort=True)[constant].first()
    out = pd.concat([first, counts.rename("Metadata_Cells"), means], axis=1)
    return out.reset_index()


def cluster_proteins(profiles: pd.DataFrame, linkage: str) -> np.ndarray:
    """The scipy linkage matrix of the standardised protein profiles (Euclidean)."""
    if linkage not in LINKAGES:
        raise ValueError(f"linkage {linkage!r} is not one of {list(LINKAGES)}")
    z = standardise(profiles[feature_columns(profiles)].to_numpy())
    return hierarchy.linkage(z, method=linkage, metric="euclidean")


def cluster_scores(truth: np.ndarray, tree: np.ndarray, scored: np.ndarray) -> dict:
    """The tree cut into as many clusters as there are classes among the ``scored`` proteins, then
    against the annotation of those proteins:

    * ARI (``sklearn.metrics.adjusted_rand_score``) and NMI;
    * purity = (1 / n) sum over clusters of the size of its largest class.
    """
    truth = np.asarray(truth)[scored]
    k = len(np.unique(truth))
    clusters = hierarchy.fcluster(tree, t=k, criterion="maxclust")[scored]
    largest = pd.crosstab(clusters, truth).max(axis=1).sum()
    return {"ari": float(adjusted_rand_score(truth, clusters)),
            "nmi": float(normalized_mutual_info_score(truth, clusters)),
            "purity": float(largest / len(truth)), "clusters": int(k)}


def rare_neighbours(profiles: pd.DataFrame, tree: np.ndarray, known: int, members: np.ndarray, window: int) -> dict:
    """How close the other members of a rare class are to one known member in the clustering.

    Proteins are ranked by their cophenetic distance to the ``known`` protein (the height at which
    they join it in the tree; ties broken by the Euclidean distance of the standardised profiles),
    as the seed ranks "the 32 proteins closest to MKI67 in our hierarchical clustering". Returns
    the ranks (1 = closest) of the other ``members``, the number among the ``window`` closest
    (``hits``) and its expectation for a random order, ``window * (m - 1) / (n - 1)``."""
    n = len(profiles)
    z = standardise(profiles[feature_columns(profiles)].to_numpy())
    coph = squareform(hierarchy.cophenet(tree))[known]
    euclid = squareform(pdist(z))[known]
    order = np.lexsort((euclid, coph))
    order = order[order != known]
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(1, n)
    others = np.array([m for m in members if m != known], np.int64)
    ranks = np.sort(rank[others])
    return {"ranks": ranks.tolist(), "hits": int((ranks <= window).sum()), "window": int(window),
            "expected": float(window * len(others) / (n - 1)), "median_rank": float(np.median(ranks))}


def leaf_order(tree: np.ndarray) -> np.ndarray:
    """Row order of the clustered heat map (the dendrogram's leaves)."""
    return hierarchy.leaves_list(tree)
