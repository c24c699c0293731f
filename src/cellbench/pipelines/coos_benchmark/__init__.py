"""coos_benchmark: ingestion + representation + evaluation (its own package, see KEDRO.md)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
