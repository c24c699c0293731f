"""Generic training machinery shared by every method: device handling (bf16 autocast on CUDA,
channels-last), seeding, augmentation, batching, progress reports, preprocessing and batched
embedding. The methods themselves live in ``cellbench.representations``."""

from .device import autocast, resolve_device, seed_everything
from .embed import embed_crops
from .loops import Progress, batches, optimiser_step
from .preprocess import minmax_per_crop, percentile_stretch, to_vgg_rgb

__all__ = ["Progress", "autocast", "batches", "embed_crops", "minmax_per_crop", "optimiser_step", "percentile_stretch",
           "resolve_device", "seed_everything", "to_vgg_rgb"]
