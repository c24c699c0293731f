"""Ingestion nodes: unpack parameters, call the library (simulator or a real-data reader)."""

from __future__ import annotations

import numpy as np

from cellbench.crops import ChunkedCrops, Crops
from cellbench.ingest import read_coos7, read_fields, read_tiff_folder
from cellbench.reporting import crop_montage
from cellbench.simulate import COOS7_CLASSES, CoosDesign, simulate_coos7

SIMULATORS = {"coos7": (CoosDesign, simulate_coos7)}
SOURCES = ("simulation", "coos7", "tiff", "fields")


def _require_path(params: dict, key: str) -> str:
    path = params.get("path")
    if not path:
        raise ValueError(f"ingestion.{key}.path: set it to the data directory, e.g. "
                         f'kedro run --params "ingestion.{key}.path=/data/..."')
    return str(path)


def simulate_crops(params: dict) -> ChunkedCrops:
    """Simulated crops for ``params['design']`` (streamed to the crop store chunk by chunk)."""
    design_name = params.get("design", "coos7")
    if design_name not in SIMULATORS:
        raise ValueError(f"ingestion.simulation.design: unknown design {design_name!r}; known {sorted(SIMULATORS)}")
    design_cls, simulate = SIMULATORS[design_name]
    return simulate(design_cls.from_params(params))


def ingest_crops(ingestion: dict) -> ChunkedCrops:
    """Crops from the source named by ``ingestion.source`` (conf environments choose it)."""
    source = ingestion.get("source", "simulation")
    if source not in SOURCES:
        raise ValueError(f"ingestion.source: unknown source {source!r}; expected one of {list(SOURCES)}")
    params = dict(ingestion.get(source) or {})
    if source == "simulation":
        return simulate_crops(params)
    if source == "coos7":
        return read_coos7(_require_path(params, "coos7"), splits=params.get("splits"),
                          chunk_cells=int(params.get("chunk_cells", 4096)),
                          version=str(params.get("version", "v1.1")))
    if source == "tiff":
        return read_tiff_folder(_require_path(params, "tiff"), channels=params.get("channels", ["protein", "nucleus"]),
                                class_names=params.get("class_names"), chunk_cells=int(params.get("chunk_cells", 1024)))
    return read_fields(_require_path(params, "fields"), channels=params["channels"],
                       nucleus_channel=params["nucleus_channel"], pattern=params.get("pattern", r"(?P<image>.+)d(?P<channel>\d+)$"),
                       crop_size=int(params.get("crop_size", 64)), min_cells=int(params.get("min_cells", 1)),
                       illumination=params.get("illumination"), segmentation=params.get("segmentation"),
                       chunk_cells=int(params.get("chunk_cells", 2048)))


def qc_montage(crops: Crops, params: dict):
    """Example crops per class (rows) and split (columns); for unlabelled crops a random grid."""
    meta = crops.metadata
    rng = np.random.default_rng(int(params.get("seed", 0)))
    if "Metadata_Label" not in meta:
        rows, cols = params.get("grid", [6, 8])
        pick = np.sort(rng.choice(len(meta), size=min(rows * cols, len(meta)), replace=False))
        loaded = crops.take(pick).images
        tiles = [[loaded[k] if k < len(loaded) else None for k in range(r * cols, (r + 1) * cols)] for r in range(rows)]
        names = params.get("channel_names", ["channel 0", "channel 1", "channel 2"])
        return crop_montage(tiles, [""] * rows, None, channel_names=names,
                            title=f"QC montage: {len(pick)} of {len(meta)} crops")
    per_cell = int(params.get("per_cell", 2))
    splits = [s for s in ("train", "test1", "test2", "test3", "test4") if s in set(meta["Metadata_Split"])]
    splits += sorted(set(meta["Metadata_Split"]) - set(splits))
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
