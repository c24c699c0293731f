"""Representation nodes: crops in, ``{layer: feature table}`` out (one Parquet per layer); the
learned ones also return their weights and training history. Each node validates its section and
calls ``cellbench.representations``."""

from __future__ import annotations

from cellbench.crops import Crops
from cellbench.representations import run

from .._outputs import learned_outputs


def features(crops: Crops, params: dict, name: str, path: str):
    """A hand-crafted (or pretrained, untrained here) representation: its feature tables."""
    return run(name, crops, params, path).layers


def trained_features(crops: Crops, params: dict, name: str, path: str):
    """A learned representation: ``(feature tables, model artefact, metric histories)``."""
    return learned_outputs(name, run(name, crops, params, path))
