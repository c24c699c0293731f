"""Treatment profiling on simulated screens: crops -> texture -> wells -> profiling variants."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
