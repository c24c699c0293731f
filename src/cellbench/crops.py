"""Single-cell crops: ``N x C x H x W`` images with a row-aligned ``Metadata_`` table.

Every reader and the simulator produce this one form (see ARCHITECTURE.md). ``images`` may be a
numpy array or any lazily sliceable array (the crop store hands out a zarr array), so code that
walks the crops in batches never needs them all in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cellbench.metadata import feature_columns

ALLOWED_DTYPES = (np.dtype("uint16"), np.dtype("float32"))


def validate_crop_arrays(images: Any, metadata: pd.DataFrame, where: str = "crops") -> None:
    """Check rank, dtype and row alignment; raise ``ValueError`` naming ``where`` and the problem."""
    shape = tuple(getattr(images, "shape", ()))
    if len(shape) != 4:
        raise ValueError(f"{where}: images must have rank 4 (N x C x H x W), got shape {shape}")
    dtype = np.dtype(images.dtype)
    if dtype not in ALLOWED_DTYPES:
        raise ValueError(f"{where}: images must be uint16 or float32, got dtype {dtype}")
    if not isinstance(metadata, pd.DataFrame):
        raise ValueError(f"{where}: metadata must be a pandas DataFrame, got {type(metadata).__name__}")
    if len(metadata) != shape[0]:
        raise ValueError(
            f"{where}: metadata has {len(metadata)} rows but images have {shape[0]} crops; "
            "they must be row-aligned"
        )
    bad = feature_columns(metadata)  # every column that is not metadata
    if bad:
        raise ValueError(f"{where}: metadata columns must start with 'Metadata_', got {bad[:5]}")


@dataclass
class Crops:
    """A set of single-cell crops and their per-cell metadata (row ``i`` describes crop ``i``)."""

    images: Any
    metadata: pd.DataFrame

    def __post_init__(self) -> None:
        validate_crop_arrays(self.images, self.metadata)
        self.metadata = self.metadata.reset_index(drop=True)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return tuple(int(s) for s in self.images.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.images.dtype)

    def batches(self, batch_size: int = 1024) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(rows, images[rows])`` in order, reading one batch at a time."""
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        for start in range(0, len(self), batch_size):
            rows = slice(start, min(start + batch_size, len(self)))
            yield rows, np.asarray(self.images[rows])

    def take(self, index: np.ndarray) -> Crops:
        """Crops at the given row positions, loaded into memory (sorted reads for lazy arrays)."""
        index = np.asarray(index, dtype=np.int64)
        order = np.argsort(index, kind="stable")
        sorted_idx = index[order]
        if isinstance(self.images, np.ndarray):
            imgs = self.images[index]
        else:
            loaded = np.asarray(self.images.get_orthogonal_selection((sorted_idx,)))
            imgs = np.empty_like(loaded)
            imgs[order] = loaded
        return Crops(imgs, self.metadata.iloc[index].reset_index(drop=True))


@dataclass
class ChunkedCrops:
    """Crops produced lazily, chunk by chunk, so a writer can store them with bounded memory.

    ``make_chunks`` is called once per write and yields ``Crops``; all chunks share C, H, W and dtype.
    """

    make_chunks: Callable[[], Iterator[Crops]]
    n_crops: int | None = None
    info: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator[Crops]:
        return iter(self.make_chunks())

    def materialize(self) -> Crops:
        """All chunks concatenated in memory (for small sets and tests)."""
        chunks = list(self)
        if not chunks:
            raise ValueError("ChunkedCrops produced no chunks")
        return Crops(
            np.concatenate([np.asarray(c.images) for c in chunks]),
            pd.concat([c.metadata for c in chunks], ignore_index=True),
        )


def rechunk(pieces: Iterable[tuple[Any, pd.DataFrame]], chunk_cells: int) -> Iterator[Crops]:
    """``Crops`` of whole pieces (e.g. wells, images, fields): ``(images, metadata)`` pieces are
    gathered until a chunk holds at least ``chunk_cells`` crops, then yielded; the rest at the end."""
    images, metas, n = [], [], 0
    for imgs, meta in pieces:
        images.append(np.asarray(imgs))
        metas.append(meta)
        n += len(meta)
        if n >= chunk_cells:
            yield Crops(np.concatenate(images), pd.concat(metas, ignore_index=True))
            images, metas, n = [], [], 0
    if images:
        yield Crops(np.concatenate(images), pd.concat(metas, ignore_index=True))
