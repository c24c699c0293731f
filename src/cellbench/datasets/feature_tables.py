"""Feature tables of one representation: one Parquet file per layer (a PartitionedDataset)."""

from __future__ import annotations

from kedro.io.core import DatasetError
from kedro_datasets.partitions import PartitionedDataset


class FeatureTablesDataset(PartitionedDataset):
    """``{layer: table}`` as ``<path>/<layer>.parquet``.

    Unlike a plain PartitionedDataset, saving replaces the previous layers (a representation run
    without weights must not leave stale tables to be evaluated), and a representation that wrote
    no layer (VGG16 without an ImageNet weights file) loads as ``{}`` instead of failing.
    """

    def __init__(self, path: str, **kwargs):
        kwargs.setdefault("dataset", "pandas.ParquetDataset")
        kwargs.setdefault("filename_suffix", ".parquet")
        kwargs.setdefault("overwrite", True)
        super().__init__(path=path, **kwargs)

    def load(self):
        try:
            return super().load()
        except DatasetError as exc:
            if "No partitions found" in str(exc):
                return {}
            raise

    def save(self, data) -> None:
        if not data:
            if self._overwrite and self._filesystem.exists(self._normalized_path):
                self._filesystem.rm(self._normalized_path, recursive=True)
            return
        super().save(data)
