"""ImageNet VGG16 transfer (COOS-7 seed 000, METHODS.md 1.3): max-pooled conv3_3, conv4_1 and
conv4_2 of the protein channel shown as 8-bit RGB (min-max per crop, repeated, ImageNet-normalised).

Needs ``weights``: a torchvision-layout ``vgg16`` state dict on disk (loaded with
``weights_only=True``); with ``weights: null`` the representation is left out of the results and the
run says so (random weights are never reported as ImageNet features). A path that does not exist
is an error.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from cellbench.config import Config, ConfigError, positive
from cellbench.crops import Crops
from cellbench.models import VGG16
from cellbench.models.vgg16 import _conv_names
from cellbench.training.device import prepare_model
from cellbench.training.embed import embed_crops
from cellbench.training.preprocess import to_vgg_rgb

from ._common import Representation, check_device, feature_tables

log = logging.getLogger(__name__)
LAYERS = tuple(_conv_names())


@dataclasses.dataclass(frozen=True)
class VGG16Config(Config):
    """``representation.vgg16``."""

    weights: str | None
    device: str
    channel: int
    layers: tuple[str, ...]
    embed_batch_size: int
    num_workers: int

    def check(self, path: str) -> None:
        positive(path, embed_batch_size=self.embed_batch_size)
        if self.weights is not None and not Path(self.weights).is_file():
            raise ConfigError(f"{path}.weights: no file {self.weights!r} (a torchvision-layout vgg16 state dict); "
                              "set null to leave VGG16 out")
        bad = [name for name in self.layers if name not in LAYERS]
        if bad:
            raise ConfigError(f"{path}.layers: unknown layer(s) {bad}; known {list(LAYERS)}")
        check_device(path, self.device)


def load(weights: str) -> VGG16:
    """VGG16 with the ImageNet weights of a torchvision-layout state dict (strict key check)."""
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"VGG16 weights {weights}: expected a state dict, found a {type(state).__name__}")
    state = state.get("state_dict", state)
    model = VGG16()
    model.load_state_dict(state, strict=True)
    return model


def represent(crops: Crops, config: VGG16Config, device: torch.device) -> Representation:
    """One feature table per layer, or no table at all when no weights file is configured."""
    if config.weights is None:
        log.warning("VGG16 left out of the results: no ImageNet weights file (representation.vgg16.weights=null). "
                    "Save torchvision's vgg16 state_dict to a file and pass its path.")
        return Representation({}, None, config, {}, None)
    model = prepare_model(load(config.weights), device).eval()
    feats = embed_crops(lambda x: model.embed(x, config.layers), crops, lambda a: to_vgg_rgb(a, config.channel),
                        device, config.embed_batch_size, config.num_workers)
    return Representation(feature_tables(crops.metadata, feats, "VGG16"), model, config, {}, None)
