"""Profiling: single cells -> site / well / treatment profiles, normalised and whitened.

pycytominer-compatible ``aggregate``, ``normalize`` and ``feature_select`` (numerics of 1.7.1),
with per-plate/batch fitting (``by=``), TVN whitening and per-batch CORAL, mean+SD summaries and
treatment profiles; streaming over per-plate partitions and Dask for tables beyond memory.
"""

from .aggregate import aggregate, aggregate_dask, aggregate_partitions
from .feature_select import feature_select
from .normalize import normalize, spherize_matrix
from .recipe import apply_recipe
from .summarize import mean_sd_profiles, treatment_profiles
from .tvn import coral_per_batch, tvn, tvn_fit

__all__ = [
    "aggregate", "aggregate_dask", "aggregate_partitions", "apply_recipe", "coral_per_batch", "feature_select",
    "mean_sd_profiles", "normalize", "spherize_matrix", "treatment_profiles", "tvn", "tvn_fit",
]
