"""Nodes of the domain_adaptation pipeline (CODA, seed 001): validate the section, call
``cellbench.adaptation.experiment`` and ``cellbench.reporting.adaptation``."""

from __future__ import annotations

import pandas as pd

from cellbench.crops import Crops
from cellbench.representations.coda import CodaConfig

from .._outputs import metric_histories


def _config(params: dict) -> CodaConfig:
    return CodaConfig.from_params(params, "domain_adaptation")


def pretrain_pool(params: dict):
    """The pre-training pool's foundation (``pool``; cached), or an empty artefact when it is off."""
    from cellbench.adaptation.pool import pool_foundation
    from cellbench.training import resolve_device

    config = _config(params)
    artefact, history = pool_foundation(config, resolve_device(config.device))
    return artefact, metric_histories("da/pool/dino", history) if history else {}


def run_domain_adaptation(crops: Crops, pool: dict, params: dict):
    """Every method on every source and target (from the pool's foundation, if any), the
    granularity study, CKA and class tokens."""
    import torch

    from cellbench.adaptation.experiment import run_experiment
    from cellbench.training import resolve_device

    config = _config(params)
    if config.threads:
        torch.set_num_threads(config.threads)
    *tables, artefact, histories = run_experiment(crops, config, resolve_device(config.device), pool["state_dict"] or None)
    flat = {k: v for name, h in histories.items() for k, v in metric_histories(f"da/{name}", h).items()}
    return (*tables, artefact, flat)


def report_domain_adaptation(results: pd.DataFrame, granularity: pd.DataFrame, cka: pd.DataFrame):
    """Summaries over seeds, the Markdown report, figures and MLflow metrics."""
    from cellbench.reporting.adaptation import domain_adaptation_report

    return domain_adaptation_report(results, granularity, cka)


def umap_class_tokens(tokens: pd.DataFrame, params: dict):
    """UMAP of the class tokens before and after CODA."""
    from cellbench.reporting.adaptation import umap_figure

    if tokens.empty:
        raise ValueError("domain_adaptation: no class tokens to plot (the granularity pair had no CODA run)")
    config = _config(params)
    return umap_figure(tokens, config.columns.label, config.columns.source, config.seeds[0])
