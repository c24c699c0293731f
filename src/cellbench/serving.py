"""A trained feature extractor applied to raw crops: the inference step of a registered model.

``extract_features(artefact, crops)`` rebuilds the network of a saved artefact (what
``TorchModelDataset`` holds), applies the method's own preprocessing to the raw crops (so a
served model takes crops as they come from a microscope or the crop store) and returns one row of
features per crop:

* ``deeploc``: per crop and channel percentile stretch, then the class probabilities averaged over
  the five test crops (``Prob_<class>``) and the centre crop's fc2 (``DeepLoc_fc2_<i>``);
* ``pci`` / ``autoencoder``: per crop and channel min-max to [0, 1], then the source encoder's
  conv1..conv5 maxima (``PCI_conv3_<i>``, ``AE_conv5_<i>``, ...);
* ``resnet18`` (the weakly supervised ResNet18, seed 004): per crop and channel scaled by half the
  maximum, then the spatial means of res3, res4a, res4 and res5 (``ResNet18_res4a_<i>``, ...);
* ``vaeplus`` (AE / VAE / VAE+, seed 003): per crop and channel divided by its maximum and
  zero-padded to the network's input (crops no larger than it), then the encoder's mean ``mu``
  (``VAEPLUS_mu_<i>``, ``VAE_mu_<i>``, named by the variant);
* ``coda_dual`` (the CODA dual model, seed 001, original or adapted): max-normalised, centre crop,
  self-normalised, then the class probabilities (``Prob_<class>``).

Crops are ``N x C x H x W`` (any numeric dtype); a channel count other than the network's, crops
smaller than its input, or an empty batch is an error naming what was expected.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

SUPPORTED = ("deeploc", "pci", "autoencoder", "resnet18", "vaeplus", "coda_dual")


def _check(crops: np.ndarray, channels: int, min_size: int, name: str) -> None:
    if crops.ndim != 4:
        raise ValueError(f"{name}: crops must be N x C x H x W, got an array of shape {crops.shape}")
    if len(crops) == 0:
        raise ValueError(f"{name}: no crops given")
    if crops.shape[1] != channels:
        raise ValueError(f"{name}: the model takes {channels} channel(s), the crops have {crops.shape[1]} "
                         f"(shape {crops.shape})")
    if min(crops.shape[2:]) < min_size:
        raise ValueError(f"{name}: the model needs crops of at least {min_size} x {min_size} px, got "
                         f"{crops.shape[2]} x {crops.shape[3]}")


@torch.no_grad()
def extract_features(artefact: dict, crops, batch_size: int = 256) -> pd.DataFrame:
    """One row of features per crop (module doc), float64, in the crops' order."""
    from cellbench.representations import deeploc, pci, vae, weak
    from cellbench.representations._common import rebuild

    name = artefact.get("model") if isinstance(artefact, dict) else None
    if name not in SUPPORTED:
        raise ValueError(f"extract_features: model {name!r} cannot be served; supported: {list(SUPPORTED)}")
    x = np.asarray(crops)
    if name == "coda_dual":  # a task model: class probabilities
        from cellbench.adaptation.online import predict_table

        return predict_table(artefact, x, batch_size)
    config = artefact["config"]
    model = rebuild(artefact)
    if name == "deeploc":
        crop = int(config["input_size"])
        _check(x, int(config["in_channels"]), crop, name)
        probs, feats = deeploc.predict(model, deeploc.preprocess(x.astype(np.float32)), torch.device("cpu"), crop,
                                       batch_size)
        classes = artefact.get("classes", list(range(probs.shape[1])))
        table = np.concatenate([probs, feats], axis=1)
        columns = [f"Prob_{c}" for c in classes] + [f"DeepLoc_fc2_{i}" for i in range(feats.shape[1])]
        return pd.DataFrame(table.astype(np.float64), columns=columns)
    channels = int(config["x_channels"] if name == "pci" else config["in_channels"])
    if name == "vaeplus":
        if "input_size" not in artefact:
            raise ValueError("extract_features: this vaeplus artefact predates serving (no input_size); retrain it")
        size = int(artefact["input_size"])
        _check(x, channels, 1, name)
        if max(x.shape[2:]) > size:
            raise ValueError(f"{name}: the model takes crops of at most {size} x {size} px (zero-padded), got "
                             f"{x.shape[2]} x {x.shape[3]}")
        prefix, prep = str(artefact.get("variant", "vaeplus")).upper(), (lambda a: vae.preprocess(a, size))
    elif name == "resnet18":
        _check(x, channels, 32, name)
        prefix, prep = "ResNet18", weak.preprocess
    else:
        _check(x, channels, 32, name)
        prefix, prep = ("PCI" if name == "pci" else "AE"), pci.preprocess
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(x), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(prep(x[start:start + batch_size].astype(np.float32))))
        for layer, value in model.embed(batch).items():
            parts.setdefault(layer, []).append(value.float().numpy())
    frames = [pd.DataFrame(np.concatenate(v).astype(np.float64),
                           columns=[f"{prefix}_{layer}_{i}" for i in range(np.concatenate(v).shape[1])])
              for layer, v in parts.items()]
    return pd.concat(frames, axis=1)
