"""Data-parallel training on the existing engine: ``torchrun`` + ``DistributedDataParallel``
(NCCL on GPUs, gloo on CPUs), one code path with the single-process run.

Every process draws the *global* batch (indices, augmentation, crops) from the same seeded
generator, then keeps its own contiguous ``1 / world`` slice (:func:`Distributed.shard`); DDP
averages the gradients, so a step equals a single-process step on the global batch (the loss is a
per-sample mean and the slices are equal). BatchNorm statistics are taken over the global batch:
``torch.nn.SyncBatchNorm`` on GPUs, :class:`GlobalBatchNorm` (the same arithmetic with a
differentiable all-reduce of the per-channel sum, then of the centred sum of squares) on CPUs,
where torch's SyncBatchNorm does not run. The DINO centre is averaged over the global batch too.

Measured (``tests/training/test_distributed.py``): torch's CPU ``BatchNorm2d`` forward on
channels-last post-ReLU maps is off by up to 5e-4 from a float64 two-pass computation, the explicit
two-pass form here by 1e-6; through a few Adam steps that alone moves weights by up to ~1e-2. The
2-process run is therefore compared with one process using the same BatchNorm arithmetic
(``CELLBENCH_GLOBAL_BN=1``).

Launch: ``torchrun --nproc_per_node=N -m cellbench ...`` or any script that calls the library;
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` come from torchrun, and a single process needs none.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Distributed:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This process's contiguous slice of a global batch (its first axis)."""
        if not self.active:
            return x
        n = x.shape[0]
        if n % self.world:
            raise ValueError(f"a global batch of {n} cannot be split evenly over {self.world} processes; "
                             f"use a batch_size that is a multiple of the world size")
        k = n // self.world
        return x[self.rank * k:(self.rank + 1) * k]

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` for the forward pass: DDP (global BatchNorm) when distributed, else itself.
        Keep the unwrapped module for checkpoints, EMA and evaluation. ``CELLBENCH_GLOBAL_BN=1``
        gives a single process the same BatchNorm arithmetic (the reference of the DDP test)."""
        if not self.active:
            if os.environ.get("CELLBENCH_GLOBAL_BN") == "1":
                sync_batchnorm(model, device)
            return model
        sync_batchnorm(model, device)
        ids = [device.index] if device.type == "cuda" and device.index is not None else None
        with warnings.catch_warnings():  # broadcast_buffers=False: BatchNorm buffers are global already
            warnings.simplefilter("ignore", FutureWarning)
            return nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """All processes' ``x`` concatenated in rank order (no gradient)."""
        if not self.active:
            return x
        parts = [torch.empty_like(x) for _ in range(self.world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)


def current() -> Distributed:
    """The process group of this run, initialised from torchrun's environment on first use."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    if not dist.is_initialized():
        import atexit

        backend = os.environ.get("CELLBENCH_DIST_BACKEND") or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend)
        atexit.register(_shutdown)  # a process group left open aborts the interpreter at exit
    return Distributed(dist.get_world_size(), dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")))


def _shutdown() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of all processes, on any device (see the module docstring).

    Training: mean = sum(x) / N, then var = sum((x - mean)^2) / N (two all-reduces, so no
    cancellation) over every process's batch and spatial positions (N in total); running statistics get the unbiased var * N / (N - 1), with
    ``momentum``; evaluation uses the running statistics, as ``nn.BatchNorm``."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-d input, got {x.dim()}-d")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                from torch.distributed.nn.functional import all_reduce  # differentiable
        else:
            def all_reduce(t):
                return t

        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        c = x.shape[1]
        count = torch.tensor([float(xf.numel() // c)], device=x.device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            first = all_reduce(torch.cat([xf.sum(dims), count]))  # two passes: no E[x^2] - E[x]^2 cancellation
            n = first[-1]
            mean = first[:c] / n
            var = all_reduce(((xf - mean.view(shape)) ** 2).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked + 1)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / max(float(n) - 1, 1.0))
                self.num_batches_tracked.add_(1)
        y = (xf - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm of ``model`` in place by its global-batch version (weights and
    running statistics kept)."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, (GlobalBatchNorm,
                                                                                         nn.SyncBatchNorm)):
            if device.type == "cuda":
                new = nn.SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                       child.track_running_stats)
            else:
                new = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                      child.track_running_stats)
            # the very same Parameter and buffer objects: an optimiser built before keeps working
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            if child.track_running_stats:
                new.running_mean, new.running_var = child.running_mean, child.running_var
                new.num_batches_tracked = child.num_batches_tracked
            new.training = child.training
            setattr(model, name, new)
        else:
            sync_batchnorm(child, device)
    return model
