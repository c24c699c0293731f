"""Ingestion nodes: unpack parameters, call the library."""

from __future__ import annotations

import numpy as np

from cellbench.crops import ChunkedCrops, Crops
from cellbench.reporting import crop_montage
from cellbench.simulate import COOS7_CLASSES, CoosDesign, simulate_coos7

SIMULATORS = {"coos7": (CoosDesign, simulate_coos7)}


def simulate_crops(params: dict) -> ChunkedCrops:
    """Simulated crops for ``params['design']`` (streamed to the crop store chunk by chunk)."""
    design_name = params.get("design", "coos7")
    if design_name not in SIMULATORS:
        raise ValueError(f"ingestion.simulation.design: unknown design {design_name!r}; known {sorted(SIMULATORS)}")
    design_cls, simulate = SIMULATORS[design_name]
    return simulate(design_cls.from_params(params))


def qc_montage(crops: Crops, params: dict):
    """Example crops per class (rows) and split (columns) as a figure."""
    meta = crops.metadata
    rng = np.random.default_rng(int(params.get("seed", 0)))
    per_cell = int(params.get("per_cell", 2))
    splits = [s for s in ("train", "test1", "test2", "test3", "test4") if s in set(meta["Metadata_Split"])]
    labels = sorted(meta["Metadata_Label"].unique())
    names = (
        meta.drop_duplicates("Metadata_Label").set_index("Metadata_Label")["Metadata_LabelName"].to_dict()
        if "Metadata_LabelName" in meta
        else {lab: COOS7_CLASSES[lab] if 0 <= lab < len(COOS7_CLASSES) else str(lab) for lab in labels}
    )
    picks, cols = [], []
    for s in splits:
        cols += [s] + [""] * (per_cell - 1)
    for lab in labels:
        row = []
        for s in splits:
            idx = np.flatnonzero((meta["Metadata_Label"].to_numpy() == lab) & (meta["Metadata_Split"].to_numpy() == s))
            chosen = rng.choice(idx, size=min(per_cell, len(idx)), replace=False) if len(idx) else []
            row += [int(i) for i in chosen] + [None] * (per_cell - len(chosen))
        picks.append(row)
    flat = sorted({i for row in picks for i in row if i is not None})
    loaded = crops.take(np.array(flat, dtype=np.int64)).images if flat else None
    pos = {i: k for k, i in enumerate(flat)}
    tiles = [[None if i is None else loaded[pos[i]] for i in row] for row in picks]
    return crop_montage(tiles, [f"{lab}: {names[lab]}" for lab in labels], cols,
                        title="QC montage: example crops per class and split")
