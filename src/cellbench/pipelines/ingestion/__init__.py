"""Ingestion: simulated or real microscopy to the crop store, with a QC montage."""

from .pipeline import create_pipeline, namespaced

__all__ = ["create_pipeline", "namespaced"]
