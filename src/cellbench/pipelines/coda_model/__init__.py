"""``coda_model``: train CODA's dual model on one source of the simulated multi-source screen
(DINO-CB foundation + task model, seed 001), then log and register its inference pipeline (raw
crops -> class probabilities) as the MLflow model ``cellbench-coda`` (kedro-mlflow
``pipeline_ml_factory``); ``kedro run --pipelines=adapt`` adapts it to new plates."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
