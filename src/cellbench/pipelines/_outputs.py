"""Outputs shared by the nodes that train models: feature tables per layer, the model artefact
(``TorchModelDataset``) and loss curves as MLflow metric histories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def feature_tables(meta: pd.DataFrame, layers: dict[str, np.ndarray], prefix: str) -> dict[str, pd.DataFrame]:
    """``{layer: metadata + <prefix>_<layer>_<i> float64 columns}`` for ``N x D`` arrays per layer."""
    meta = meta.reset_index(drop=True)
    return {name: pd.concat([meta, pd.DataFrame(v.astype(np.float64), columns=[f"{prefix}_{name}_{i}"
                                                                          for i in range(v.shape[1])])], axis=1)
            for name, v in layers.items()}


def metric_histories(name: str, history: dict, max_points: int = 250) -> dict:
    """MLflow metric histories ``training/<name>/<metric>`` (thinned to ``max_points`` points)."""
    out = {}
    for metric, points in history.items():
        stride = max(1, len(points) // max_points)
        kept = points[::stride] if points[-1] in points[::stride] else points[::stride] + [points[-1]]
        out[f"training/{name}/{metric}"] = [{"step": int(s), "value": float(v)} for s, v in kept]
    return out


def model_artefact(name: str, model: torch.nn.Module, config: dict, **extra) -> dict:
    """What ``TorchModelDataset`` saves: model name, constructor config, CPU state dict, extras."""
    return {"model": name, "config": config, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            **extra}
