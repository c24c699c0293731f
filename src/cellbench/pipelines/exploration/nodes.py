"""Exploration nodes: validate ``exploration.analysis`` and call ``cellbench.reporting.exploration``."""

from __future__ import annotations

import pandas as pd

from cellbench.crops import Crops
from cellbench.exploration import ExplorationConfig
from cellbench.reporting.exploration import explore_layers, scores_table


def explore_representation(tables: dict, crops: Crops, params: dict, layers: dict, name: str):
    """Scores of every layer of representation ``name`` and the figures of its chosen layer."""
    config = ExplorationConfig.from_params(params, "exploration.analysis")
    return explore_layers(tables, crops, config, layers[name], name)


def combine_scores(**per_representation: pd.DataFrame):
    """All layers' scores in one table, the chosen layers as Markdown, and MLflow metrics
    ``exploration/<representation>/<score>`` of the chosen layers."""
    scores = pd.concat(per_representation.values(), ignore_index=True)
    chosen = scores[scores["chosen"]].reset_index(drop=True)
    numeric = chosen.select_dtypes("number").columns.drop("chosen", errors="ignore")
    metrics = {f"exploration/{r.representation}/{c}": {"value": float(getattr(r, c)), "step": 0}
               for r in chosen.itertuples() for c in numeric if pd.notna(getattr(r, c))}
    return scores, scores_table(chosen), metrics
