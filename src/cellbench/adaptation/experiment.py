"""The CODA experiment (seed 001) on arrays: per training source, the models of every method; per
(source, target) pair, adaptation and per-image scores; the granularity study; CKA of the layers.

Methods (rows of the source x target matrix):

* ``supervised``: a ViT trained end to end on the source labels;
* ``dual_dino`` / ``dual_cb``: the dual model on a frozen DINO foundation pre-trained on the source
  without / with cross-batch pairs;
* ``ttt``: the dual model on an MAE foundation, adapted per test batch (TTT-MAE);
* ``oda`` / ``coda``: ``dual_dino`` / ``dual_cb`` after DINO on the unlabelled target (without / with
  cross-batch pairs), only the foundation updated.

Splits of a training source (CODA ``single_MICROSCOPE_specific``): one held-out plate validates
(checkpoint choice), another held-out plate is the in-source test (the matrix diagonal); the rest
trains. A target is every image of another source, used unlabelled for adaptation and labelled
only for scoring (transductive, as in the reference).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score

from .cka import linear_cka
from .dino import eval_view
from .pairs import CrossBatchSampler
from .train import (_unit, adapt_dual, dual_model, predict, supervised_vit, train_classifier, train_dino,
                    train_mae, ttt_mae_predict)

log = logging.getLogger(__name__)

ADAPTED = {"oda": "dino", "coda": "cb"}  # adapted method -> the foundation / dual model it starts from
GRANULARITIES = ("source", "batch", "plate", "one_plate")


def source_rows(meta: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """Row positions of the cells of ``source`` (values compared as strings)."""
    return np.flatnonzero((meta[column].astype(str) == str(source)).to_numpy())


def domain_splits(meta: pd.DataFrame, source: str, columns: dict) -> dict[str, np.ndarray]:
    """Row indices ``train``, ``val`` (one held-out plate) and ``test`` (another held-out plate,
    from the first batch when there are several) of ``source``."""
    rows = source_rows(meta, columns["source"], source)
    if len(rows) == 0:
        raise ValueError(f"domain adaptation: no cells of source {source!r} in column {columns['source']}")
    plates = meta[columns["plate"]].astype(str).to_numpy()
    batch_of: dict[str, str] = {}  # each plate's batch (its first cell's)
    for plate, batch in zip(plates[rows], meta[columns["batch"]].astype(str).to_numpy()[rows]):
        batch_of.setdefault(plate, batch)
    ordered = sorted(batch_of, key=lambda p: (batch_of[p], p))
    if len(ordered) < 3:
        raise ValueError(f"domain adaptation: source {source!r} has {len(ordered)} plate(s); need >= 3 "
                         "(training, a validation plate and an in-source test plate)")
    val = ordered[-1]
    first_batch = [p for p in ordered if batch_of[p] == batch_of[ordered[0]]]
    test = first_batch[-1] if first_batch[-1] != val else ordered[-2]
    return {"train": rows[(plates[rows] != val) & (plates[rows] != test)], "val": rows[plates[rows] == val],
            "test": rows[plates[rows] == test]}


def eval_size(params: dict) -> int:
    """Side of the centre crop the classifiers are trained and scored on (``classifier.global_size``)."""
    return int(params["classifier"].get("global_size", 224))


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """Per-image accuracy and macro-F1 (over the source classes)."""
    return {"accuracy": float(np.mean(y_true == y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, labels=np.arange(n_classes), average="macro", zero_division=0))}


def train_source(images: np.ndarray, meta: pd.DataFrame, y: np.ndarray, source: str, params: dict, seed: int,
                 device: torch.device) -> tuple[dict, dict]:
    """Every model of one training source: DINO and DINO-CB foundations, the MAE foundation, the three
    dual models and the supervised ViT. Returns ``(models, histories)``."""
    cols, n_classes = params["columns"], int(y.max()) + 1
    split = domain_splits(meta, source, cols)
    tr, va = split["train"], split["val"]
    dino, cls = params["dino"], params["classifier"]
    models, hist = {"split": split}, {}
    for kind, sampler in (("dino", None), ("cb", cross_batch_sampler(meta, tr, params))):
        state, hist[f"{kind}_pretrain"] = train_dino(images[tr], dino, seed, device, sampler=sampler)
        models[f"state_{kind}"] = state
        dual = dual_model(state.teacher.backbone, n_classes, cls, seed)
        models[f"dual_{kind}"], hist[f"dual_{kind}"] = train_classifier(dual, images[tr], y[tr], images[va], y[va], cls, seed, device)
    encoder, decoder, hist["mae_pretrain"] = train_mae(images[tr], dino, seed, device)
    models["mae_decoder"] = decoder
    models["dual_mae"], hist["dual_mae"] = train_classifier(dual_model(encoder, n_classes, cls, seed), images[tr], y[tr],
                                                            images[va], y[va], cls, seed, device)
    models["supervised"], hist["supervised"] = train_classifier(supervised_vit(dino, images.shape[1], n_classes, seed),
                                                                images[tr], y[tr], images[va], y[va], cls, seed, device)
    return models, hist


def cross_batch_sampler(meta: pd.DataFrame, rows: np.ndarray, params: dict) -> CrossBatchSampler:
    """CB pairs among ``rows``: same ``columns.treatment``, different ``columns[pair_by]`` (plate)."""
    cols = params["columns"]
    return CrossBatchSampler(meta[cols["treatment"]].to_numpy()[rows], meta[cols[params.get("pair_by", "plate")]].to_numpy()[rows])


def adapt_params(params: dict) -> dict:
    """ODA / CODA settings: the DINO settings with ``adapt`` overrides (e.g. fewer steps)."""
    return {**params["dino"], **(params.get("adapt") or {})}


def evaluate_pair(models: dict, images: np.ndarray, meta: pd.DataFrame, y: np.ndarray, source: str, target: str,
                  params: dict, seed: int, device: torch.device) -> tuple[list[dict], dict, dict]:
    """Scores of every method for ``source -> target`` (``target == source``: the in-source test
    plate, without ODA / CODA). Returns ``(rows, adapted models, adaptation histories)``."""
    cols, n_classes = params["columns"], int(y.max()) + 1
    size = eval_size(params)
    if target == source:
        rows = models["split"]["test"]
    else:
        rows = source_rows(meta, cols["source"], target)
    x, yt = images[rows], y[rows]
    preds = {"supervised": predict(models["supervised"], x, size, device),
             "dual_dino": predict(models["dual_dino"], x, size, device),
             "dual_cb": predict(models["dual_cb"], x, size, device),
             "ttt": ttt_mae_predict(models["dual_mae"], models["mae_decoder"], x, params["dino"], seed, device)}
    adapted, hist = {}, {}
    if target != source:
        adapt = adapt_params(params)
        for method, kind in ADAPTED.items():
            t0 = time.perf_counter()
            sampler = cross_batch_sampler(meta, rows, params) if kind == "cb" else None
            adapted[method], _, hist[method] = adapt_dual(models[f"dual_{kind}"], models[f"state_{kind}"], x, adapt, seed,
                                                          device, sampler=sampler)
            preds[method] = predict(adapted[method], x, size, device)
            log.info("%s %s->%s seed %d: %.1f s", method, source, target, seed, time.perf_counter() - t0)
    out = [{"seed": seed, "method": m, "source": source, "target": target, "n_images": len(rows),
            **scores(yt, p, n_classes)} for m, p in preds.items()]
    return out, adapted, hist


def granularity_study(models: dict, images: np.ndarray, meta: pd.DataFrame, y: np.ndarray, source: str, target: str,
                      params: dict, seed: int, device: torch.device, levels=GRANULARITIES) -> list[dict]:
    """ODA and CODA adapted on the whole target source, per batch, per plate (each unit adapted and
    scored on its own images; scores pooled over the target) and on one plate then scored on the
    whole target."""
    cols, n_classes = params["columns"], int(y.max()) + 1
    size = eval_size(params)
    adapt = adapt_params(params)
    for level in levels:  # all checked before any adaptation runs
        if level not in GRANULARITIES:
            raise ValueError(f"granularity level {level!r}; expected one of {list(GRANULARITIES)}")
    rows = source_rows(meta, cols["source"], target)
    out = []
    for level in levels:
        unit_col = {"source": cols["source"], "batch": cols["batch"], "plate": cols["plate"], "one_plate": cols["plate"]}[level]
        units = meta[unit_col].astype(str).to_numpy()[rows]
        names = sorted(set(units))
        if level == "one_plate":
            names = names[:1]
        for method, kind in ADAPTED.items():
            pred = np.full(len(rows), -1)
            for name in names:
                fit = rows[units == name]
                score = rows if level == "one_plate" else fit
                sampler = cross_batch_sampler(meta, fit, params) if kind == "cb" else None
                model, _, _ = adapt_dual(models[f"dual_{kind}"], models[f"state_{kind}"], images[fit], adapt, seed,
                                         device, sampler=sampler)
                pos = np.searchsorted(rows, score)
                pred[pos] = predict(model, images[score], size, device)
            out.append({"seed": seed, "method": method, "granularity": level, "source": source, "target": target,
                        "n_units": len(names), **scores(y[rows], pred, n_classes)})
    return out


@torch.no_grad()
def layer_cka(before: torch.nn.Module, after: torch.nn.Module, images: np.ndarray, size: int) -> list[float]:
    """Linear CKA between the class token after each block of two ViTs on the same images."""
    x = eval_view(_unit(images), size)
    a = [t.numpy() for t in before.eval().block_outputs(x)]
    b = [t.numpy() for t in after.eval().block_outputs(x)]
    return [linear_cka(u, v) for u, v in zip(a, b)]


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of accuracy and macro-F1 per (method, source, target)."""
    keys = [c for c in ("method", "granularity", "source", "target") if c in results.columns]
    agg = results.groupby(keys, sort=False)[["accuracy", "macro_f1"]].agg(["mean", "std"])
    agg.columns = [f"{m}_{s}" for m, s in agg.columns]
    agg["n_seeds"] = results.groupby(keys, sort=False)["seed"].nunique()
    return agg.reset_index()
