"""One code path for CPU and CUDA: device choice, bf16 autocast on CUDA, channels-last everywhere.

Channels-last (NHWC) convolutions are faster on both: on the project's 2-core CPU a quarter-width
PCI trains 141 instead of 84 cells/s and DeepLoc 584 instead of 469 (``benchmarks/bench_models.py
--formats contiguous,channels_last``, ``benchmarks/RESULTS.md``); results stay deterministic for
a seed.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":  # under torchrun each process takes its own GPU (LOCAL_RANK)
        if torch.cuda.is_available():
            import os

            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA GPU; use device: auto or cpu")
    return dev


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU (fp32 there, bit-reproducible for a seed)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model on ``device`` with its 4-d (convolution) weights channels-last."""
    return model.to(device).to(memory_format=torch.channels_last)


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch on ``device``; image batches (4-d) channels-last."""
    x = x.to(device, non_blocking=device.type == "cuda")
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
