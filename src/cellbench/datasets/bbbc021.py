"""BBBC021 per-well profiles as published (Ljosa et al. 2013), joined to the BBBC021 metadata."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

from cellbench.ingest.tables import ljosa_profiles


class Bbbc021ProfilesDataset(AbstractDataset[None, pd.DataFrame]):
    """Read-only: ``ljosa_jbiomolscreen_2013_per_well_mean.csv.gz`` + ``BBBC021_v1_image.csv(.gz)``
    + ``BBBC021_v1_moa.csv`` -> one row per well in the ``Metadata_`` convention (632 wells).

    Example ``catalog.yml`` entry::

        bbbc021_wells:
          type: cellbench.datasets.Bbbc021ProfilesDataset
          profiles: data/01_raw/bbbc021_ljosa2013/ljosa_jbiomolscreen_2013_per_well_mean.csv.gz
          image: data/01_raw/bbbc021_ljosa2013/BBBC021_v1_image.csv.gz
          moa: data/01_raw/bbbc021_ljosa2013/BBBC021_v1_moa.csv
    """

    def __init__(self, profiles: str, image: str, moa: str, metadata: dict | None = None):
        self._paths = {"profiles": Path(profiles), "image": Path(image), "moa": Path(moa)}
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {k: str(PurePosixPath(v)) for k, v in self._paths.items()}

    def _exists(self) -> bool:
        return all(p.is_file() for p in self._paths.values())

    def load(self) -> pd.DataFrame:
        for name, path in self._paths.items():
            if not path.is_file():
                raise DatasetError(f"BBBC021 {name} table: file not found: {path}")
        try:
            return ljosa_profiles(self._paths["profiles"], self._paths["image"], self._paths["moa"])
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc

    def save(self, data: pd.DataFrame) -> None:
        raise DatasetError("Bbbc021ProfilesDataset is read-only (the published tables are inputs)")
