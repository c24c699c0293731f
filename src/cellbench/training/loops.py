"""Generic pieces of every training loop: shuffled mini-batches, one optimiser step and progress
reports (step, loss, steps/s, time left), so that a long node is never silent. The methods'
own loops live in ``cellbench.representations``.

Every loop also counts its training compute: the first call under each key of
:meth:`Progress.counting` runs under torch's ``FlopCounterMode`` (:mod:`cellbench.training.flops`;
the steps of a loop have fixed shapes, so later calls cost the same) and the total goes into the
training history as ``flops`` next to ``cpu_seconds`` (process CPU time). Inside
:func:`capture_snapshots` the loops keep copies of their weights at chosen steps, so that one run
of N steps gives the models of every shorter budget (what ``benchmarks/budget_curves.py`` scores):
exactly so for loops whose schedule does not depend on the total number of steps (DeepLoc's
staircase, PCI / autoencoder / ResNet18 / VAE at a constant rate), which are the loops that take
snapshots; DINO's cosine schedules do not, so its budgets are separate runs.
"""

from __future__ import annotations

import contextlib
import contextvars
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
        self.flops = 0
        self._per_call: dict[str, int] = {}
        self.cpu_start = time.process_time()
        self._window: float | None = None  # profile_steps: start of the current window
        self._profiler = None

    @contextlib.contextmanager
    def counting(self, key: str = "step"):
        """Add the FLOPs of the enclosed work to :attr:`flops`: measured with ``FlopCounterMode`` the
        first time ``key`` is seen, the same count on every later call."""
        if key in self._per_call:
            yield
        else:
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                yield
            self._per_call[key] = int(counter.get_total_flops())
        self.flops += self._per_call[key]

    def history(self, step: int) -> dict:
        """``{"flops": [(step, FLOPs so far)], "cpu_seconds": [(step, process CPU s)]}``."""
        return {"flops": [(step, float(self.flops))], "cpu_seconds": [(step, time.process_time() - self.cpu_start)]}

    def snapshot(self, step: int, state) -> None:
        """Inside :func:`capture_snapshots`, at one of its steps: keep a CPU copy of ``state`` (a
        module, a state dict, or a callable returning one) with the compute spent so far."""
        store = _SNAPSHOTS.get()
        if store is None or step not in store["steps"]:
            return
        state = state() if callable(state) and not isinstance(state, torch.nn.Module) else state
        if isinstance(state, torch.nn.Module):
            state = state.state_dict()
        store["taken"].append({"loop": self.name, "step": int(step), "flops": float(self.flops),
                               "cpu_seconds": time.process_time() - self.cpu_start,
                               "wall_seconds": time.perf_counter() - self.start,
                               "state_dict": {k: v.detach().cpu().clone() for k, v in state.items()}})

    def update(self, step: int, loss: float) -> None:
        now = time.perf_counter()
        if _PROFILE.get() is not None:
            self._profile_tick(step, now)
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
        flops = f", {self.flops / 1e12:.3g} TFLOP so far" if self.flops else ""
        self.log.info("%s step %d/%d: loss %.5g, %.2f steps/s%s, %s left%s", self.name, step, self.total, loss, rate,
                      cells, _duration(left), flops)

    def _profile_tick(self, step: int, now: float) -> None:
        """Inside :func:`profile_steps`: time its plain window, then run its profiled window under
        ``torch.profiler`` (steps are counted at their end, so window ``(a, b]`` is the work of the
        steps ``a + 1 .. b``)."""
        store = _PROFILE.get()
        first, timed_end, last = store["first"], store["first"] + store["timed"], store["first"] + store["timed"] + store["profiled"]
        if step == first:
            self._window = now
        elif step == timed_end and self._window is not None:
            store["taken"].append({"loop": self.name, "batch_size": self.batch_size, "steps": store["timed"],
                                   "wall_seconds": now - self._window, "profile": None})
            self._profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self._profiler.__enter__()
            self._window = time.perf_counter()
        elif (step == last or step >= self.total) and self._profiler is not None:
            self._profiler.__exit__(None, None, None)  # a loop ending early closes its window there
            store["taken"][-1].update(profile=self._profiler, profiled_steps=step - timed_end,
                                      profiled_seconds=time.perf_counter() - self._window)
            self._profiler = None


_SNAPSHOTS: contextvars.ContextVar = contextvars.ContextVar("cellbench_snapshots", default=None)
_PROFILE: contextvars.ContextVar = contextvars.ContextVar("cellbench_profile", default=None)


@contextlib.contextmanager
def profile_steps(first: int, timed: int, profiled: int):
    """Within the block, every training loop times its steps ``first + 1 .. first + timed`` plainly
    (wall clock: cells/s) and runs the next ``profiled`` steps under ``torch.profiler`` (CPU
    activities: where a step's time goes). Yields the list of ``{"loop", "batch_size", "steps",
    "wall_seconds", "profile", "profiled_steps", "profiled_seconds"}`` records, one per loop run
    that reached the end of its timed window (``benchmarks/profile_loops.py``); a loop that ends
    inside its profiled window closes it at its last step. Starting after a few steps leaves out the
    first step's FLOP count and warm-up."""
    if min(first, timed, profiled) < 1:
        raise ValueError(f"profile_steps: first, timed and profiled must be >= 1, got {first}, {timed}, {profiled}")
    store = {"first": int(first), "timed": int(timed), "profiled": int(profiled), "taken": []}
    token = _PROFILE.set(store)
    try:
        yield store["taken"]
    finally:
        _PROFILE.reset(token)


@contextlib.contextmanager
def capture_snapshots(steps):
    """Within the block, training loops keep their weights at each of ``steps`` (see
    :meth:`Progress.snapshot`); yields the list the snapshots are appended to."""
    store = {"steps": {int(s) for s in steps}, "taken": []}
    token = _SNAPSHOTS.set(store)
    try:
        yield store["taken"]
    finally:
        _SNAPSHOTS.reset(token)


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
