"""Ingestion nodes: unpack parameters, call the library (simulator or a real-data reader)."""

from __future__ import annotations

import numpy as np

from cellbench.crops import ChunkedCrops, Crops
from cellbench.ingest import read_coos7, read_fields, read_tiff_folder
from cellbench.reporting import crop_montage
from cellbench.simulate import COOS7_CLASSES, CoosDesign, simulate_coos7
from cellbench.simulate.treatments import TreatmentDesign, simulate_treatments

SIMULATORS = {
    "coos7": (CoosDesign, simulate_coos7),
    "bbbc021": (TreatmentDesign, simulate_treatments),  # treatment assay, one source, weekly batches
    "jump": (TreatmentDesign, simulate_treatments),  # several sources (labs, microscopes)
}
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
    return simulate(design_cls.from_params({**params, "design": design_name}))


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
    """Example crops: one row per value of ``row_by`` (default the class), one column group per
    value of ``col_by`` (default the split); crops without those columns get a random grid.
    ``query`` restricts the cells shown (e.g. the top concentration of a treatment screen)."""
    meta = crops.metadata
    rng = np.random.default_rng(int(params.get("seed", 0)))
    row_by, col_by = params.get("row_by", "Metadata_Label"), params.get("col_by", "Metadata_Split")
    channel_names = params.get("channel_names", ["protein", "nucleus", "channel 2"])
    if row_by not in meta or col_by not in meta:
        rows, cols = params.get("grid", [6, 8])
        pick = np.sort(rng.choice(len(meta), size=min(rows * cols, len(meta)), replace=False))
        loaded = crops.take(pick).images
        tiles = [[loaded[k] if k < len(loaded) else None for k in range(r * cols, (r + 1) * cols)] for r in range(rows)]
        return crop_montage(tiles, [""] * rows, None, channel_names=channel_names,
                            title=f"QC montage: {len(pick)} of {len(meta)} crops")
    shown = np.ones(len(meta), bool)
    if params.get("query"):
        shown = meta.index.isin(meta.query(params["query"]).index)
    per_cell = int(params.get("per_cell", 2))
    order = ("train", "test1", "test2", "test3", "test4")
    col_values = [s for s in order if s in set(meta[col_by])]
    col_values += sorted(set(meta[col_by]) - set(col_values), key=str)
    row_values = sorted(meta[row_by].unique(), key=str)
    if row_by == "Metadata_Label":
        names = (meta.drop_duplicates(row_by).set_index(row_by)["Metadata_LabelName"].to_dict()
                 if "Metadata_LabelName" in meta
                 else {lab: COOS7_CLASSES[lab] if 0 <= lab < len(COOS7_CLASSES) else str(lab) for lab in row_values})
        row_labels = [f"{lab}: {names[lab]}" for lab in row_values]
    else:
        row_labels = [str(v) for v in row_values]
    picks, cols = [], []
    for v in col_values:
        cols += [str(v)] + [""] * (per_cell - 1)
    rv, cv = meta[row_by].to_numpy(), meta[col_by].to_numpy()
    for r in row_values:
        row = []
        for c in col_values:
            idx = np.flatnonzero((rv == r) & (cv == c) & shown)
            chosen = rng.choice(idx, size=min(per_cell, len(idx)), replace=False) if len(idx) else []
            row += [int(i) for i in chosen] + [None] * (per_cell - len(chosen))
        picks.append(row)
    flat = sorted({i for row in picks for i in row if i is not None})
    loaded = crops.take(np.array(flat, dtype=np.int64)).images if flat else None
    pos = {i: k for k, i in enumerate(flat)}
    tiles = [[None if i is None else loaded[pos[i]] for i in row] for row in picks]
    return crop_montage(tiles, row_labels, cols, channel_names=channel_names,
                        title=params.get("title", f"QC montage: example crops per {row_by[9:]} and {col_by[9:]}"))
