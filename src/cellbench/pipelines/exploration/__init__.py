"""Exploratory analysis of a protein library (seed 002): ``kedro run --pipelines=exploration``."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
