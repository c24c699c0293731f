"""Weakly supervised training on treatment labels (DeepProfiler, Caicedo et al. 2018; METHODS.md 5.1).

* class-uniform sampling: draw labels uniformly, then a random cell of each label;
* per-crop, per-channel normalisation m = max / 2, x -> (x - m) / m (the paper's version);
* augmentation: random shift up to 30 % of the crop (zero padded), left-right flip, rot90;
* mixup (alpha = 0.2): lambda ~ Beta(alpha, alpha) per sample, partner drawn at random from the
  batch, image lambda a + (1 - lambda) b and soft label lambda y_a + (1 - lambda) y_b;
* GRU regulariser: sets of ``sequence_length`` cells of one treatment, drawn from as many
  different batches as the treatment has, classified from the last GRU state.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cellbench.models import ResNet18, SequenceClassifier

from .augment import random_flips, random_rot90
from .device import autocast, prepare_model, seed_everything, to_device
from .loops import optimiser_step


def class_uniform_indices(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` cell indices: a label drawn uniformly, then a cell of that label uniformly."""
    classes, inverse = np.unique(labels, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(classes))]
    picked = rng.integers(len(classes), size=n)
    return np.array([members[k][rng.integers(len(members[k]))] for k in picked])


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, rng: np.random.Generator
          ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """Mix every sample with a random partner of the batch; returns (images, soft labels, lambda, partner)."""
    n = x.shape[0]
    lam = rng.beta(alpha, alpha, size=n).astype(np.float32)
    partner = rng.permutation(n)
    lam_t = torch.from_numpy(lam).to(x.device)
    xm = lam_t[:, None, None, None] * x + (1 - lam_t[:, None, None, None]) * x[partner]
    ym = lam_t[:, None] * y + (1 - lam_t[:, None]) * y[partner]
    return xm, ym, lam, partner


def random_shift(x: torch.Tensor, fraction: float, rng: np.random.Generator) -> torch.Tensor:
    """Translate each crop by up to ``fraction`` of its size in y and x, filling with zeros."""
    n, _, h, w = x.shape
    dy = rng.integers(-int(fraction * h), int(fraction * h) + 1, n)
    dx = rng.integers(-int(fraction * w), int(fraction * w) + 1, n)
    out = torch.zeros_like(x)
    for i in range(n):
        ys, yd = (slice(0, h - dy[i]), slice(dy[i], h)) if dy[i] >= 0 else (slice(-dy[i], h), slice(0, h + dy[i]))
        xs, xd = (slice(0, w - dx[i]), slice(dx[i], w)) if dx[i] >= 0 else (slice(-dx[i], w), slice(0, w + dx[i]))
        out[i, :, yd, xd] = x[i, :, ys, xs]
    return out


def sequence_indices(labels: np.ndarray, batches: np.ndarray, n_sets: int, length: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``n_sets x length`` cell indices; each set is one label (drawn uniformly) and its cells come
    from different batches (cycling through the label's batches in random order, with
    replacement only when the label has fewer batches than ``length``)."""
    classes, inverse = np.unique(labels, return_inverse=True)
    out = np.empty((n_sets, length), dtype=np.int64)
    for s in range(n_sets):
        k = rng.integers(len(classes))
        members = np.flatnonzero(inverse == k)
        groups = [members[batches[members] == b] for b in np.unique(batches[members])]
        order = rng.permutation(len(groups))
        for t in range(length):
            g = groups[order[t % len(groups)]]
            out[s, t] = g[rng.integers(len(g))]
    return out


def _augment(x: torch.Tensor, params: dict, rng) -> torch.Tensor:
    x = random_shift(x, float(params.get("shift", 0.3)), rng)
    return random_rot90(random_flips(x, rng), rng, (0, 1, 2, 3))


def train_weakly_supervised(images: np.ndarray, labels: np.ndarray, batches: np.ndarray, params: dict, seed: int,
                            device: torch.device):
    """ResNet18 on treatment labels with ``regulariser`` in {none, mixup, gru}. ``images`` are
    already normalised. Returns ``(resnet, classes, history)``; the GRU head is discarded."""
    rng = seed_everything(seed)
    classes, y_idx = np.unique(labels, return_inverse=True)
    reg = params.get("regulariser", "mixup")
    if reg not in ("none", "mixup", "gru"):
        raise ValueError(f"regulariser must be none, mixup or gru, got {reg!r}")
    resnet = ResNet18(images.shape[1], len(classes), float(params.get("width", 1.0)))
    model = prepare_model(SequenceClassifier(resnet, len(classes), int(params.get("gru_units", 256)))
                          if reg == "gru" else resnet, device)
    opt = torch.optim.Adam(model.parameters(), lr=float(params.get("lr", 1e-3)))
    steps, batch = int(params.get("steps", 1000)), int(params.get("batch_size", 64))
    length = int(params.get("sequence_length", 3))
    history = {"train_loss": []}
    model.train()
    for step in range(1, steps + 1):
        if reg == "gru":
            idx = sequence_indices(labels, batches, max(1, batch // length), length, rng)
            x = _augment(torch.from_numpy(images[idx.ravel()]), params, rng).view(*idx.shape, *images.shape[1:])
            target = torch.from_numpy(y_idx[idx[:, 0]]).to(device)
            with autocast(device):
                loss = nn.functional.cross_entropy(model(to_device(x.flatten(0, 1), device).view_as(x)).float(), target)
        else:
            idx = class_uniform_indices(labels, batch, rng)
            x = to_device(_augment(torch.from_numpy(images[idx]), params, rng), device)
            y = nn.functional.one_hot(torch.from_numpy(y_idx[idx]), len(classes)).float().to(device)
            if reg == "mixup":
                x, y, _, _ = mixup(x, y, float(params.get("alpha", 0.2)), rng)
            with autocast(device):
                logits = model(x).float()
            loss = -(y * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
        optimiser_step(opt, loss)
        history["train_loss"].append((step, float(loss.detach())))
    return resnet, classes, history
