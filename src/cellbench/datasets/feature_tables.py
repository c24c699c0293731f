"""Feature tables of one representation: one Parquet file per layer (a PartitionedDataset)."""

from __future__ import annotations

import shutil
from copy import deepcopy
from pathlib import Path

import pyarrow.parquet as pq
from kedro.io.core import DatasetError
from kedro_datasets.partitions import PartitionedDataset

from .atomic import swap_into_place, temporary


class FeatureTablesDataset(PartitionedDataset):
    """``{layer: table}`` as ``<path>/<layer>.parquet``.

    Unlike a plain PartitionedDataset:

    * saving replaces the previous layers, atomically: all layers are written to a temporary
      sibling folder that then replaces the old one (a kill mid-save leaves the previous tables
      whole; a representation run without weights must not leave stale tables to be evaluated);
    * loading checks every layer's Parquet footer first, so a damaged file is an error naming it
      rather than a partial table later;
    * a representation that wrote no layer (VGG16 without an ImageNet weights file) loads as ``{}``.
    """

    def __init__(self, path: str, **kwargs):
        kwargs.setdefault("dataset", "pandas.ParquetDataset")
        kwargs.setdefault("filename_suffix", ".parquet")
        kwargs.setdefault("overwrite", True)
        super().__init__(path=path, **kwargs)

    def load(self):
        root = Path(self._normalized_path)
        for path in sorted(root.glob(f"*{self._filename_suffix}")) if root.is_dir() else []:
            try:
                pq.read_metadata(path)
            except Exception as exc:
                raise DatasetError(f"feature table {path}: not a readable Parquet file ({exc}); rerun the node "
                                   "that writes it") from exc
        try:
            return super().load()
        except DatasetError as exc:
            if "No partitions found" in str(exc):
                return {}
            raise

    def save(self, data) -> None:
        root = Path(self._normalized_path)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary(root)
        tmp.mkdir()
        try:
            for layer, table in sorted(data.items()):
                kwargs = deepcopy(self._dataset_config)
                kwargs[self._filepath_arg] = str(tmp / f"{layer}{self._filename_suffix}")
                self._dataset_type(**kwargs).save(table() if callable(table) else table)
            if data:
                swap_into_place(tmp, root)
            elif root.exists():  # nothing to save: the old layers go, atomically
                old = temporary(root, "old")
                root.rename(old)
                shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._invalidate_caches()
