"""Profiling nodes: validate the section, call ``cellbench.profiling.variants``."""

from __future__ import annotations

import pandas as pd

from cellbench.profiling.variants import ProfilingConfig
from cellbench.profiling.variants import profile_variants as run_variants


def profile_variants(wells: pd.DataFrame, params: dict) -> tuple[dict, pd.DataFrame, pd.DataFrame, dict]:
    """Every recipe in ``params.variants``: treatment profiles, NSC / NSCB and MoA mAP per variant."""
    return tuple(run_variants(wells, ProfilingConfig.from_params(params, "profiling")))
