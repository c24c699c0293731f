"""Representation nodes: crops in, ``{layer: feature table}`` out (one Parquet per layer); the
learned ones also return their weights and training history. Nodes unpack parameters and call the
library (``cellbench.features``, ``cellbench.models``, ``cellbench.training``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cellbench.crops import Crops
from cellbench.features import coos_texture_features
from cellbench.models import VGG16
from cellbench.training import (
    embed_crops,
    minmax_per_crop,
    percentile_stretch,
    resolve_device,
    to_vgg_rgb,
    train_autoencoder,
    train_deeploc,
    train_pci,
)
from cellbench.training.augment import five_crops
from cellbench.training.device import prepare_model

from .._outputs import feature_tables, metric_histories, model_artefact

log = logging.getLogger(__name__)


def texture_features(crops: Crops, params: dict) -> dict[str, pd.DataFrame]:
    """The COOS Texture representation (Haralick at five scales + intensity), read in batches."""
    parts = []
    for rows, images in crops.batches(int(params.get("batch_size", 2048))):
        parts.append(
            coos_texture_features(
                images,
                distances=tuple(params.get("distances", (1, 2, 4, 8, 16))),
                levels=int(params.get("levels", 256)),
                n_jobs=params.get("n_jobs"),
            )
        )
    feats = pd.concat(parts, ignore_index=True)
    table = pd.concat([crops.metadata.reset_index(drop=True), feats], axis=1)
    return {"haralick": table}


# -- shared helpers ---------------------------------------------------------------------------------
def _training_rows(crops: Crops, params: dict) -> np.ndarray:
    splits = list(params.get("train_splits", ["train"]))
    rows = np.flatnonzero(crops.metadata["Metadata_Split"].isin(splits).to_numpy())
    if len(rows) == 0:
        raise ValueError(f"no crops in the training split(s) {splits} (column Metadata_Split)")
    limit = params.get("max_train_cells")
    if limit and len(rows) > int(limit):
        rows = np.sort(np.random.default_rng(int(params.get("seed", 0))).choice(rows, int(limit), replace=False))
    return rows


# -- DeepLoc --------------------------------------------------------------------------------------
def deeploc_representation(crops: Crops, params: dict):
    """Train DeepLoc on Training, then per cell: 5-crop class probabilities (layer ``end_to_end``)
    and fc2 features of the centre crop (layer ``fc2``)."""
    device = resolve_device(params.get("device", "auto"))
    rows = _training_rows(crops, params)
    train = crops.take(rows)
    labels = train.metadata["Metadata_Label"].to_numpy()
    model, classes, history, val_idx = train_deeploc(percentile_stretch(np.asarray(train.images)), labels, params,
                                                     int(params.get("seed", 0)), device)
    crop = int(params.get("crop", 60))

    def embed(x):
        views = five_crops(x, crop)
        probs = sum(torch.softmax(model(v).float(), dim=1) for v in views) / len(views)
        return {"end_to_end": probs, "fc2": model.embed(views[0])["fc2"]}

    model.eval()
    layers = embed_crops(embed, crops, percentile_stretch, device, int(params.get("embed_batch_size", 512)),
                         int(params.get("num_workers", 0)))
    meta = crops.metadata.copy()
    meta["Metadata_Validation"] = False
    meta.loc[rows[val_idx], "Metadata_Validation"] = True  # held out of DeepLoc's training for model selection
    tables = feature_tables(meta, {"fc2": layers["fc2"]}, "DeepLoc")
    tables["end_to_end"] = pd.concat([meta.reset_index(drop=True),
                                      pd.DataFrame(layers["end_to_end"].astype(np.float64),
                                                   columns=[f"Prob_{c}" for c in classes])], axis=1)
    config = {"in_channels": int(crops.shape[1]), "n_classes": len(classes), "width": float(params.get("width", 1.0)),
              "input_size": crop}
    return tables, model_artefact("deeploc", model, config, classes=[int(c) for c in classes]), metric_histories("deeploc", history)


# -- paired cell inpainting and the autoencoder ---------------------------------------------------
def _encoder_layers(model, crops: Crops, params: dict, device) -> dict[str, np.ndarray]:
    model.eval()
    return embed_crops(model.embed, crops, minmax_per_crop, device, int(params.get("embed_batch_size", 256)),
                       int(params.get("num_workers", 0)))


def pci_representation(crops: Crops, params: dict):
    """Train paired cell inpainting on the Training cells (pairs within a well), then the spatial
    max of conv1..conv5 (post-ReLU, pre-BN) of the source encoder for every cell."""
    device = resolve_device(params.get("device", "auto"))
    rows = _training_rows(crops, params)
    train = crops.take(rows)
    pair_by = list(params.get("pair_by", ["Metadata_Plate", "Metadata_Well"]))
    missing = [c for c in pair_by if c not in train.metadata.columns]
    if missing:
        raise ValueError(f"representation.pci.pair_by: column(s) {missing} not in the crop metadata "
                         f"(has {[c for c in train.metadata.columns]}); PCI pairs cells of the same well/image")
    groups = train.metadata[pair_by].astype(str).agg("/".join, axis=1).to_numpy()
    model, history = train_pci(minmax_per_crop(np.asarray(train.images)), groups, params, int(params.get("seed", 0)),
                               device)
    tables = feature_tables(crops.metadata, _encoder_layers(model, crops, params, device), "PCI")
    config = {"x_channels": int(crops.shape[1]), "y_channels": len(params.get("structure_channels", [1])),
              "out_channels": 1, "width": float(params.get("width", 1.0))}
    return tables, model_artefact("pci", model, config), metric_histories("pci", history)


def autoencoder_representation(crops: Crops, params: dict):
    """Train the autoencoder baseline on the Training cells; encoder features as for PCI."""
    device = resolve_device(params.get("device", "auto"))
    train = crops.take(_training_rows(crops, params))
    model, history = train_autoencoder(minmax_per_crop(np.asarray(train.images)), params, int(params.get("seed", 0)),
                                       device)
    tables = feature_tables(crops.metadata, _encoder_layers(model, crops, params, device), "AE")
    config = {"in_channels": int(crops.shape[1]), "width": float(params.get("width", 1.0))}
    return tables, model_artefact("autoencoder", model, config), metric_histories("autoencoder", history)


# -- VGG16 transfer -------------------------------------------------------------------------------
def vgg16_representation(crops: Crops, params: dict) -> dict[str, pd.DataFrame]:
    """ImageNet VGG16 features (max-pooled conv3_3, conv4_1, conv4_2) of the protein channel as
    8-bit RGB. Needs ``weights``: a torchvision-layout ``vgg16`` state dict on disk; without one
    the representation is left out (never random weights reported as ImageNet features)."""
    weights = params.get("weights")
    if not weights or not Path(weights).is_file():
        log.warning("VGG16 left out of the results: no ImageNet weights file (representation.vgg16.weights=%r). "
                    "Save torchvision's vgg16 state_dict to a file and pass its path.", weights)
        return {}
    device = resolve_device(params.get("device", "auto"))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    model = VGG16()
    model.load_state_dict(state, strict=True)
    model = prepare_model(model, device).eval()
    layers = tuple(params.get("layers", ("conv3_3", "conv4_1", "conv4_2")))
    channel = int(params.get("channel", 0))
    feats = embed_crops(lambda x: model.embed(x, layers), crops, lambda a: to_vgg_rgb(a, channel), device,
                        int(params.get("embed_batch_size", 128)), int(params.get("num_workers", 0)))
    return feature_tables(crops.metadata, feats, "VGG16")
