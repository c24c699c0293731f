"""QC montage of example crops: one row per value of ``row_by`` (the class by default), one column
group of ``per_cell`` crops per value of ``col_by`` (the split); crops without those columns get a
random ``grid``. ``query`` restricts the cells shown (e.g. a treatment screen's top concentration)."""

from __future__ import annotations

import dataclasses

import numpy as np

from cellbench.config import Config, ConfigError, positive
from cellbench.crops import Crops
from cellbench.simulate import COOS7_CLASSES

from .figures import crop_montage

SPLIT_ORDER = ("train", "test1", "test2", "test3", "test4")


@dataclasses.dataclass(frozen=True)
class MontageConfig(Config):
    """``<pipeline>.montage`` (``ingestion.montage``, ``treatments.montage``, ...)."""

    row_by: str
    col_by: str
    per_cell: int
    seed: int
    query: str | None
    grid: tuple[int, ...]
    channel_names: tuple[str, ...]
    title: str | None

    def check(self, path: str) -> None:
        positive(path, per_cell=self.per_cell)
        if len(self.grid) != 2 or min(self.grid) < 1:
            raise ConfigError(f"{path}.grid: [rows, columns] of positive counts expected, got {list(self.grid)}")


def _tiles(crops: Crops, picks: list[list[int | None]]):
    flat = sorted({i for row in picks for i in row if i is not None})
    loaded = crops.take(np.array(flat, dtype=np.int64)).images if flat else None
    pos = {i: k for k, i in enumerate(flat)}
    return [[None if i is None else loaded[pos[i]] for i in row] for row in picks]


def row_labels(meta, row_by: str, row_values) -> list[str]:
    """Row titles; COOS-7 class numbers get their names."""
    if row_by != "Metadata_Label":
        return [str(v) for v in row_values]
    names = (meta.drop_duplicates(row_by).set_index(row_by)["Metadata_LabelName"].to_dict()
             if "Metadata_LabelName" in meta
             else {lab: COOS7_CLASSES[lab] if 0 <= lab < len(COOS7_CLASSES) else str(lab) for lab in row_values})
    return [f"{lab}: {names[lab]}" for lab in row_values]


def qc_montage(crops: Crops, config: MontageConfig):
    """The montage figure (see the module docstring)."""
    meta = crops.metadata
    rng = np.random.default_rng(config.seed)
    row_by, col_by, per_cell = config.row_by, config.col_by, config.per_cell
    if row_by not in meta or col_by not in meta:
        rows, cols = config.grid
        pick = np.sort(rng.choice(len(meta), size=min(rows * cols, len(meta)), replace=False))
        loaded = crops.take(pick).images
        tiles = [[loaded[k] if k < len(loaded) else None for k in range(r * cols, (r + 1) * cols)] for r in range(rows)]
        return crop_montage(tiles, [""] * rows, None, channel_names=config.channel_names,
                            title=f"QC montage: {len(pick)} of {len(meta)} crops")
    shown = meta.index.isin(meta.query(config.query).index) if config.query else np.ones(len(meta), bool)
    col_values = [s for s in SPLIT_ORDER if s in set(meta[col_by])]
    col_values += sorted(set(meta[col_by]) - set(col_values), key=str)
    row_values = sorted(meta[row_by].unique(), key=str)
    cols = []
    for v in col_values:
        cols += [str(v)] + [""] * (per_cell - 1)
    rv, cv = meta[row_by].to_numpy(), meta[col_by].to_numpy()
    picks = []
    for r in row_values:
        row = []
        for c in col_values:
            idx = np.flatnonzero((rv == r) & (cv == c) & shown)
            chosen = rng.choice(idx, size=min(per_cell, len(idx)), replace=False) if len(idx) else []
            row += [int(i) for i in chosen] + [None] * (per_cell - len(chosen))
        picks.append(row)
    return crop_montage(_tiles(crops, picks), row_labels(meta, row_by, row_values), cols,
                        channel_names=config.channel_names,
                        title=config.title or f"QC montage: example crops per {row_by[9:]} and {col_by[9:]}")
