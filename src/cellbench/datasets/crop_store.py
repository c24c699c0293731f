"""The crop store: chunked ``N x C x H x W`` crops (zarr v3) plus row-aligned Parquet metadata.

Layout of ``filepath`` (a directory)::

    images.zarr/        zarr v3 array, chunks of ``chunk_size`` crops, zstd-compressed
    metadata.parquet    one row per crop, ``Metadata_`` columns

Loading returns :class:`cellbench.crops.Crops` whose ``images`` is the lazy zarr array: slicing
reads only the chunks it touches. Saving accepts ``Crops`` or ``ChunkedCrops`` (streamed chunk by
chunk) and is atomic: everything is written to a temporary sibling directory which is renamed
into place only when complete, so a failed write never leaves a half-written store.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import zarr
from kedro.io.core import AbstractDataset, DatasetError

from cellbench.crops import ALLOWED_DTYPES, ChunkedCrops, Crops, validate_crop_arrays

from .atomic import swap_into_place, temporary

IMAGES = "images.zarr"
METADATA = "metadata.parquet"
MANIFEST = "manifest.json"  # every file of the store and its size, written last


class StoredImages:
    """The store's lazy zarr array (``shape``, ``dtype``, slicing, orthogonal selection); a read
    that fails (a damaged chunk) is a ``DatasetError`` naming the store and the rows asked for."""

    def __init__(self, array, path: Path):
        self._array, self._path = array, path

    shape = property(lambda self: self._array.shape)
    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)
    chunks = property(lambda self: self._array.chunks)

    def __len__(self) -> int:
        return int(self._array.shape[0])

    def _read(self, method, key, rows):
        try:
            return method(key)
        except (IndexError, TypeError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise DatasetError(f"crop store {self._path}: reading crops {rows} failed ({type(exc).__name__}: {exc}); "
                               "the store is damaged, rerun the ingestion") from exc

    def __getitem__(self, key):
        first = key[0] if isinstance(key, tuple) else key
        rows = f"{first.start}:{first.stop}" if isinstance(first, slice) else str(first)
        return self._read(self._array.__getitem__, key, rows)

    def get_orthogonal_selection(self, selection):
        idx = np.asarray(selection[0])
        rows = f"{idx[:5].tolist()}{' ...' if idx.size > 5 else ''} ({idx.size} rows)"
        return self._read(self._array.get_orthogonal_selection, selection, rows)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self[:], dtype=dtype)


class CropStoreDataset(AbstractDataset[Crops, Crops]):
    """Kedro dataset for the crop store.

    Example ``catalog.yml`` entry::

        coos_crops:
          type: cellbench.datasets.CropStoreDataset
          filepath: data/02_intermediate/coos_crops
          chunk_size: 1024
    """

    def __init__(self, filepath: str, chunk_size: int = 1024, metadata: dict | None = None):
        if int(chunk_size) <= 0:
            raise ValueError(f"CropStoreDataset: chunk_size must be positive, got {chunk_size}")
        self._filepath = Path(filepath)
        self._chunk_size = int(chunk_size)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(PurePosixPath(self._filepath)), "chunk_size": self._chunk_size}

    def _exists(self) -> bool:
        return (self._filepath / IMAGES).exists() and (self._filepath / METADATA).exists()

    # -- load ---------------------------------------------------------------------------------
    def load(self) -> Crops:
        root = self._filepath
        if not root.is_dir():
            raise DatasetError(f"crop store {root}: directory not found")
        meta_path, img_path = root / METADATA, root / IMAGES
        if not meta_path.is_file():
            raise DatasetError(f"crop store {root}: missing metadata file {meta_path}")
        if not img_path.exists():
            raise DatasetError(f"crop store {root}: missing image array {img_path}")
        self._check_manifest(root)
        try:
            images = zarr.open_array(str(img_path), mode="r")
        except Exception as exc:  # zarr raises several types for a corrupt store
            raise DatasetError(f"crop store {img_path}: not a readable zarr array ({exc})") from exc
        metadata = pd.read_parquet(meta_path)
        if images.ndim != 4:
            raise DatasetError(
                f"crop store {img_path}: expected rank 4 (N x C x H x W), got shape {images.shape}"
            )
        if np.dtype(images.dtype) not in ALLOWED_DTYPES:
            raise DatasetError(
                f"crop store {img_path}: expected dtype uint16 or float32, got {images.dtype}"
            )
        if len(metadata) != images.shape[0]:
            raise DatasetError(
                f"crop store {root}: {meta_path.name} has {len(metadata)} rows but {IMAGES} "
                f"has {images.shape[0]} crops; they must be row-aligned"
            )
        return Crops(StoredImages(images, img_path), metadata)

    @staticmethod
    def _check_manifest(root: Path) -> None:
        """Every file the save wrote is there with its size (a store written before manifests
        existed is not checked)."""
        path = root / MANIFEST
        if not path.is_file():
            return
        try:
            files = json.loads(path.read_text())["files"]
        except (ValueError, KeyError) as exc:
            raise DatasetError(f"crop store {root}: unreadable {MANIFEST} ({exc}); rerun the ingestion") from exc
        for name, size in files.items():
            file = root / name
            if not file.is_file():
                raise DatasetError(f"crop store {root}: {name} is missing (the store is incomplete); rerun the ingestion")
            if file.stat().st_size != size:
                raise DatasetError(f"crop store {root}: {name} has {file.stat().st_size} bytes, {size} were written "
                                   "(truncated or changed); rerun the ingestion")

    # -- save ---------------------------------------------------------------------------------
    def save(self, data: Crops | ChunkedCrops) -> None:
        if isinstance(data, Crops):
            chunks = (data,)
        elif isinstance(data, ChunkedCrops):
            chunks = data
        else:
            raise DatasetError(
                f"crop store {self._filepath}: can save Crops or ChunkedCrops, got {type(data).__name__}"
            )
        root = self._filepath
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary(root)
        try:
            self._write(tmp, chunks)
            swap_into_place(tmp, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _write(self, tmp: Path, chunks) -> None:
        tmp.mkdir(parents=True)
        array = None
        metas = []
        n = 0
        for i, chunk in enumerate(chunks):
            images = chunk.images
            validate_crop_arrays(images, chunk.metadata, where=f"crop store {self._filepath} chunk {i}")
            images = np.ascontiguousarray(np.asarray(images))
            if images.dtype.kind == "f" and not np.isfinite(images).all():
                row = int(np.flatnonzero(~np.isfinite(images).reshape(len(images), -1).all(axis=1))[0])
                raise DatasetError(f"crop store {self._filepath}: chunk {i} crop {row} (row {n + row}) has NaN or infinite "
                                   "pixels; fix or drop those crops before storing them")
            if array is None:
                _, c, h, w = images.shape
                array = zarr.create_array(
                    store=str(tmp / IMAGES),
                    shape=(0, c, h, w),
                    chunks=(self._chunk_size, c, h, w),
                    dtype=images.dtype,
                )
            elif images.shape[1:] != array.shape[1:] or images.dtype != array.dtype:
                raise DatasetError(
                    f"crop store {self._filepath}: chunk {i} has shape {images.shape[1:]} / dtype "
                    f"{images.dtype}, expected {array.shape[1:]} / {array.dtype} like chunk 0"
                )
            array.append(images, axis=0)
            metas.append(chunk.metadata)
            n += images.shape[0]
        if array is None:
            raise DatasetError(f"crop store {self._filepath}: nothing to save (no chunks)")
        metadata = pd.concat(metas, ignore_index=True)
        metadata.to_parquet(tmp / METADATA, index=False)
        files = {p.relative_to(tmp).as_posix(): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
        (tmp / MANIFEST).write_text(json.dumps({"crops": n, "files": files}, indent=0))
