"""Representations: one namespaced instance per representation (``representation.<name>``)."""

from .pipeline import REPRESENTATIONS, create_pipeline

__all__ = ["REPRESENTATIONS", "create_pipeline"]
