"""AE / VAE / VAE+ of Lafarge et al. 2019 (seed 003, METHODS.md 3), unsupervised on every cell.

* preprocessing: each crop and channel divided by its maximum and zero-padded to ``input_size``
  (68 x 68 from 64-px crops; ``max_normalise``);
* training: encoder and decoder by Adam(lr, eps 1e-7) on pixel + learned similarity (VAE+) +
  beta KL (beta 0 / 1 / 2 for AE / VAE / VAE+); the discriminator by SGD(lr_discriminator, momentum
  0.9) on real vs reconstructed; every kernel decayed by (1 - kernel_decay) per step; each step
  draws one batch to reconstruct and an independent real batch for the discriminator, whose
  BatchNorm sees the two separately (the reference normalises them together);
* layer: ``mu``.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch
from torch import nn

from cellbench.config import ConfigError, non_negative, one_of, positive
from cellbench.crops import Crops
from cellbench.models.vae import VAEPlus, kl_divergence, pixel_loss, similarity_loss
from cellbench.training.device import autocast, prepare_model, seed_everything, to_device
from cellbench.training.embed import embed_crops
from cellbench.training.loops import Progress
from cellbench.training.preprocess import max_normalise

from ._common import NetworkConfig, Representation, feature_tables, model_artefact, subsample

log = logging.getLogger(__name__)
VARIANTS = {"ae": 0.0, "vae": 1.0, "vaeplus": 2.0}  # variant -> beta of the KL term


@dataclasses.dataclass(frozen=True)
class VAEConfig(NetworkConfig):
    """``treatments.vae.<ae|vae|vaeplus>``."""

    variant: str
    steps: int
    batch_size: int
    lr: float
    lr_discriminator: float
    latent: int
    input_size: int
    gamma_delay: float
    gamma_slope: float
    kernel_decay: float
    max_train_cells: int | None

    def check(self, path: str) -> None:
        NetworkConfig.check(self, path)
        one_of(path, "variant", self.variant, VARIANTS)
        positive(path, steps=self.steps, batch_size=self.batch_size, lr=self.lr, latent=self.latent,
                 input_size=self.input_size, gamma_slope=self.gamma_slope)
        non_negative(path, lr_discriminator=self.lr_discriminator, gamma_delay=self.gamma_delay,
                     kernel_decay=self.kernel_decay)
        if self.input_size < 68:
            raise ConfigError(f"{path}.input_size: the model needs at least 68 px, got {self.input_size}")

    @property
    def beta(self) -> float:
        return VARIANTS[self.variant]


def preprocess(images: np.ndarray, size: int) -> np.ndarray:
    return max_normalise(images, size)


def train(images: np.ndarray, config: VAEConfig, device: torch.device):
    """Train on preprocessed ``images``. Returns ``(model, history)``."""
    rng = seed_everything(config.seed)
    beta = config.beta
    model = prepare_model(VAEPlus(images.shape[1], config.latent, config.variant == "vaeplus", config.width), device)
    enc_dec = list(model.encoder.parameters()) + list(model.decoder.parameters())
    opt = torch.optim.Adam(enc_dec, lr=config.lr, eps=1e-7)
    opt_d = (torch.optim.SGD(model.discriminator.parameters(), lr=config.lr_discriminator, momentum=0.9)
             if model.discriminator is not None else None)
    steps, batch = config.steps, min(config.batch_size, len(images))
    delay, slope = config.gamma_delay, config.gamma_slope
    decay = 1.0 - config.kernel_decay
    size = images.shape[-1]
    history = {"train_loss": [], "pixel_loss": [], "kl": []}
    progress = Progress(config.variant.upper(), steps, batch)
    model.train()
    for step in range(1, steps + 1):
        x = to_device(torch.from_numpy(images[rng.integers(len(images), size=batch)]), device)
        with progress.counting():
            with autocast(device):
                x_hat, mu, logvar = model(x)
                pix, kl = pixel_loss(x.float(), x_hat.float()), kl_divergence(mu.float(), logvar.float())
                loss = pix + beta * kl
                if model.discriminator is not None:
                    _, h_real = model.discriminator(x)
                    _, h_fake = model.discriminator(x_hat)
                    loss = loss + similarity_loss([h.float() for h in h_real], [h.float() for h in h_fake], step, size,
                                                  images.shape[1], delay, slope)
            opt.zero_grad(set_to_none=True)
            if opt_d is not None:
                opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if opt_d is not None:  # the discriminator learns only from real vs reconstructed
                opt_d.zero_grad(set_to_none=True)
                real = to_device(torch.from_numpy(images[rng.integers(len(images), size=batch)]), device)
                with autocast(device):
                    logit_real, _ = model.discriminator(real)
                    logit_fake, _ = model.discriminator(x_hat.detach())
                    d_loss = (nn.functional.binary_cross_entropy_with_logits(logit_real.float(), torch.ones_like(logit_real.float()))
                              + nn.functional.binary_cross_entropy_with_logits(logit_fake.float(), torch.zeros_like(logit_fake.float())))
                d_loss.backward()
                opt_d.step()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Conv2d):
                    m.weight.mul_(decay)
        history["train_loss"].append((step, float(loss.detach())))
        history["pixel_loss"].append((step, float(pix.detach())))
        history["kl"].append((step, float(kl.detach())))
        progress.update(step, float(loss.detach()))
        progress.snapshot(step, model)
    history.update(progress.history(steps))
    return model, history


def represent(crops: Crops, config: VAEConfig, device: torch.device) -> Representation:
    """Train on (a seeded sample of ``max_train_cells`` of) every cell, no label used; layer ``mu``."""
    rows = subsample(len(crops), config.max_train_cells, config.seed)
    model, history = train(preprocess(np.asarray(crops.take(rows).images), config.input_size), config, device)
    model.eval()
    feats = embed_crops(model.embed, crops, lambda a: preprocess(a, config.input_size), device,
                        config.embed_batch_size, config.num_workers)
    arch = {"in_channels": int(crops.shape[1]), "latent": config.latent, "discriminator": config.variant == "vaeplus",
            "width": config.width}
    return Representation(feature_tables(crops.metadata, feats, config.variant.upper()), model, config, history,
                          model_artefact("vaeplus", model, arch, input_size=config.input_size,
                                                         variant=config.variant))
