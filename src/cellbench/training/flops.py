"""Training and inference compute in FLOPs, counted by torch's own ``FlopCounterMode`` (one
multiply-add = 2 FLOPs; convolutions, matrix products and attention are counted, element-wise
operations are not, as is usual).

* ``Conv2d(c_in, c_out, k)`` on an ``H x W`` output: ``2 * c_in * k * k * c_out * H * W`` per image;
* ``Linear(d_in, d_out)``: ``2 * d_in * d_out`` per row;
* a training step (forward + backward) costs about 3x the forward (the backward computes the
  gradients of the inputs and of the weights).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn, *args, backward: bool = False, **kwargs) -> int:
    """FLOPs of ``fn(*args, **kwargs)`` (and of the backward of the sum of its output(s))."""
    with FlopCounterMode(display=False) as counter:
        out = fn(*args, **kwargs)
        if backward:
            tensors = out.values() if isinstance(out, dict) else (out if isinstance(out, (list, tuple)) else [out])
            sum(t.float().sum() for t in tensors).backward()
    return int(counter.get_total_flops())


def matmul_rate(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 5) -> float:
    """Measured dense matrix-multiply rate in FLOP/s (``2 n^3`` per product), the host's yardstick."""
    import time

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    (a @ b).sum().item()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        (a @ b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best
