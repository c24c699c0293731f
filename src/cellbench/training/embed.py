"""Batched inference over a crop store: a DataLoader reads and preprocesses batches in worker
processes (pinned memory on CUDA) while the model embeds the previous one."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cellbench.crops import Crops

from .device import autocast, to_device


class _CropBatches(Dataset):
    def __init__(self, crops: Crops, batch_size: int, transform: Callable[[np.ndarray], np.ndarray]):
        self.crops, self.batch_size, self.transform = crops, batch_size, transform

    def __len__(self) -> int:
        return -(-len(self.crops) // self.batch_size)

    def __getitem__(self, i: int) -> torch.Tensor:
        rows = slice(i * self.batch_size, min((i + 1) * self.batch_size, len(self.crops)))
        return torch.from_numpy(self.transform(np.asarray(self.crops.images[rows])))


@torch.no_grad()
def embed_crops(embed: Callable[[torch.Tensor], dict[str, torch.Tensor]], crops: Crops,
                transform: Callable[[np.ndarray], np.ndarray], device: torch.device, batch_size: int = 256,
                num_workers: int = 0) -> dict[str, np.ndarray]:
    """``{layer: N x D float32}`` of ``embed`` (a model's ``embed``) over all crops, in row order."""
    loader = DataLoader(_CropBatches(crops, batch_size, transform), batch_size=None, shuffle=False,
                        num_workers=num_workers, pin_memory=device.type == "cuda")
    out: dict[str, list[np.ndarray]] = {}
    for x in loader:
        with autocast(device):
            feats = embed(to_device(x, device))
        for k, v in feats.items():
            out.setdefault(k, []).append(v.float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}
