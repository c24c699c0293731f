"""Evaluation: the COOS protocol per representation, then one report for all."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
