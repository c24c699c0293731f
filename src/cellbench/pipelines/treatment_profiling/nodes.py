"""Nodes of the simulated treatment-profiling pipeline (library calls only)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellbench.crops import Crops
from cellbench.features import multichannel_texture_features
from cellbench.metadata import feature_columns
from cellbench.profiling import aggregate, mean_sd_profiles

from .._outputs import feature_tables, metric_histories, model_artefact


def treatment_texture(crops: Crops, params: dict) -> dict[str, pd.DataFrame]:
    """Per-channel Haralick + intensity features of every cell, read in batches."""
    names = tuple(params.get("channel_names", ("DNA", "Tubulin", "Actin")))
    parts = [multichannel_texture_features(images, names, tuple(params.get("distances", (1, 4))),
                                           int(params.get("levels", 64)), params.get("n_jobs"))
             for _, images in crops.batches(int(params.get("batch_size", 2048)))]
    return {"haralick": pd.concat([crops.metadata.reset_index(drop=True), pd.concat(parts, ignore_index=True)], axis=1)}


def cells_to_wells(features: dict, params: dict, summary: dict | None = None) -> pd.DataFrame:
    """Well profiles: ``operation`` of each feature over a well's cells, or with ``summary.sd`` the
    mean and the SD of each feature (seed 003's Mean+S.D.); the well-level metadata columns listed
    in ``strata`` are kept (they are constant within a well)."""
    layer = params.get("layer") or (next(iter(features)) if len(features) == 1 else None)
    if layer not in features:
        raise ValueError(f"treatments.wells.layer: no feature table {layer!r}; have {sorted(features)}")
    table = features[layer]() if callable(features[layer]) else features[layer]
    if (summary or {}).get("sd"):
        return mean_sd_profiles(table, strata=list(params["strata"]))
    return aggregate(table, strata=list(params["strata"]), operation=params.get("operation", "mean"),
                     compute_object_count=False)


def weak_resnet_features(crops: Crops, params: dict):
    """Train ResNet18 on treatment labels (weak supervision, seed 004) and embed every cell.

    Trained on the cells of ``train_replicates`` (DeepProfiler: replicates 1 and 3) with the
    ``regulariser`` none / mixup / gru; features are the spatial means of ``layers`` (default
    ``res4a``, the paper's conv4a). Returns ``({layer: table}, model artefact, loss history)``.
    """
    from cellbench.training import embed_crops, resolve_device
    from cellbench.training.preprocess import half_max_normalise
    from cellbench.training.weak import train_weakly_supervised

    device = resolve_device(params.get("device", "auto"))
    meta = crops.metadata
    label_col, batch_col = params.get("label", "Metadata_Treatment"), params.get("batch", "Metadata_Batch")
    rows = np.flatnonzero(meta["Metadata_Replicate"].isin(list(params.get("train_replicates", [1, 3]))).to_numpy())
    if len(rows) == 0:
        raise ValueError("weak supervision: no cells in train_replicates (column Metadata_Replicate)")
    train = crops.take(rows)
    model, classes, history = train_weakly_supervised(
        half_max_normalise(np.asarray(train.images)), train.metadata[label_col].astype(str).to_numpy(),
        train.metadata[batch_col].astype(str).to_numpy(), params, int(params.get("seed", 0)), device)
    model.eval()
    layers = list(params.get("layers", ["res4a"]))
    feats = embed_crops(lambda x: {k: v for k, v in model.embed(x).items() if k in layers}, crops,
                        half_max_normalise, device, int(params.get("embed_batch_size", 512)),
                        int(params.get("num_workers", 0)))
    name = f"resnet18_{params.get('regulariser', 'mixup')}"
    config = {"in_channels": int(crops.shape[1]), "n_classes": len(classes), "width": float(params.get("width", 1.0))}
    return (feature_tables(meta, feats, "ResNet18"), model_artefact("resnet18", model, config, classes=[str(c) for c in classes]),
            metric_histories(name, history))


def combine_moa_matching(**tables: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """One table of every feature set's profiling variants (columns ``features`` and ``summary``:
    ``mean`` or ``mean_sd``, from keys ``<features>`` and ``<features>_mean_sd``) and its MLflow
    metrics ``treatments/<features>/<summary>/<variant>/<metric>``."""
    parts = [t.assign(features=name.removesuffix("_mean_sd"), summary="mean_sd" if name.endswith("_mean_sd") else "mean")
             for name, t in tables.items()]
    table = pd.concat(parts, ignore_index=True)
    table = table[["features", "summary"] + [c for c in table.columns if c not in ("features", "summary")]]
    metrics = {f"treatments/{r.features}/{r.summary}/{r.variant}/{m}": {"value": float(getattr(r, m)), "step": 0}
               for r in table.itertuples()
               for m in ("nsc", "nscb", "map_moa", "replicate_accuracy", "group_accuracy") if pd.notna(getattr(r, m))}
    return table, metrics


def vae_features(crops: Crops, params: dict):
    """Train AE / VAE / VAE+ (seed 003) on every cell's crop (unsupervised: no label is used),
    then embed every cell as mu. Crops are max-normalised per channel and zero-padded to
    ``input_size`` (68). Returns ``({"mu": table}, model artefact, loss history)``."""
    from cellbench.training import embed_crops, resolve_device
    from cellbench.training.loops import train_vae
    from cellbench.training.preprocess import max_normalise

    device = resolve_device(params.get("device", "auto"))
    size = int(params.get("input_size", 68))
    limit = params.get("max_train_cells")
    rows = np.arange(len(crops))
    if limit and len(rows) > int(limit):
        rows = np.sort(np.random.default_rng(int(params.get("seed", 0))).choice(rows, int(limit), replace=False))
    train = max_normalise(np.asarray(crops.take(rows).images), size)
    model, history = train_vae(train, params, int(params.get("seed", 0)), device)
    model.eval()
    feats = embed_crops(model.embed, crops, lambda a: max_normalise(a, size), device,
                        int(params.get("embed_batch_size", 512)), int(params.get("num_workers", 0)))
    variant = params.get("variant", "vaeplus")
    config = {"in_channels": int(crops.shape[1]), "latent": int(params.get("latent", 256)),
              "discriminator": variant == "vaeplus"}
    return feature_tables(crops.metadata, feats, variant.upper()), model_artefact("vaeplus", model, config), metric_histories(variant, history)


def vae_figures(crops: Crops, ae: dict, vae: dict, vaeplus: dict, features: dict, params: dict):
    """Reconstructions (originals beside AE, VAE, VAE+) and VAE+ latent interpolation from a control
    cell to the cell nearest each treatment's mean (seed 003 Fig. 3)."""
    import torch

    from cellbench.models import build_model
    from cellbench.reporting.vae import interpolation_figure, interpolation_targets, reconstruction_figure
    from cellbench.training.preprocess import max_normalise

    models = {}
    for name, art in (("AE", ae), ("VAE", vae), ("VAE+", vaeplus)):
        m = build_model(art["model"], **art["config"])
        m.load_state_dict(art["state_dict"])
        models[name] = m.eval()
    size = int(params.get("input_size", 68))
    meta = crops.metadata
    group = params.get("group", "Metadata_MoA")
    rng = np.random.default_rng(int(params.get("seed", 0)))
    # one cell per MoA (top concentration) and one control, for the reconstructions
    query = params.get("query")
    pool = meta.query(query) if query else meta
    rows = [int(rng.choice(idx)) for _, idx in pool.groupby(group, sort=True).indices.items()]
    rows = pool.index.to_numpy()[rows]
    recon = reconstruction_figure(max_normalise(np.asarray(crops.take(rows).images), size),
                                  meta.loc[rows, group].astype(str).tolist(), models)
    # interpolation: targets among the cells of the chosen treatments, in VAE+ mu space
    table = next(iter(features.values()))
    table = table() if callable(table) else table
    mu = table[feature_columns(table)].to_numpy()
    subset = np.flatnonzero(meta.index.isin(pool.index))
    control = meta[params.get("control_column", "Metadata_Control")].to_numpy(bool)
    ctrl, targets = interpolation_targets(mu[subset], meta.iloc[subset], group, control[subset])
    chosen = np.array([ctrl] + list(targets.values()))
    imgs = max_normalise(np.asarray(crops.take(subset[chosen]).images), size)
    with torch.no_grad():
        interp = interpolation_figure(models["VAE+"], imgs, 0, {k: i + 1 for i, k in enumerate(targets)},
                                      int(params.get("steps", 7)))
    return recon, interp


def moa_table(matching: pd.DataFrame, params: dict) -> str:
    """The results in the layout of seed 003 Table 1 (NSC / NSCB x model; Mean, Mean+Whitened,
    Mean+S.D., Mean+S.D.+Whitened) and seed 004 Table 2 (NSC, NSCB, drop), plus replicate and group
    accuracy, as Markdown."""
    from cellbench.reporting.tables import profiling_tables_markdown

    return profiling_tables_markdown(matching, dict(params["columns"]), params.get("title", ""))
