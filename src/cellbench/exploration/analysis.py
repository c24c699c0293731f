"""Every exploratory score of one feature table of a protein library (seed 002, Figs 2B, 4-6 and
Table 2), from the ground truth the library's metadata carries.

Columns read (those of ``cellbench.simulate.library``; a real library provides the same):
``Metadata_Protein``, ``Metadata_Kind`` (single / rare / multi / variable),
``Metadata_Compartments`` (``A`` or ``A|B``), ``Metadata_CellLine``, ``Metadata_Image``,
``Metadata_Proportion`` (multi: share of B) and ``Metadata_Subpopulation`` (variable).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from cellbench.config import Config, ConfigError, one_of, positive
from cellbench.metadata import feature_columns, require_columns
from cellbench.metrics.retrieval import (cell_line_distance_scores, image_distances, pairwise_distance_score,
                                        standardise)

from .cells import cell_clades, clade_agreement, multilocalisation_score
from .proteins import LINKAGES, cluster_proteins, cluster_scores, leaf_order, protein_profiles, rare_neighbours

PROTEIN, KIND, COMPARTMENTS = "Metadata_Protein", "Metadata_Kind", "Metadata_Compartments"
CELL_LINE, IMAGE, PROPORTION, SUBPOPULATION = ("Metadata_CellLine", "Metadata_Image", "Metadata_Proportion",
                                               "Metadata_Subpopulation")
COLUMNS = (PROTEIN, KIND, COMPARTMENTS, CELL_LINE, IMAGE, PROPORTION, SUBPOPULATION)
SINGLE = ("single", "rare")  # proteins with one annotated compartment


@dataclasses.dataclass(frozen=True)
class ExplorationConfig(Config):
    """``exploration.analysis``: how the scores are computed.

    * ``linkage``: agglomerative linkage of proteins and of cells (scipy names);
    * ``min_cells_per_protein``: fewer cells is an error (seed: images with < 5 cells dropped);
    * ``rare_class``: the compartment whose members are searched around one known member (null:
      no rare-class search); ``rare_window``: how many nearest proteins count as found;
    * ``n_pairs``: image pairs per label and per other label (Fig 2B; the seed's 1,000);
    * ``cell_line_pairs``: same- and different-label pairs per cell-line constraint (Table 2;
      the seed's 10,000);
    * ``seed``: of the pair sampling.
    """

    linkage: str
    min_cells_per_protein: int
    rare_class: str | None
    rare_window: int
    n_pairs: int
    cell_line_pairs: int
    seed: int

    def check(self, path: str) -> None:
        one_of(path, "linkage", self.linkage, LINKAGES)
        positive(path, min_cells_per_protein=self.min_cells_per_protein, rare_window=self.rare_window,
                 n_pairs=self.n_pairs, cell_line_pairs=self.cell_line_pairs)


class Exploration(NamedTuple):
    """What ``explore`` returns.

    * ``scores``: ``{name: value}`` (protein_ari, protein_nmi, protein_purity, rare_hits,
      rare_expected, rare_median_rank, multiloc_spearman, subpopulation_ari, pairwise_overall,
      same_cell_line, different_cell_line, cell_line_difference);
    * ``profiles``: protein profiles (mean features) in heat-map order with ``Metadata_Cluster``;
    * ``tree``: the proteins' linkage matrix (rows of ``profiles`` before ordering: sorted names);
    * ``multiloc``: one row per scored cell (``Metadata_Pair``, ``Metadata_Group`` = A / mixed / B,
      ``Metadata_Proportion``, ``score``), with ``Metadata_Row`` its row in the table;
    * ``clades``: one row per cell of a variable protein (``Metadata_Row``, sub-population, clade),
      and ``cell_trees`` their linkage matrices by protein;
    * ``per_label``: the Fig 2B score per label; ``per_pair``: the multi-localisation correlation per pair.
    """

    scores: dict
    profiles: pd.DataFrame
    tree: np.ndarray
    multiloc: pd.DataFrame
    clades: pd.DataFrame
    cell_trees: dict
    per_label: pd.DataFrame
    per_pair: pd.DataFrame


def _multilocalisation(table: pd.DataFrame, z: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    comps = table[COMPARTMENTS].to_numpy()
    single = table[KIND].isin(SINGLE).to_numpy()
    multi = table[KIND].eq("multi").to_numpy()
    frames, pairs = [], []
    for pair in sorted(pd.unique(comps[multi])):
        a, b = pair.split("|")
        refs = []
        for c in (a, b):
            rows = single & (comps == c)
            if not rows.any():
                raise ValueError(f"multi-localised proteins {pair!r} need cells of proteins localised to {c!r} alone "
                                 f"(column {COMPARTMENTS}, kind single or rare); there are none")
            refs.append(z[rows].mean(axis=0))
        groups = {a: single & (comps == a), "mixed": multi & (comps == pair), b: single & (comps == b)}
        for name, rows in groups.items():
            idx = np.flatnonzero(rows)
            frames.append(pd.DataFrame({"Metadata_Row": idx, "Metadata_Pair": pair, "Metadata_Group": name,
                                        PROTEIN: table[PROTEIN].to_numpy()[idx],
                                        PROPORTION: table[PROPORTION].to_numpy()[idx],
                                        "score": multilocalisation_score(z[idx], *refs)}))
        mixed = frames[-2]
        ok = np.isfinite(mixed[PROPORTION].to_numpy())
        rho = spearmanr(mixed["score"][ok], mixed[PROPORTION][ok]).statistic if ok.sum() > 2 else np.nan
        pairs.append({"pair": pair, "cells": int(ok.sum()), "spearman": float(rho),
                      "mean_score_a": float(frames[-3]["score"].mean()), "mean_score_b": float(frames[-1]["score"].mean())})
    cols = ["Metadata_Row", "Metadata_Pair", "Metadata_Group", PROTEIN, PROPORTION, "score"]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols),
            pd.DataFrame(pairs, columns=["pair", "cells", "spearman", "mean_score_a", "mean_score_b"]))


def _variable_proteins(table: pd.DataFrame, z: np.ndarray, linkage: str) -> tuple[pd.DataFrame, dict]:
    frames, trees = [], {}
    variable = table[KIND].eq("variable").to_numpy()
    for protein in sorted(pd.unique(table[PROTEIN].to_numpy()[variable])):
        idx = np.flatnonzero(variable & (table[PROTEIN].to_numpy() == protein))
        truth = table[SUBPOPULATION].to_numpy()[idx]
        n_clades = len(str(table[COMPARTMENTS].to_numpy()[idx[0]]).split("|"))
        tree, clades = cell_clades(z[idx], n_clades, linkage)
        trees[protein] = tree
        frames.append(pd.DataFrame({"Metadata_Row": idx, PROTEIN: protein, SUBPOPULATION: truth,
                                    COMPARTMENTS: table[COMPARTMENTS].to_numpy()[idx],
                                    "Metadata_LabelName": table.get("Metadata_LabelName", pd.Series(
                                        [""] * len(table))).to_numpy()[idx],
                                    "clade": clades, "ari": clade_agreement(truth, clades)}))
    cols = ["Metadata_Row", PROTEIN, SUBPOPULATION, COMPARTMENTS, "Metadata_LabelName", "clade", "ari"]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)), trees


def explore(table: pd.DataFrame, config: ExplorationConfig) -> Exploration:
    """Every score of seed 002's exploratory analyses on one single-cell feature table."""
    require_columns(table, COLUMNS, "exploration feature table")
    table = table.reset_index(drop=True)
    feats = table[feature_columns(table)].to_numpy(np.float64)
    if not np.isfinite(feats).all():
        bad = feature_columns(table)[int(np.flatnonzero(~np.isfinite(feats).all(axis=0))[0])]
        raise ValueError(f"exploration feature table: column {bad!r} has NaN or infinite values")
    z = standardise(feats)

    profiles = protein_profiles(table, PROTEIN, config.min_cells_per_protein)
    tree = cluster_proteins(profiles, config.linkage)
    scored = profiles[KIND].isin(SINGLE).to_numpy()
    scores = {f"protein_{k}": v for k, v in cluster_scores(profiles[COMPARTMENTS].to_numpy(), tree, scored).items()}
    if config.rare_class is not None:
        members = np.flatnonzero(profiles[COMPARTMENTS].eq(config.rare_class).to_numpy())
        if len(members) < 2:
            raise ConfigError(f"exploration.analysis.rare_class: {config.rare_class!r} has {len(members)} protein(s) in "
                              "the table; the rare-class search needs a known member and at least one other")
        rare = rare_neighbours(profiles, tree, int(members[0]), members, config.rare_window)
        scores |= {"rare_known": profiles[PROTEIN].iloc[members[0]], "rare_hits": rare["hits"],
                   "rare_others": len(members) - 1, "rare_expected": rare["expected"],
                   "rare_median_rank": rare["median_rank"]}
    from scipy.cluster.hierarchy import fcluster

    profiles["Metadata_Cluster"] = fcluster(tree, t=scores["protein_clusters"], criterion="maxclust")
    ordered = profiles.iloc[leaf_order(tree)].reset_index(drop=True)

    multiloc, per_pair = _multilocalisation(table, z)
    scores["multiloc_spearman"] = float(per_pair["spearman"].mean()) if len(per_pair) else np.nan
    clades, trees = _variable_proteins(table, z, config.linkage)
    scores["subpopulation_ari"] = float(clades.groupby(PROTEIN)["ari"].first().mean()) if len(clades) else np.nan

    one = table[KIND].isin(SINGLE).to_numpy()
    args = (feats[one], table[IMAGE].to_numpy()[one], table[COMPARTMENTS].to_numpy()[one])
    shared = dict(seed=config.seed, group=table[PROTEIN].to_numpy()[one],
                  distances=image_distances(standardise(args[0]), args[1])[1])  # one N x N pass for both scores
    per_label = pairwise_distance_score(*args, n_pairs=config.n_pairs, **shared)
    scores["pairwise_overall"] = float(per_label.set_index("label").loc["overall", "score"])
    lines = cell_line_distance_scores(*args, table[CELL_LINE].to_numpy()[one], n_pairs=config.cell_line_pairs,
                                      **shared)
    scores |= {"same_cell_line": lines["same_cell_line"], "different_cell_line": lines["different_cell_line"],
               "cell_line_difference": lines["difference"]}
    return Exploration(scores, ordered, tree, multiloc, clades, trees, per_label, per_pair)
