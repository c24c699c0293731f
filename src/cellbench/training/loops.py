"""Generic pieces of every training loop: shuffled mini-batches, one optimiser step and progress
reports (step, loss, steps/s, time left), so that a long node is never silent. The methods'
own loops live in ``cellbench.representations``."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

log = logging.getLogger("cellbench.training")


def batches(n: int, batch_size: int, rng: np.random.Generator):
    """Endless shuffled mini-batches of indices; every item once per epoch."""
    while True:
        perm = rng.permutation(n)
        for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            yield perm[start:start + batch_size]


def optimiser_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


class Progress:
    """Logs ``name step s/N: loss L, R steps/s (C cells/s), T left`` about every ``every_s``
    seconds of wall time and at the last step (a clock, so output does not depend on speed of the
    host beyond how often it appears; it never touches a random generator)."""

    def __init__(self, name: str, total: int, batch_size: int = 0, every_s: float = 30.0,
                 logger: logging.Logger | None = None):
        self.name, self.total, self.batch_size, self.every_s = name, int(total), int(batch_size), float(every_s)
        self.log = logger or log
        self.start = self.last = time.perf_counter()
        self.reports = 0
        from .distributed import current

        self.quiet = current().rank > 0  # under torchrun, rank 0 reports for all

    def update(self, step: int, loss: float) -> None:
        now = time.perf_counter()
        if self.quiet:
            return
        if step < self.total and now - self.last < self.every_s and not (step == 1 and self.reports == 0):
            return
        self.last = now
        self.reports += 1
        elapsed = max(now - self.start, 1e-9)
        rate = step / elapsed
        left = (self.total - step) / rate if rate > 0 else float("inf")
        cells = f" ({rate * self.batch_size:.0f} cells/s)" if self.batch_size else ""
        self.log.info("%s step %d/%d: loss %.5g, %.2f steps/s%s, %s left", self.name, step, self.total, loss, rate,
                      cells, _duration(left))


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
