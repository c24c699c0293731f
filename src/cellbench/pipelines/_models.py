"""``kedro run --pipelines=<name>_model`` (``deeploc_model``, ``pci_model``, ``autoencoder_model``):
ingestion, the network's training, and kedro-mlflow's ``pipeline_ml_factory`` logging the
inference pipeline (``serving_crops`` -> ``extract_features`` -> ``serving_features``) with the
trained artefact as an MLflow model ``model`` of the run, registered as ``cellbench-<name>``
(a new version per run). Served or loaded, it takes raw ``N x C x H x W`` crops
(``cellbench.serving``: the preprocessing is inside) and returns one row of features per crop."""

from __future__ import annotations

import numpy as np
from kedro.pipeline import Node, Pipeline
from kedro_mlflow.pipeline import pipeline_ml_factory
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from cellbench.serving import extract_features

from .ingestion import create_pipeline as ingestion
from .representation.pipeline import instance

MODELS = ("deeploc", "pci", "autoencoder")
INPUT = "serving_crops"
# any number of crops, channels and pixels: the model checks them against its network
SIGNATURE = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, -1, -1))]))


def registered_name(name: str) -> str:
    return f"cellbench-{name}"


def inference(name: str) -> Pipeline:
    """Raw crops -> features with the trained artefact ``<name>_model``."""
    return Pipeline([Node(extract_features, [f"{name}_model", INPUT], "serving_features", name="extract_features")])


def model_pipeline(name: str):
    """Training (ingestion + the network) and the inference pipeline it logs and registers."""
    return pipeline_ml_factory(
        training=ingestion() + instance(name, True),
        inference=inference(name),
        input_name=INPUT,
        log_model_kwargs={"artifact_path": "model", "registered_model_name": registered_name(name),
                          "signature": SIGNATURE},
    )
