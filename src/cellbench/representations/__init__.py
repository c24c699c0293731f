"""One module per representation method, each with its frozen configuration (``from_params``
rejects unknown keys), its preprocessing, training and embedding, and one entry point
``represent(crops, config, device) -> Representation(layers, model, config, history, artefact)``:

* ``texture``: COOS Texture / per-channel Haralick (hand-crafted baseline);
* ``deeploc``: DeepLoc (COOS-7, seed 000);
* ``pci``: paired cell inpainting and its autoencoder baseline (seed 002);
* ``vgg16``: ImageNet VGG16 transfer (seed 000);
* ``weak``: weakly supervised ResNet18, plain / mixup / GRU (seed 004);
* ``vae``: AE / VAE / VAE+ (seed 003);
* ``coda``: the CODA family — DINO foundation, dual model, supervised ViT, ODA / CODA, TTT-MAE (seed 001).

``METHODS`` maps a method name to ``(module, configuration class)``.
"""

from __future__ import annotations

from . import coda, deeploc, pci, texture, vae, vgg16, weak
from ._common import Representation, rebuild

METHODS = {
    "texture": (texture, texture.TextureConfig),
    "treatment_texture": (texture, texture.ChannelTextureConfig),
    "deeploc": (deeploc, deeploc.DeepLocConfig),
    "pci": (pci, pci.PCIConfig),
    "autoencoder": (pci, pci.AutoencoderConfig),
    "vgg16": (vgg16, vgg16.VGG16Config),
    "weak": (weak, weak.WeakConfig),
    "vae": (vae, vae.VAEConfig),
}

TRAINED = ("deeploc", "pci", "autoencoder", "weak", "vae")  # trained here: cached by configuration + data + code

__all__ = ["METHODS", "Representation", "coda", "deeploc", "pci", "rebuild", "texture", "vae", "vgg16", "weak"]


def run(method: str, crops, params, path: str) -> Representation:
    """Validate ``params`` (the section at ``path``) as ``method``'s configuration and run its
    ``represent`` on the device the configuration names. A trained method is taken from the model
    cache when the same configuration, crops and code were trained before
    (:mod:`cellbench.training.cache`)."""
    from cellbench.training.device import resolve_device

    if method not in METHODS:
        raise ValueError(f"unknown representation method {method!r}; known {sorted(METHODS)}")
    module, cls = METHODS[method]
    config = cls.from_params(params, path)
    device = resolve_device(getattr(config, "device", "cpu"))
    if method not in TRAINED:
        return module.represent(crops, config, device)
    from cellbench.training.cache import cached_represent

    return cached_represent(method, config, crops, lambda: module.represent(crops, config, device))
