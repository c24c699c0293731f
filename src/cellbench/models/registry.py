"""Models by name, so parameters (``representation.<name>.model``) choose the architecture."""

from __future__ import annotations

from torch import nn

from .deeploc import DeepLoc
from .pci import ConvAutoencoder, PairedCellInpainting
from .resnet import ResNet18
from .vae import VAEPlus
from .vgg16 import VGG16
from .vit import ViT

MODELS: dict[str, type[nn.Module]] = {
    "deeploc": DeepLoc,
    "pci": PairedCellInpainting,
    "autoencoder": ConvAutoencoder,
    "vgg16": VGG16,
    "resnet18": ResNet18,
    "vaeplus": VAEPlus,
    "vit": ViT,
}


def build_model(name: str, **kwargs) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    return MODELS[name](**kwargs)
