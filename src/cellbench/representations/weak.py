"""Weakly supervised ResNet18 on treatment labels (DeepProfiler, Caicedo et al. 2018; seed 004;
METHODS.md 5.1).

* class-uniform sampling: draw labels uniformly, then a random cell of each label;
* per-crop, per-channel normalisation m = max / 2, x -> (x - m) / m (``half_max_normalise``);
* augmentation: random shift up to ``shift`` of the crop (zero padded), left-right flip, rot90;
* mixup (alpha = 0.2): lambda ~ Beta(alpha, alpha) per sample, partner drawn at random from the
  batch, image lambda a + (1 - lambda) b and soft label lambda y_a + (1 - lambda) y_b;
* GRU regulariser: sets of ``sequence_length`` cells of one treatment, drawn from as many
  different batches as the treatment has, classified from the last GRU state (the GRU head is
  discarded after training);
* training cells: those of ``train_replicates`` (DeepProfiler: replicates 1 and 3); layers: the
  spatial means of ``layers`` (default ``res4a``, the paper's conv4a).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cellbench.config import ConfigError, one_of, positive
from cellbench.crops import Crops
from cellbench.models import ResNet18, SequenceClassifier
from cellbench.training.augment import random_flips, random_rot90
from cellbench.training.device import autocast, prepare_model, seed_everything, to_device
from cellbench.training.distributed import current
from cellbench.training.embed import embed_crops
from cellbench.training.loops import Progress, optimiser_step
from cellbench.training.preprocess import half_max_normalise

from ._common import NetworkConfig, Representation, feature_tables, model_artefact

REGULARISERS = ("none", "mixup", "gru")
LAYERS = ("res3", "res4a", "res4", "res5")
preprocess = half_max_normalise


@dataclasses.dataclass(frozen=True)
class WeakConfig(NetworkConfig):
    """``treatments.weak.<resnet_plain|resnet_mixup|resnet_gru>``."""

    regulariser: str
    steps: int
    batch_size: int
    lr: float
    shift: float
    label: str
    batch: str
    train_replicates: tuple[int, ...]
    layers: tuple[str, ...]
    alpha: float
    sequence_length: int
    gru_units: int
    pretrained: str | None

    def check(self, path: str) -> None:
        NetworkConfig.check(self, path)
        one_of(path, "regulariser", self.regulariser, REGULARISERS)
        positive(path, steps=self.steps, batch_size=self.batch_size, lr=self.lr, alpha=self.alpha,
                 sequence_length=self.sequence_length, gru_units=self.gru_units)
        if not 0 <= self.shift < 1:
            raise ConfigError(f"{path}.shift: a fraction of the crop in [0, 1) expected, got {self.shift}")
        if self.pretrained is not None and not Path(self.pretrained).is_file():
            raise ConfigError(f"{path}.pretrained: no file {self.pretrained!r} (torchvision-layout resnet18 weights); "
                              "null trains from scratch")
        bad = [name for name in self.layers if name not in LAYERS]
        if bad or not self.layers:
            raise ConfigError(f"{path}.layers: layers among {list(LAYERS)} expected, got {list(self.layers)}")


def label_members(labels: np.ndarray) -> list[np.ndarray]:
    """The indices of each label's cells, labels in ``np.unique`` order (computed once per run:
    recomputing them every step cost 4 ms of a 58 ms step)."""
    classes, inverse = np.unique(labels, return_inverse=True)
    return [np.flatnonzero(inverse == k) for k in range(len(classes))]


def batch_groups(labels: np.ndarray, batches: np.ndarray) -> list[list[np.ndarray]]:
    """Per label (``np.unique`` order), its cells split by batch (batches in ``np.unique`` order)."""
    return [[m[batches[m] == b] for b in np.unique(batches[m])] for m in label_members(labels)]


def class_uniform_indices(labels: np.ndarray, n: int, rng: np.random.Generator,
                          members: list[np.ndarray] | None = None) -> np.ndarray:
    """``n`` cell indices: a label drawn uniformly, then a cell of that label uniformly
    (``members``: :func:`label_members` of ``labels``, when already computed)."""
    members = label_members(labels) if members is None else members
    picked = rng.integers(len(members), size=n)
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
                     rng: np.random.Generator, groups: list[list[np.ndarray]] | None = None) -> np.ndarray:
    """``n_sets x length`` cell indices; each set is one label (drawn uniformly) and its cells come
    from different batches (cycling through the label's batches in random order, with
    replacement only when the label has fewer batches than ``length``). ``groups``:
    :func:`batch_groups` of ``labels`` and ``batches``, when already computed."""
    groups = batch_groups(labels, batches) if groups is None else groups
    out = np.empty((n_sets, length), dtype=np.int64)
    for s in range(n_sets):
        label_groups = groups[rng.integers(len(groups))]
        order = rng.permutation(len(label_groups))
        for t in range(length):
            g = label_groups[order[t % len(label_groups)]]
            out[s, t] = g[rng.integers(len(g))]
    return out


def _augment(x: torch.Tensor, config: WeakConfig, rng) -> torch.Tensor:
    x = random_shift(x, config.shift, rng)
    return random_rot90(random_flips(x, rng), rng, (0, 1, 2, 3))


def train(images: np.ndarray, labels: np.ndarray, batches: np.ndarray, config: WeakConfig, device: torch.device):
    """ResNet18 on preprocessed ``images`` with treatment ``labels`` (``batches``: each cell's
    batch, for the GRU sets). Returns ``(resnet, classes, history)``."""
    rng = seed_everything(config.seed)
    classes, y_idx = np.unique(labels, return_inverse=True)
    reg = config.regulariser
    resnet = ResNet18(images.shape[1], len(classes), config.width)
    if config.pretrained:  # ImageNet trunk, first convolution adapted to the channels
        from cellbench.models.pretrained import load_resnet18

        load_resnet18(resnet, config.pretrained)
    model = prepare_model(SequenceClassifier(resnet, len(classes), config.gru_units) if reg == "gru" else resnet, device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    ctx = current()  # torchrun: each process trains on its slice of every global batch
    net = ctx.wrap(model, device)
    steps, batch, length = config.steps, config.batch_size, config.sequence_length
    history = {"train_loss": []}
    progress = Progress(f"ResNet18 ({reg})", steps, batch)
    members = label_members(labels) if reg != "gru" else None  # the samplers' groups, once per run
    groups = batch_groups(labels, batches) if reg == "gru" else None
    model.train()
    for step in range(1, steps + 1):
        with progress.counting():
            if reg == "gru":
                idx = sequence_indices(labels, batches, max(1, batch // length), length, rng, groups)
                x = ctx.shard(_augment(torch.from_numpy(images[idx.ravel()]), config, rng).view(*idx.shape, *images.shape[1:]))
                target = ctx.shard(torch.from_numpy(y_idx[idx[:, 0]])).to(device)
                with autocast(device):
                    loss = nn.functional.cross_entropy(net(to_device(x.flatten(0, 1), device).view_as(x)).float(), target)
            else:
                idx = class_uniform_indices(labels, batch, rng, members)
                x = to_device(_augment(torch.from_numpy(images[idx]), config, rng), device)
                y = nn.functional.one_hot(torch.from_numpy(y_idx[idx]), len(classes)).float().to(device)
                if reg == "mixup":
                    x, y, _, _ = mixup(x, y, config.alpha, rng)
                x, y = ctx.shard(x), ctx.shard(y)
                with autocast(device):
                    logits = net(x).float()
                loss = -(y * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
            optimiser_step(opt, loss)
        history["train_loss"].append((step, float(loss.detach())))
        progress.update(step, float(loss.detach()))
        progress.snapshot(step, resnet)
    history.update(progress.history(steps))
    return resnet, classes, history


def represent(crops: Crops, config: WeakConfig, device: torch.device) -> Representation:
    """Train on the cells of ``train_replicates`` (column ``Metadata_Replicate``), embed every cell."""
    meta = crops.metadata
    rows = np.flatnonzero(meta["Metadata_Replicate"].isin(list(config.train_replicates)).to_numpy())
    if len(rows) == 0:
        raise ValueError(f"weak supervision: no cells in train_replicates {list(config.train_replicates)} "
                         "(column Metadata_Replicate)")
    cells = crops.take(rows)
    model, classes, history = train(preprocess(np.asarray(cells.images)), cells.metadata[config.label].astype(str).to_numpy(),
                                    cells.metadata[config.batch].astype(str).to_numpy(), config, device)
    model.eval()
    wanted = list(config.layers)
    feats = embed_crops(lambda x: {k: v for k, v in model.embed(x).items() if k in wanted}, crops, preprocess, device,
                        config.embed_batch_size, config.num_workers)
    arch = {"in_channels": int(crops.shape[1]), "n_classes": len(classes), "width": config.width}
    artefact = model_artefact("resnet18", model, arch, classes=[str(c) for c in classes])
    return Representation(feature_tables(meta, feats, "ResNet18"), model, config, history, artefact)
