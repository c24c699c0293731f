"""``autoencoder_model``: train autoencoder, then log and register its inference pipeline (raw crops -> features)
as the MLflow model ``cellbench-autoencoder`` (kedro-mlflow ``pipeline_ml_factory``; see ``pipelines/_models.py``)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
