"""``vaeplus_model``: train VAE+ (seed 003) on the simulated treatment screen, then log and register its inference pipeline (raw
crops -> features) as the MLflow model ``cellbench-vaeplus`` (kedro-mlflow ``pipeline_ml_factory``; see
``pipelines/_models.py``)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
