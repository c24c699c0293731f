"""Paired cell inpainting (Lu et al. 2019, seed 002; METHODS.md 2) and its autoencoder baseline.

* preprocessing: every crop and channel min-max rescaled to [0, 1] (``minmax_per_crop``);
* PCI: from all channels of cell A and the structural channel(s) of cell B of the same well,
  predict B's protein channel; loss MSE; Adam(lr, beta1 0.5); every eligible cell is A once per
  epoch (wells with fewer than ``min_cells_per_group`` cells are dropped); A and B flipped
  independently;
* autoencoder: reconstruct all channels of a cell (MSE), the same optimiser, flips and budget;
* layers: the spatial maximum of conv1..conv5 (post-ReLU, pre-BN) of the source encoder.

Budget: ``steps`` batches of ``batch_size``, or with ``steps: null`` ``epochs`` x (items // batch).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch

from cellbench.config import ConfigError, positive
from cellbench.crops import Crops
from cellbench.models import ConvAutoencoder, PairedCellInpainting
from cellbench.training.augment import random_flips
from cellbench.training.device import autocast, prepare_model, seed_everything, to_device
from cellbench.training.distributed import current
from cellbench.training.embed import embed_crops
from cellbench.training.loops import Progress, batches as shuffled_batches, optimiser_step
from cellbench.training.preprocess import minmax_per_crop

from ._common import CoosTrainingCells, NetworkConfig, Representation, feature_tables, model_artefact, training_rows

log = logging.getLogger(__name__)
preprocess = minmax_per_crop


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig(NetworkConfig, CoosTrainingCells):
    """``representation.autoencoder``: the PCI paper's baseline, PCI's optimiser and budget."""

    batch_size: int
    steps: int | None
    epochs: int
    lr: float
    beta1: float

    def check(self, path: str) -> None:
        NetworkConfig.check(self, path)
        positive(path, batch_size=self.batch_size, epochs=self.epochs, lr=self.lr)
        if self.steps is not None:
            positive(path, steps=self.steps)
        if not 0 <= self.beta1 < 1:
            raise ConfigError(f"{path}.beta1: must be in [0, 1), got {self.beta1}")


@dataclasses.dataclass(frozen=True)
class PCIConfig(AutoencoderConfig):
    """``representation.pci``."""

    protein_channel: int
    structure_channels: tuple[int, ...]
    pair_by: tuple[str, ...]
    min_cells_per_group: int

    def check(self, path: str) -> None:
        AutoencoderConfig.check(self, path)
        if not self.structure_channels:
            raise ConfigError(f"{path}.structure_channels: at least one channel expected")
        if not self.pair_by:
            raise ConfigError(f"{path}.pair_by: at least one metadata column expected")


def pci_groups(groups: np.ndarray, min_cells: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(eligible, inverse, members)``: cells whose group (well) has >= ``min_cells`` cells (the
    seed drops wells with <= 5 cells), each cell's group code and each group's member indices."""
    codes, inverse = np.unique(groups, return_inverse=True)
    members = {g: np.flatnonzero(inverse == g) for g in range(len(codes))}
    keep = [m for m in members.values() if len(m) >= max(2, min_cells)]
    if not keep:
        raise ValueError(f"paired cell inpainting: no group (well) has at least {max(2, min_cells)} cells")
    return np.sort(np.concatenate(keep)), inverse, members


def sample_partners(a: np.ndarray, inverse: np.ndarray, members: dict, rng: np.random.Generator) -> np.ndarray:
    """For each cell in ``a``, a partner drawn uniformly from its own group, never itself."""
    out = np.empty_like(a)
    for k, i in enumerate(a):
        m = members[inverse[i]]
        j = m[rng.integers(len(m) - 1)]
        out[k] = j if j != i else m[-1]  # skip i: the last member stands in for it
    return out


