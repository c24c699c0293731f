"""``embed``: new crops -> a registered feature extractor -> a feature table, with lineage."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
