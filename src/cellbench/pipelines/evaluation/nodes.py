"""Evaluation nodes: the COOS protocol per representation, then one report."""

from __future__ import annotations

import logging

import pandas as pd

from cellbench.benchmark import EvaluationConfig, evaluate_layers
from cellbench.reporting.coos import coos_report

log = logging.getLogger(__name__)


def evaluate_representation(features: dict, params: dict, representation: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every layer of one representation through every configured classifier that applies."""
    if not features:  # e.g. VGG16 without an ImageNet weights file: left out, and said so
        log.warning("representation %r produced no feature tables; it is left out of the results", representation)
    return evaluate_layers(features, EvaluationConfig.from_params(params, "evaluation"), representation)


def build_report(params: dict, *tables: pd.DataFrame):
    """All representations: CSV table, Markdown Table 3, figures, MLflow metrics, sensitivity."""
    config = EvaluationConfig.from_params(params, "evaluation")
    half = len(tables) // 2
    return tuple(coos_report(list(tables[:half]), list(tables[half:]), config.confusion_splits, config.class_names,
                             config.published_reference))
