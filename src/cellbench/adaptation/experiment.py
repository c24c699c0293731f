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

from cellbench.crops import Crops
from cellbench.metadata import require_columns
from cellbench.metrics.similarity import linear_cka
from cellbench.representations.coda import (GRANULARITIES, CodaConfig, _unit, adapt_dual, dual_model, predict, supervised_vit,
                                            train_classifier, train_dino, train_mae, ttt_mae_predict)

from .dino import eval_view
from .pairs import CrossBatchSampler

log = logging.getLogger(__name__)

ADAPTED = {"oda": "dino", "coda": "cb"}  # adapted method -> the foundation / dual model it starts from
METHODS = ("supervised", "dual_dino", "dual_cb", "ttt", "oda", "coda")
TRAINED = ("supervised", "dual_dino", "dual_cb")  # scored as trained on the source: the method is its model


def chosen_methods(methods=None) -> tuple[str, ...]:
    """The methods to run, checked: ``None`` = all of :data:`METHODS`; an unknown name or an empty
    choice is a ``ValueError`` listing the known ones."""
    if methods is None:
        return METHODS
    methods = tuple(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"domain adaptation methods: {unknown or 'none'} chosen; expected one or more of {list(METHODS)}")
    return tuple(m for m in METHODS if m in methods)


def models_needed(methods) -> set[str]:
    """The models :func:`train_source` trains for ``methods``: each method's own, and the dual model
    an adapted method starts from (``oda`` needs ``dual_dino``, ``coda`` ``dual_cb``, ``ttt`` the MAE
    dual model ``dual_mae``)."""
    methods = chosen_methods(methods)
    needed = {m for m in methods if m in TRAINED}
    needed |= {f"dual_{ADAPTED[m]}" for m in methods if m in ADAPTED}
    return needed | ({"dual_mae"} if "ttt" in methods else set())


