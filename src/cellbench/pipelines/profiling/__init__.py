"""Profiling: well profiles -> normalised / whitened treatment profiles -> MoA matching and mAP."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
