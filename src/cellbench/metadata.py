"""The table convention shared by every feature table and profile (pycytominer / JUMP):
metadata columns start with ``Metadata_``, every other column is a numeric feature."""

from __future__ import annotations

import pandas as pd

METADATA_PREFIX = "Metadata_"


def feature_columns(table: pd.DataFrame) -> list[str]:
    """The feature columns: every column not starting with ``Metadata_``, in table order."""
    return [c for c in table.columns if not str(c).startswith(METADATA_PREFIX)]


def metadata_columns(table: pd.DataFrame) -> list[str]:
    """The metadata columns: those starting with ``Metadata_``, in table order."""
    return [c for c in table.columns if str(c).startswith(METADATA_PREFIX)]


def require_columns(table: pd.DataFrame, columns, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` and every column of ``columns`` the table lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        shown = list(table.columns)[:12]
        raise ValueError(f"{where}: missing column(s) {missing}; found {shown}{' ...' if table.shape[1] > 12 else ''}")