def source_rows(meta: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """Row positions of the cells of ``source`` (values compared as strings)."""
    return np.flatnonzero((meta[column].astype(str) == str(source)).to_numpy())


def domain_splits(meta: pd.DataFrame, source: str, columns) -> dict[str, np.ndarray]:
    """Row indices ``train``, ``val`` (one held-out plate) and ``test`` (another held-out plate,
    from the first batch when there are several) of ``source``."""
    columns = _columns(columns)
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


def _columns(columns) -> dict:
    return columns.to_dict() if hasattr(columns, "to_dict") else dict(columns)


def eval_size(config: CodaConfig) -> int:
    """Side of the centre crop the classifiers are trained and scored on (``classifier.global_size``)."""
    return config.classifier.global_size


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """Per-image accuracy and macro-F1 (over the source classes)."""
    return {"accuracy": float(np.mean(y_true == y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, labels=np.arange(n_classes), average="macro", zero_division=0))}


def train_source(images: np.ndarray, meta: pd.DataFrame, y: np.ndarray, source: str, params: CodaConfig, seed: int,
                 device: torch.device, foundation: dict | None = None, methods=None) -> tuple[dict, dict]:
    """The models of one training source: DINO and DINO-CB foundations, the MAE foundation, the three
    dual models and the supervised ViT (``methods``: only those :func:`models_needed` names). The
    DINO foundations and the supervised ViT start from ``foundation`` (a ViT state dict: the
    pre-training pool's) when given, else from ``dino.pretrained`` or scratch. Each model is
    trained with the same seed whichever others are, so a subset's models equal the full run's.
    Returns ``(models, histories)``."""
    cols, n_classes = params.columns, int(y.max()) + 1
    needed = models_needed(methods)
    split = domain_splits(meta, source, cols)
    tr, va = split["train"], split["val"]
    dino, cls = params.dino, params.classifier
    models, hist = {"split": split}, {}
    for kind in ("dino", "cb"):
        if f"dual_{kind}" not in needed:
            continue
        sampler = cross_batch_sampler(meta, tr, params) if kind == "cb" else None
        state, hist[f"{kind}_pretrain"] = train_dino(images[tr], dino, seed, device, sampler=sampler, weights=foundation)
        models[f"state_{kind}"] = state
        dual = dual_model(state.teacher.backbone, n_classes, cls, seed)
        models[f"dual_{kind}"], hist[f"dual_{kind}"] = train_classifier(dual, images[tr], y[tr], images[va], y[va], cls, seed, device)
    if "dual_mae" in needed:
        encoder, decoder, hist["mae_pretrain"] = train_mae(images[tr], dino, seed, device)
        models["mae_decoder"] = decoder
        models["dual_mae"], hist["dual_mae"] = train_classifier(dual_model(encoder, n_classes, cls, seed), images[tr],
                                                                y[tr], images[va], y[va], cls, seed, device)
    if "supervised" in needed:
        models["supervised"], hist["supervised"] = train_classifier(supervised_vit(dino, images.shape[1], n_classes, seed, foundation),
                                                                images[tr], y[tr], images[va], y[va], cls, seed, device)
    return models, hist


def cross_batch_sampler(meta: pd.DataFrame, rows: np.ndarray, params: CodaConfig) -> CrossBatchSampler:
    """CB pairs among ``rows``: same ``columns.treatment``, different ``columns[pair_by]`` (plate)."""
    cols = params.columns
    return CrossBatchSampler(meta[cols.treatment].to_numpy()[rows], meta[getattr(cols, params.pair_by)].to_numpy()[rows])


def adapt_params(params: CodaConfig):
    """ODA / CODA settings: the DINO settings with ``adapt`` overrides (e.g. fewer steps)."""
    return params.adapt_dino()


def evaluate_pair(models: dict, images: np.ndarray, meta: pd.DataFrame, y: np.ndarray, source: str, target: str,
                  params: CodaConfig, seed: int, device: torch.device, methods=None) -> tuple[list[dict], dict, dict]:
    """Scores of every method (``methods``: those only; their models in ``models``) for ``source ->
    target`` (``target == source``: the in-source test plate, without ODA / CODA). Returns
    ``(rows, adapted models, adaptation histories)``."""
    methods = chosen_methods(methods)
    n_classes = int(y.max()) + 1
    size = eval_size(params)
    if target == source:
        rows = models["split"]["test"]
    else:
        rows = source_rows(meta, params.columns.source, target)
    x, yt = images[rows], y[rows]
    preds = {m: predict(models[m], x, size, device) for m in TRAINED if m in methods}
    if "ttt" in methods:
        preds["ttt"] = ttt_mae_predict(models["dual_mae"], models["mae_decoder"], x, params.dino, seed, device)
    adapted, hist = {}, {}
    if target != source:
        adapt = adapt_params(params)
        for method, kind in ADAPTED.items():
            if method not in methods:
                continue
            t0 = time.perf_counter()
            sampler = cross_batch_sampler(meta, rows, params) if kind == "cb" else None
            adapted[method], _, hist[method] = adapt_dual(models[f"dual_{kind}"], models[f"state_{kind}"], x, adapt, seed,
                                                          device, sampler=sampler)
            preds[method] = predict(adapted[method], x, size, device)
            log.info("%s %s->%s seed %d: %.1f s", method, source, target, seed, time.perf_counter() - t0)
    out = [{"seed": seed, "method": m, "source": source, "target": target, "n_images": len(rows),
            **scores(yt, p, n_classes)} for m, p in preds.items()]
    if target != source:  # what the features know of the target, apart from the source-trained head
        extractors = {m: models[m] if m == "supervised" else models[m].foundation
                      for m in TRAINED if m in methods}
        extractors.update({m: a.foundation for m, a in adapted.items()})
        plates = meta[params.columns.plate].astype(str).to_numpy()[rows]
        for row in out:
            net = extractors.get(row["method"])
            row["probe_accuracy"] = np.nan if net is None else \
                linear_probe(predict(net, x, size, device, features=True), yt, plates, seed)
    return out, adapted, hist


def linear_probe(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, seed: int, folds: int = 3) -> float:
    """Accuracy of a linear probe of ``labels`` on ``features``: standardised features, multinomial
    logistic regression (L2, C = 1), cross-validated over ``folds`` group folds (``groups``: the
    target's plates, so a plate is never both fitted and scored). Used on a target's own labels,
    it measures what a foundation's features know of the target, apart from the source-trained
    classifier on top (a diagnostic: it is not a method of the benchmark, the labels are the
    target's)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = min(folds, len(np.unique(groups)))
    if n < 2:
        raise ValueError(f"linear_probe: {len(np.unique(groups))} plate(s) in the target; 2 or more are needed "
                         "to score a probe on plates it was not fitted on")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    pred = cross_val_predict(model, np.asarray(features, np.float64), labels, groups=groups, cv=GroupKFold(n))
    return float(np.mean(pred == labels))


def granularity_study(models: dict, images: np.ndarray, meta: pd.DataFrame, y: np.ndarray, source: str, target: str,
                      params: CodaConfig, seed: int, device: torch.device, levels=GRANULARITIES,
                      methods=None) -> list[dict]:
    """ODA and CODA (those of ``methods``) adapted on the whole target source, per batch, per plate
    (each unit adapted and scored on its own images; scores pooled over the target) and on one
    plate then scored on the whole target."""
    methods = chosen_methods(methods)
    for level in levels:  # all checked before any adaptation runs
        if level not in GRANULARITIES:
            raise ValueError(f"granularity level {level!r}; expected one of {list(GRANULARITIES)}")
    cols, n_classes = params.columns, int(y.max()) + 1
    size = eval_size(params)
    adapt = adapt_params(params)
    rows = source_rows(meta, cols.source, target)
    out = []
    for level in levels:
        unit_col = {"source": cols.source, "batch": cols.batch, "plate": cols.plate, "one_plate": cols.plate}[level]
        units = meta[unit_col].astype(str).to_numpy()[rows]
        names = sorted(set(units))
        if level == "one_plate":
            names = names[:1]
        for method, kind in ADAPTED.items():
            if method not in methods:
                continue
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
    """Mean and standard deviation over seeds of accuracy and macro-F1 (and the target linear
    probe's accuracy, where measured) per (method, source, target)."""
    keys = [c for c in ("method", "granularity", "source", "target") if c in results.columns]
    metrics = [c for c in ("accuracy", "macro_f1", "probe_accuracy") if c in results.columns]
    agg = results.groupby(keys, sort=False)[metrics].agg(["mean", "std"])
    agg.columns = [f"{m}_{s}" for m, s in agg.columns]
    agg["n_seeds"] = results.groupby(keys, sort=False)["seed"].nunique()
    return agg.reset_index()


def labelled_cells(crops: Crops, config: CodaConfig) -> tuple[np.ndarray, pd.DataFrame, np.ndarray, list[str]]:
    """``(images, metadata, integer labels, class names)`` of the cells left after ``drop`` (CODA
    drops images without an MoA, e.g. the controls)."""
    cols = config.columns
    meta = crops.metadata
    require_columns(meta, [cols.source, cols.batch, cols.plate, cols.treatment, cols.label], "domain_adaptation crops")
    keep = np.ones(len(meta), bool)
    if config.drop:
        keep &= ~meta.eval(config.drop).to_numpy(bool)
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise ValueError(f"domain_adaptation.drop: no cells left after dropping {config.drop!r}")
    cells = crops.take(rows)
    classes = sorted(cells.metadata[cols.label].astype(str).unique())
    y = np.searchsorted(classes, cells.metadata[cols.label].astype(str).to_numpy())
    return np.asarray(cells.images), cells.metadata, y, classes


def chosen_sources(meta: pd.DataFrame, config: CodaConfig, key: str) -> list[str]:
    """The sources named by ``config.<key>`` (``train_sources`` / ``targets``; null = every source),
    each checked against the data."""
    present = sorted(meta[config.columns.source].astype(str).unique())
    chosen = getattr(config, key) or present
    unknown = [s for s in chosen if s not in present]
    if unknown:
        raise ValueError(f"domain_adaptation.{key}: unknown source(s) {unknown}; the data has {present}")
    return [str(s) for s in chosen]


def run_experiment(crops: Crops, config: CodaConfig, device: torch.device, foundation: dict | None = None,
                   methods=None):
    """Train every method on every training source, score it on every target, adapt (ODA / CODA),
    run the granularity study on one pair, and measure CKA and class tokens before and after.

    ``foundation``: the ViT state dict every foundation and the supervised ViT start from (the
    pre-training pool's, :mod:`cellbench.adaptation.pool`); ``None``: ``dino.pretrained`` or scratch.
    ``methods``: a subset of :data:`METHODS` (``None``: all), for studies that need only some (the
    models those need are trained, each exactly as in the full run); the pipeline runs them all.

    Returns ``(per-seed results, granularity results, CKA table, class-token table, model artefact,
    {name: history})`` with history names ``seed<k>/<source>/<model>`` and
    ``seed<k>/<source>-to-<target>/<method>``.
    """
    methods = chosen_methods(methods)
    images, meta, y, classes = labelled_cells(crops, config)
    sources, targets = chosen_sources(meta, config, "train_sources"), chosen_sources(meta, config, "targets")
    gran = config.granularity
    for key, chosen, among in (("source", gran.source, sources), ("target", gran.target, targets)):
        if chosen is not None and chosen not in among:
            raise ValueError(f"domain_adaptation.granularity.{key}: {chosen!r} is not among the "
                             f"{'train_sources' if key == 'source' else 'targets'} {among}")
    size = eval_size(config)
    results, gran_rows, cka_rows, histories, state = [], [], [], {}, {}
    tokens = None
    for seed in config.seeds:
        for source in sources:
            models, hist = train_source(images, meta, y, source, config, seed, device, foundation, methods)
            histories.update({f"seed{seed}/{source}/{name}": h for name, h in hist.items()})
            for name in [n for n in ("dual_dino", "dual_cb", "dual_mae", "supervised") if n in models]:
                state.update({f"seed{seed}/{source}/{name}/{k}": v for k, v in models[name].state_dict().items()})
            for target in targets:
                rows, adapted, ahist = evaluate_pair(models, images, meta, y, source, target, config, seed, device,
                                                     methods)
                results += rows
                histories.update({f"seed{seed}/{source}-to-{target}/{name}": h for name, h in ahist.items()})
                if adapted:  # the same target cells for every adapted method
                    sample = source_rows(meta, config.columns.source, target)
                    sample = np.sort(np.random.default_rng(seed).choice(
                        sample, min(len(sample), config.cka_cells), replace=False))
                for method, model in adapted.items():
                    state.update({f"seed{seed}/{source}-to-{target}/{method}/foundation/{k}": v
                                  for k, v in model.foundation.state_dict().items()})
                    before = models[f"dual_{ADAPTED[method]}"].foundation
                    for layer, value in enumerate(layer_cka(before, model.foundation, images[sample], size)):
                        cka_rows.append({"seed": seed, "method": method, "source": source, "target": target,
                                         "layer": layer, "cka": value})
                pair = (gran.source or sources[0], gran.target)
                if source == pair[0] and target == (pair[1] or next(t for t in targets if t != source)):
                    if seed in (gran.seeds or (seed,)):
                        gran_rows += granularity_study(models, images, meta, y, source, target, config, seed, device,
                                                       gran.levels, methods)
                    if tokens is None and "coda" in adapted:
                        tokens = class_token_table(models, adapted, images, meta, source, target, config, seed, device)
    artefact = {"model": "coda_experiment", "config": {"classes": classes, "vit": config.dino.vit.to_dict(),
                                                        "task_depth": config.classifier.task_depth},
                "state_dict": state}
    return (pd.DataFrame(results), pd.DataFrame(gran_rows), pd.DataFrame(cka_rows),
            tokens if tokens is not None else pd.DataFrame(), artefact, histories)


def class_token_table(models, adapted, images, meta, source, target, config: CodaConfig, seed, device) -> pd.DataFrame:
    """Class tokens of the CB foundation before and after CODA, on the in-source test plate and the target."""
    cols, size = config.columns, eval_size(config)
    rng = np.random.default_rng(seed)
    n = config.umap_cells
    tgt = source_rows(meta, cols.source, target)
    rows = np.concatenate([models["split"]["test"], rng.choice(tgt, min(n, len(tgt)), replace=False)])
    rows = np.sort(rows)
    parts = []
    for stage, foundation in (("before adaptation", models["dual_cb"].foundation), ("after CODA", adapted["coda"].foundation)):
        emb = predict(foundation, images[rows], size, device, features=True)  # class token after the final norm
        keep = [cols.source, cols.batch, cols.plate, cols.label]
        table = meta.iloc[rows][keep].reset_index(drop=True)
        parts.append(pd.concat([table.assign(stage=stage),
                                pd.DataFrame(emb, columns=[f"cls_{i}" for i in range(emb.shape[1])])], axis=1))
    return pd.concat(parts, ignore_index=True)
