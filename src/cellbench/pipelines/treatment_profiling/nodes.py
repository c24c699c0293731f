"""Nodes of the simulated treatment-profiling pipeline (library calls only)."""

from __future__ import annotations

import pandas as pd

from cellbench.crops import Crops
from cellbench.features import multichannel_texture_features
from cellbench.profiling import aggregate


def treatment_texture(crops: Crops, params: dict) -> dict[str, pd.DataFrame]:
    """Per-channel Haralick + intensity features of every cell, read in batches."""
    names = tuple(params.get("channel_names", ("DNA", "Tubulin", "Actin")))
    parts = [multichannel_texture_features(images, names, tuple(params.get("distances", (1, 4))),
                                           int(params.get("levels", 64)), params.get("n_jobs"))
             for _, images in crops.batches(int(params.get("batch_size", 2048)))]
    return {"haralick": pd.concat([crops.metadata.reset_index(drop=True), pd.concat(parts, ignore_index=True)], axis=1)}


def cells_to_wells(features: dict, params: dict) -> pd.DataFrame:
    """Well profiles: ``operation`` of each feature over a well's cells; the well-level metadata
    columns listed in ``strata`` are kept (they are constant within a well)."""
    layer = params.get("layer", "haralick")
    if layer not in features:
        raise ValueError(f"treatments.wells.layer: no feature table {layer!r}; have {sorted(features)}")
    table = features[layer]() if callable(features[layer]) else features[layer]
    return aggregate(table, strata=list(params["strata"]), operation=params.get("operation", "mean"),
                     compute_object_count=False)
