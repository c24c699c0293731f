"""Torch models of the seeds, in plain torch (no torchvision / timm), with a registry by name."""

from .deeploc import DeepLoc
from .pci import ConvAutoencoder, PairedCellInpainting, SourceEncoder
from .registry import MODELS, build_model
from .resnet import ResNet18, SequenceClassifier
from .vae import VAEPlus, gamma_schedule, kl_divergence
from .vgg16 import VGG16, vgg16_state_dict_keys

__all__ = ["MODELS", "ConvAutoencoder", "DeepLoc", "PairedCellInpainting", "ResNet18", "SequenceClassifier",
           "SourceEncoder", "VAEPlus", "VGG16", "gamma_schedule", "kl_divergence",
           "build_model", "vgg16_state_dict_keys"]
