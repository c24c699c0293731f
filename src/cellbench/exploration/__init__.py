"""Exploratory analysis of protein localisation in any feature table (seed 002, Figs 4-6, Table 2).

* ``proteins``: protein profiles (mean of single-cell features), hierarchical agglomerative
  clustering, cluster purity / ARI against the annotated classes, and the neighbours of one known
  member of a rare class (the nucleolar-rim analysis);
* ``cells``: the multi-localisation score of a single cell between two compartments and the
  single-cell clustering of spatially variable proteins;
* ``analysis``: ``ExplorationConfig`` and ``explore(table, config)``, every score of one feature
  table (the pairwise-distance scores come from ``cellbench.metrics.retrieval``).
"""

from .analysis import Exploration, ExplorationConfig, explore
from .cells import cell_clades, multilocalisation_score
from .proteins import cluster_proteins, cluster_scores, protein_profiles, rare_neighbours

__all__ = ["Exploration", "ExplorationConfig", "cell_clades", "cluster_proteins", "cluster_scores", "explore",
           "multilocalisation_score", "protein_profiles", "rare_neighbours"]
