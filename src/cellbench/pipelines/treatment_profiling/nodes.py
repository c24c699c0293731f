"""Nodes of the simulated treatment-profiling pipeline: validate each section, call the library."""

from __future__ import annotations

import pandas as pd

from cellbench.crops import Crops
from cellbench.profiling.summarize import SummaryConfig, WellsConfig, well_profiles
from cellbench.reporting.tables import combine_moa_matching as combine
from cellbench.reporting.tables import profiling_tables_markdown
from cellbench.reporting.vae import VAEFiguresConfig
from cellbench.reporting.vae import vae_figures as figures
from cellbench.representations import rebuild, run

from .._outputs import learned_outputs


def treatment_texture(crops: Crops, params: dict) -> dict[str, pd.DataFrame]:
    """Per-channel Haralick + intensity features of every cell."""
    return run("treatment_texture", crops, params, "treatments.texture").layers


def weak_resnet_features(crops: Crops, params: dict, name: str = "resnet_mixup"):
    """Weakly supervised ResNet18 (seed 004): ``(feature tables, model artefact, loss history)``."""
    result = run("weak", crops, params, f"treatments.weak.{name}")
    return learned_outputs(f"resnet18_{result.config.regulariser}", result)


def vae_features(crops: Crops, params: dict, name: str = "vaeplus"):
    """AE / VAE / VAE+ (seed 003): ``(feature tables, model artefact, loss history)``."""
    result = run("vae", crops, params, f"treatments.vae.{name}")
    return learned_outputs(result.config.variant, result)


def cells_to_wells(features: dict, params: dict, summary: dict) -> pd.DataFrame:
    """Well profiles (mean, or mean and SD) of one feature set."""
    return well_profiles(features, WellsConfig.from_params(params, "treatments.wells"),
                         SummaryConfig.from_params(summary, "treatments.summaries"))


def combine_moa_matching(**tables: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Every feature set's variants in one table, and their MLflow metrics."""
    return combine(tables)


def vae_figures(crops: Crops, ae: dict, vae: dict, vaeplus: dict, features: dict, params: dict):
    """Reconstructions (AE, VAE, VAE+) and VAE+ latent interpolation (seed 003 Fig. 3)."""
    models = {"AE": rebuild(ae), "VAE": rebuild(vae), "VAE+": rebuild(vaeplus)}
    table = next(iter(features.values()))
    return figures(crops, models, table() if callable(table) else table,
                   VAEFiguresConfig.from_params(params, "treatments.vae_figures"))


def moa_table(matching: pd.DataFrame, params: dict) -> str:
    """Seed 003 Table 1 / seed 004 Table 2 layouts as Markdown."""
    from cellbench.parameters import TableConfig

    config = TableConfig.from_params(params, "treatments.table")
    return profiling_tables_markdown(matching, dict(config.columns), config.title)