def schedule(model: torch.nn.Module, config: AutoencoderConfig, n_items: int) -> tuple[torch.optim.Optimizer, int, int]:
    """PCI's optimiser and budget, shared by its autoencoder baseline: Adam(lr, beta1) and
    ``steps`` (or ``epochs`` x items // batch) batches of ``batch_size``."""
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, 0.999))
    batch = min(config.batch_size, n_items)
    steps = config.steps or config.epochs * (n_items // batch)
    return opt, batch, steps


def train_pci(images: np.ndarray, groups: np.ndarray, config: PCIConfig, device: torch.device):
    """Train PCI on preprocessed ``images``; ``groups`` is each cell's well. Returns ``(model, history)``."""
    rng = seed_everything(config.seed)
    protein, structure = config.protein_channel, list(config.structure_channels)
    eligible, inverse, members = pci_groups(groups, config.min_cells_per_group)
    model = prepare_model(PairedCellInpainting(images.shape[1], len(structure), 1, config.width), device)
    opt, batch, steps = schedule(model, config, len(eligible))
    ctx = current()  # torchrun: each process trains on its slice of every global batch
    net = ctx.wrap(model, device)
    history = {"train_loss": []}
    order = shuffled_batches(len(eligible), batch, rng)
    progress = Progress("PCI", steps, batch)
    model.train()
    for step in range(1, steps + 1):
        a = eligible[next(order)]
        b = sample_partners(a, inverse, members, rng)
        xa = ctx.shard(random_flips(torch.from_numpy(images[a]), rng))
        xb = ctx.shard(random_flips(torch.from_numpy(images[b]), rng))
        with progress.counting():
            with autocast(device):
                pred = net(to_device(xa, device), to_device(xb[:, structure], device)).float()
            loss = torch.mean((pred - to_device(xb[:, protein:protein + 1], device)) ** 2)
            optimiser_step(opt, loss)
        history["train_loss"].append((step, float(loss.detach())))
        progress.update(step, float(loss.detach()))
        progress.snapshot(step, model)
    history.update(progress.history(steps))
    return model, history


def train_autoencoder(images: np.ndarray, config: AutoencoderConfig, device: torch.device):
    """Train the autoencoder baseline on preprocessed ``images``. Returns ``(model, history)``."""
    rng = seed_everything(config.seed)
    model = prepare_model(ConvAutoencoder(images.shape[1], config.width), device)
    opt, batch, steps = schedule(model, config, len(images))
    ctx = current()
    net = ctx.wrap(model, device)
    history = {"train_loss": []}
    order = shuffled_batches(len(images), batch, rng)
    progress = Progress("Autoencoder", steps, batch)
    model.train()
    for step in range(1, steps + 1):
        x = to_device(ctx.shard(random_flips(torch.from_numpy(images[next(order)]), rng)), device)
        with progress.counting():
            with autocast(device):
                loss = torch.mean((net(x).float() - x.float()) ** 2)
            optimiser_step(opt, loss)
        history["train_loss"].append((step, float(loss.detach())))
        progress.update(step, float(loss.detach()))
        progress.snapshot(step, model)
    history.update(progress.history(steps))
    return model, history


def _encoder_layers(model, crops: Crops, config: AutoencoderConfig, device) -> dict[str, np.ndarray]:
    model.eval()
    return embed_crops(model.embed, crops, preprocess, device, config.embed_batch_size, config.num_workers)


def well_groups(metadata, pair_by, path: str = "representation.pci.pair_by") -> np.ndarray:
    """Each cell's pairing group: the ``pair_by`` columns joined (plate / well by default)."""
    pair_by = list(pair_by)
    missing = [c for c in pair_by if c not in metadata.columns]
    if missing:
        raise ValueError(f"{path}: column(s) {missing} not in the crop metadata "
                         f"(has {list(metadata.columns)}); PCI pairs cells of the same well/image")
    return metadata[pair_by].astype(str).agg("/".join, axis=1).to_numpy()


def represent(crops: Crops, config: AutoencoderConfig, device: torch.device) -> Representation:
    """PCI (a :class:`PCIConfig`) or the autoencoder (an :class:`AutoencoderConfig`): train on the
    Training cells, then the encoder's conv1..conv5 features of every cell."""
    cells = crops.take(training_rows(crops.metadata, config.train_splits, config.max_train_cells, config.seed))
    images = preprocess(np.asarray(cells.images))
    if isinstance(config, PCIConfig):
        groups = well_groups(cells.metadata, config.pair_by)
        model, history = train_pci(images, groups, config, device)
        name, prefix = "pci", "PCI"
        arch = {"x_channels": int(crops.shape[1]), "y_channels": len(config.structure_channels), "out_channels": 1,
                "width": config.width}
    else:
        model, history = train_autoencoder(images, config, device)
        name, prefix = "autoencoder", "AE"
        arch = {"in_channels": int(crops.shape[1]), "width": config.width}
    tables = feature_tables(crops.metadata, _encoder_layers(model, crops, config, device), prefix)
    return Representation(tables, model, config, history, model_artefact(name, model, arch))
