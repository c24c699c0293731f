"""Training loops, samplers, schedules, preprocessing and batched embedding for the torch models."""

from .device import autocast, resolve_device, seed_everything
from .embed import embed_crops
from .loops import train_autoencoder, train_deeploc, train_pci
from .preprocess import minmax_per_crop, percentile_stretch, to_vgg_rgb

__all__ = ["autocast", "embed_crops", "minmax_per_crop", "percentile_stretch", "resolve_device",
           "seed_everything", "to_vgg_rgb", "train_autoencoder", "train_deeploc", "train_pci"]
