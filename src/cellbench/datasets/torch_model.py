"""Model artefacts: a torch ``state_dict`` with the model's name and constructor arguments."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import torch
from kedro.io.core import AbstractDataset, DatasetError

from .atomic import swap_into_place, temporary


class TorchModelDataset(AbstractDataset[dict, dict]):
    """Saves ``{"model": name, "config": {...}, "state_dict": {...}, ...}`` with ``torch.save``
    (atomically: temporary file then rename); loads it with ``torch.load(weights_only=True)``, so a
    file can never execute code. Rebuild with ``cellbench.models.build_model(d["model"], **d["config"])``
    and ``load_state_dict(d["state_dict"])``.
    """

    def __init__(self, filepath: str, metadata: dict | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(PurePosixPath(self._filepath))}

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def load(self) -> dict:
        if not self._filepath.is_file():
            raise DatasetError(f"model artefact {self._filepath}: file not found")
        try:
            return torch.load(self._filepath, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DatasetError(f"model artefact {self._filepath}: not a readable weights-only torch file ({exc})") from exc

    def save(self, data: dict) -> None:
        if not isinstance(data, dict) or "state_dict" not in data:
            raise DatasetError(f"model artefact {self._filepath}: expected a dict with a 'state_dict', got "
                               f"{type(data).__name__}")
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary(self._filepath)
        try:
            torch.save(data, tmp)
            swap_into_place(tmp, self._filepath)
        finally:
            tmp.unlink(missing_ok=True)
