"""What every learned representation shares: the settings of a trained network, the choice of
training cells, the result of ``represent`` and the saved artefact."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from cellbench.config import Config, ConfigError, non_negative, positive


class Representation(NamedTuple):
    """What a method's ``represent`` returns.

    * ``layers``: ``{layer: feature table}`` (``Metadata_`` columns then float64 features, one row
      per cell, in the crops' order);
    * ``model``: the trained network (``None`` for a hand-crafted representation);
    * ``config``: the validated configuration it ran with;
    * ``history``: ``{metric: [(step, value), ...]}`` of training;
    * ``artefact``: what ``TorchModelDataset`` saves (model name and constructor arguments from the
      registry, state dict, extras), or ``None``.
    """

    layers: dict[str, pd.DataFrame]
    model: torch.nn.Module | None
    config: Config
    history: dict
    artefact: dict | None


DEVICES = ("auto", "cpu", "cuda")


def check_device(path: str, device: str) -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:<index>``, else a ``ConfigError`` naming ``path.device``."""
    if not (device in DEVICES or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ConfigError(f"{path}.device: {device!r} is not one of {list(DEVICES)} or 'cuda:<index>'")


@dataclasses.dataclass(frozen=True)
class NetworkConfig(Config):
    """Settings shared by every trained network: where it runs, its seed, its width multiplier
    (1.0 = the published network) and the batching of embedding."""

    device: str
    seed: int
    width: float
    embed_batch_size: int
    num_workers: int

    def check(self, path: str) -> None:
        check_device(path, self.device)
        positive(path, width=self.width, embed_batch_size=self.embed_batch_size)
        non_negative(path, num_workers=self.num_workers)


@dataclasses.dataclass(frozen=True)
class CoosTrainingCells(Config):
    """Which cells of a COOS crop store train a network: the ``train_splits`` of
    ``Metadata_Split``, at most ``max_train_cells`` of them (a seeded sample; null = all)."""

    train_splits: tuple[str, ...]
    max_train_cells: int | None


def training_rows(metadata: pd.DataFrame, splits, limit: int | None, seed: int) -> np.ndarray:
    """Row positions of the cells in ``splits`` (column ``Metadata_Split``); a seeded sample of
    ``limit`` of them when there are more."""
    splits = list(splits)
    rows = np.flatnonzero(metadata["Metadata_Split"].isin(splits).to_numpy())
    if len(rows) == 0:
        raise ValueError(f"no crops in the training split(s) {splits} (column Metadata_Split)")
    return rows[subsample(len(rows), limit, seed)]  # the same draw as choosing among the rows


def subsample(n: int, limit: int | None, seed: int) -> np.ndarray:
    """All of ``range(n)``, or a sorted seeded sample of ``limit`` of them."""
    rows = np.arange(n)
    if limit and n > int(limit):
        rows = np.sort(np.random.default_rng(int(seed)).choice(rows, int(limit), replace=False))
    return rows


def feature_tables(meta: pd.DataFrame, layers: dict[str, np.ndarray], prefix: str) -> dict[str, pd.DataFrame]:
    """``{layer: metadata + <prefix>_<layer>_<i> float64 columns}`` for ``N x D`` arrays per layer."""
    meta = meta.reset_index(drop=True)
    return {name: pd.concat([meta, pd.DataFrame(v.astype(np.float64), columns=[f"{prefix}_{name}_{i}"
                                                                          for i in range(v.shape[1])])], axis=1)
            for name, v in layers.items()}


def model_artefact(name: str, model: torch.nn.Module, config: dict, **extra: Any) -> dict:
    """What ``TorchModelDataset`` saves: the registry name, its constructor arguments, the CPU state
    dict and extras; ``cellbench.models.build_model(name, **config)`` rebuilds it."""
    return {"model": name, "config": config, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            **extra}


def rebuild(artefact: dict) -> torch.nn.Module:
    """The network of a saved artefact, rebuilt through the registry with its weights loaded."""
    from cellbench.models import build_model

    model = build_model(artefact["model"], **artefact["config"])
    model.load_state_dict(artefact["state_dict"])
    return model.eval()
