"""Representation nodes: crops in, ``{layer: feature table}`` out (one Parquet per layer)."""

from __future__ import annotations

import pandas as pd

from cellbench.crops import Crops
from cellbench.features import coos_texture_features


def texture_features(crops: Crops, params: dict) -> dict[str, pd.DataFrame]:
    """The COOS Texture representation (Haralick at five scales + intensity), read in batches."""
    parts = []
    for rows, images in crops.batches(int(params.get("batch_size", 2048))):
        parts.append(
            coos_texture_features(
                images,
                distances=tuple(params.get("distances", (1, 2, 4, 8, 16))),
                levels=int(params.get("levels", 256)),
                n_jobs=params.get("n_jobs"),
            )
        )
    feats = pd.concat(parts, ignore_index=True)
    table = pd.concat([crops.metadata.reset_index(drop=True), feats], axis=1)
    return {"haralick": table}
