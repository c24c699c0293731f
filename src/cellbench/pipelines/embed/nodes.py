"""Embed nodes: validate the ``embed`` section, resolve the model URI, predict in batches, and
record which registry version produced the table (tags of the MLflow run)."""

from __future__ import annotations

import logging

import mlflow
import pandas as pd

from cellbench.crops import Crops
from cellbench.embedding import EmbedConfig, embed_table, resolve

log = logging.getLogger(__name__)


def embed(crops: Crops, params: dict) -> pd.DataFrame:
    """``Metadata_`` columns of the crops, then the registered model's features."""
    config = EmbedConfig.from_params(params, "embed")
    client = mlflow.tracking.MlflowClient()
    version = resolve(config.model, client)
    model = mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")
    log.info("embed: %d crops with %s version %s (run %s)", len(crops), version.name, version.version, version.run_id)
    try:
        table = embed_table(crops.metadata, (b for _, b in crops.batches(config.batch_size)), model.predict)
    except Exception as exc:
        raise ValueError(f"embed.model {config.model} ({version.name} version {version.version}) cannot embed these "
                         f"crops (shape {tuple(crops.shape)}): {exc}") from exc
    if mlflow.active_run():
        mlflow.set_tags({"cellbench.embed.model_name": version.name, "cellbench.embed.model_version": version.version,
                         "cellbench.embed.model_run_id": version.run_id, "cellbench.embed.model_uri": config.model})
    return table
