"""The hand-crafted baseline: COOS-7 Texture (Haralick at several scales + intensity, seed 000
section 3.2) and its per-channel version for treatment screens; budget-free, no training."""

from __future__ import annotations

import dataclasses

import pandas as pd

from cellbench.config import Config, ConfigError, positive
from cellbench.crops import Crops
from cellbench.features import coos_texture_features, multichannel_texture_features

from ._common import Representation


@dataclasses.dataclass(frozen=True)
class TextureConfig(Config):
    """``representation.texture``: GLCM offsets, grey levels, cells per batch, threads."""

    distances: tuple[int, ...]
    levels: int
    batch_size: int
    n_jobs: int | None

    def check(self, path: str) -> None:
        positive(path, levels=self.levels, batch_size=self.batch_size)
        if not self.distances or min(self.distances) < 1:
            raise ConfigError(f"{path}.distances: positive pixel offsets expected, got {list(self.distances)}")


@dataclasses.dataclass(frozen=True)
class ChannelTextureConfig(TextureConfig):
    """``treatments.texture``: the same per named channel."""

    channel_names: tuple[str, ...]


def represent(crops: Crops, config: TextureConfig, device=None) -> Representation:
    """One layer, ``haralick``, computed batch by batch (``device`` is unused: numba on the CPU)."""
    parts = []
    for _, images in crops.batches(config.batch_size):
        if isinstance(config, ChannelTextureConfig):
            parts.append(multichannel_texture_features(images, config.channel_names, config.distances, config.levels,
                                                       config.n_jobs))
        else:
            parts.append(coos_texture_features(images, distances=config.distances, levels=config.levels,
                                               n_jobs=config.n_jobs))
    table = pd.concat([crops.metadata.reset_index(drop=True), pd.concat(parts, ignore_index=True)], axis=1)
    return Representation({"haralick": table}, None, config, {}, None)
