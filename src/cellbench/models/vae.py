"""AE / VAE / VAE+ of Lafarge et al. 2019 (cytoVAE; METHODS.md section 3), in plain torch.

Input 68 x 68 x C (each image and channel divided by its maximum). Every convolution is 5 x 5,
VALID, 32 filters, no bias, followed by BatchNorm (eps 1e-8, EMA 0.9 -> torch momentum 0.1) and
LeakyReLU(0.01).

* Encoder: 68 -conv-> 64 -pool-> 32 -conv-> 28 -pool-> 14 -conv-> 10 -pool-> 5, then a 5 x 5 conv
  to 1 x 1 x 512 with BatchNorm and no activation, split into mu (256) and log-variance (256);
  z = mu + eps * exp(logvar / 2); the embedding is mu.
* Decoder: z (1 x 1) -pad 4, conv-> 5 -resize-> 10 -pad 4, conv-> 14 -resize-> 28 -pad 4, conv-> 32
  -resize-> 64 -pad 4, conv-> 68 x 68 x 32; a 1 x 1 "reconstructor" conv to C channels (BN +
  LeakyReLU) makes the image (nearest-neighbour resizes).
* Discriminator: the encoder's trunk (68 -> 5), a 5 x 5 conv to 1 x 1 x 64 and a 1 x 1 conv to one
  logit with BatchNorm; its hidden layers 0..3 give the learned-similarity losses of VAE+.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

BN = {"eps": 1e-8, "momentum": 0.1}
FILTERS = 32


def _block(c_in: int, c_out: int, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, 5, bias=False), nn.BatchNorm2d(c_out, **BN)]
    if act:
        layers.append(nn.LeakyReLU(0.01))
    return nn.Sequential(*layers)


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):  # normal, std sqrt(2 / (fan_in + fan_out))
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            nn.init.normal_(m.weight, 0.0, float(np.sqrt(2.0 / (fan_in + fan_out))))


def _filters(width: float) -> int:
    if not width > 0:
        raise ValueError(f"VAE width must be > 0, got {width}")
    return max(1, int(round(FILTERS * width)))


class VAEEncoder(nn.Module):
    def __init__(self, in_channels: int = 3, latent: int = 256, width: float = 1.0):
        super().__init__()
        f = _filters(width)
        self.convs = nn.ModuleList([_block(in_channels, f), _block(f, f), _block(f, f)])
        self.pool = nn.MaxPool2d(2)
        self.head = _block(f, 2 * latent, act=False)
        self.latent = latent
        _init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for conv in self.convs:
            x = self.pool(conv(x))
        h = self.head(x).flatten(1)
        return h[:, :self.latent], h[:, self.latent:]


class VAEDecoder(nn.Module):
    def __init__(self, out_channels: int = 3, latent: int = 256, width: float = 1.0):
        super().__init__()
        f = _filters(width)
        self.convs = nn.ModuleList([_block(latent, f)] + [_block(f, f) for _ in range(3)])
        self.reconstructor = nn.Sequential(nn.Conv2d(f, out_channels, 1, bias=False),
                                           nn.BatchNorm2d(out_channels, **BN), nn.LeakyReLU(0.01))
        self.sizes = (10, 28, 64)
        _init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z[:, :, None, None]
        for i, conv in enumerate(self.convs):
            x = conv(nn.functional.pad(x, (4, 4, 4, 4)))
            if i < len(self.sizes):
                x = nn.functional.interpolate(x, size=self.sizes[i], mode="nearest")
        return self.reconstructor(x)


class Discriminator(nn.Module):
    def __init__(self, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        f, h = _filters(width), max(1, int(round(64 * width)))
        self.convs = nn.ModuleList([_block(in_channels, f), _block(f, f), _block(f, f)])
        self.pool = nn.MaxPool2d(2)
        self.head = _block(f, h)
        self.logit = nn.Sequential(nn.Conv2d(h, 1, 1, bias=False), nn.BatchNorm2d(1, **BN))
        _init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(logit per sample, [hidden layer 0..3])``."""
        hidden = []
        for conv in self.convs:
            x = conv(x)
            hidden.append(x)
            x = self.pool(x)
        x = self.head(x)
        hidden.append(x)
        return self.logit(x).sum(dim=(1, 2, 3)), hidden


class VAEPlus(nn.Module):
    """Encoder, decoder and (for VAE+) discriminator; ``embed`` gives mu. ``width`` scales the
    32 filters of every convolution (and the discriminator's 64); 1.0 is the published model."""

    def __init__(self, in_channels: int = 3, latent: int = 256, discriminator: bool = True, width: float = 1.0):
        super().__init__()
        self.encoder = VAEEncoder(in_channels, latent, width)
        self.decoder = VAEDecoder(in_channels, latent, width)
        self.discriminator = Discriminator(in_channels, width) if discriminator else None

    def forward(self, x: torch.Tensor, sample: bool = True):
        mu, logvar = self.encoder(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        return self.decoder(z), mu, logvar

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"mu": self.encoder(x)[0]}


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """0.5 * sum(exp(logvar) + mu^2 - 1 - logvar) per sample, averaged over the batch."""
    return (0.5 * (torch.exp(logvar) + mu**2 - 1.0 - logvar).sum(dim=1)).mean()


def pixel_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """0.5 * sum((x - x_hat)^2) per sample, averaged over the batch."""
    return (0.5 * ((x - x_hat) ** 2).flatten(1).sum(dim=1)).mean()


def gamma_schedule(step: int, layer: int, delay: float = 2500.0, slope: float = 2500.0) -> float:
    """Weight of discriminator layer ``layer`` at ``step``: clip((step - delay (k + 1)) / slope, 0, 1)."""
    return float(np.clip((step - delay * (layer + 1)) / slope, 0.0, 1.0))


def similarity_loss(d_real: list[torch.Tensor], d_fake: list[torch.Tensor], step: int, image_size: int,
                    channels: int, delay: float = 2500.0, slope: float = 2500.0) -> torch.Tensor:
    """Learned similarity: sum_k gamma_k(step) * 0.5 * (S * S * C) * mean((D_k(x) - D_k(x_hat))^2)."""
    scale = 0.5 * image_size * image_size * channels
    total = d_real[0].new_zeros(())
    for k, (a, b) in enumerate(zip(d_real, d_fake)):
        g = gamma_schedule(step, k, delay, slope)
        if g > 0:
            total = total + g * scale * ((a - b) ** 2).flatten(1).mean(dim=1).mean()
    return total
