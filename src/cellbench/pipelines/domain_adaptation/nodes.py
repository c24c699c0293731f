"""Nodes of the domain_adaptation pipeline (CODA, seed 001): unpack parameters, call
``cellbench.adaptation``, shape the outputs for the catalog."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cellbench.crops import Crops

from .._outputs import metric_histories

log = logging.getLogger(__name__)

COLUMN_KEYS = ("source", "batch", "plate", "treatment", "label")


def _labelled_cells(crops: Crops, params: dict) -> tuple[np.ndarray, pd.DataFrame, np.ndarray, list[str]]:
    """Cells with a label (controls dropped, as CODA drops rows without an MoA), their integer labels."""
    from cellbench.metadata import require_columns

    cols = params["columns"]
    missing = [k for k in COLUMN_KEYS if k not in cols]
    if missing:
        raise ValueError(f"domain_adaptation.columns: missing key(s) {missing}; expected {list(COLUMN_KEYS)}")
    meta = crops.metadata
    require_columns(meta, [cols[k] for k in COLUMN_KEYS], "domain_adaptation crops")
    keep = np.ones(len(meta), bool)
    if params.get("drop"):
        keep &= ~meta.eval(params["drop"]).to_numpy(bool)
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise ValueError(f"domain_adaptation: no cells left after dropping {params.get('drop')!r}")
    cells = crops.take(rows)
    classes = sorted(cells.metadata[cols["label"]].astype(str).unique())
    y = np.searchsorted(classes, cells.metadata[cols["label"]].astype(str).to_numpy())
    return np.asarray(cells.images), cells.metadata, y, classes


def _sources(meta: pd.DataFrame, params: dict, key: str) -> list[str]:
    present = sorted(meta[params["columns"]["source"]].astype(str).unique())
    chosen = params.get(key) or present
    unknown = [s for s in chosen if s not in present]
    if unknown:
        raise ValueError(f"domain_adaptation.{key}: unknown source(s) {unknown}; the data has {present}")
    return [str(s) for s in chosen]


def run_domain_adaptation(crops: Crops, params: dict):
    """Train every method on every training source, score it on every target, adapt (ODA / CODA),
    run the granularity study on one pair, and measure CKA and class tokens before and after.

    Returns ``(per-seed results, granularity results, CKA table, class-token table, model artefact,
    training histories)``.
    """
    import torch

    from cellbench.adaptation.experiment import (ADAPTED, eval_size, evaluate_pair, granularity_study, layer_cka,
                                                 source_rows, train_source)
    from cellbench.training import resolve_device

    device = resolve_device(params.get("device", "auto"))
    if params.get("threads"):
        torch.set_num_threads(int(params["threads"]))
    images, meta, y, classes = _labelled_cells(crops, params)
    sources, targets = _sources(meta, params, "train_sources"), _sources(meta, params, "targets")
    gran = params.get("granularity") or {}
    size = eval_size(params)
    results, gran_rows, cka_rows, histories, state = [], [], [], {}, {}
    tokens = None
    cols = params["columns"]
    for seed in [int(s) for s in params.get("seeds", [0])]:
        for source in sources:
            models, hist = train_source(images, meta, y, source, params, seed, device)
            for name, h in hist.items():
                histories.update(metric_histories(f"da/seed{seed}/{source}/{name}", h))
            for name in ("dual_dino", "dual_cb", "dual_mae", "supervised"):
                state.update({f"seed{seed}/{source}/{name}/{k}": v for k, v in models[name].state_dict().items()})
            for target in targets:
                rows, adapted, ahist = evaluate_pair(models, images, meta, y, source, target, params, seed, device)
                results += rows
                for name, h in ahist.items():
                    histories.update(metric_histories(f"da/seed{seed}/{source}-to-{target}/{name}", h))
                if adapted:  # the same target cells for every adapted method
                    sample = source_rows(meta, cols["source"], target)
                    sample = np.sort(np.random.default_rng(seed).choice(
                        sample, min(len(sample), int(params.get("cka_cells", 512))), replace=False))
                for method, model in adapted.items():
                    state.update({f"seed{seed}/{source}-to-{target}/{method}/foundation/{k}": v
                                  for k, v in model.foundation.state_dict().items()})
                    before = models[f"dual_{ADAPTED[method]}"].foundation
                    for layer, value in enumerate(layer_cka(before, model.foundation, images[sample], size)):
                        cka_rows.append({"seed": seed, "method": method, "source": source, "target": target,
                                         "layer": layer, "cka": value})
                pair = (gran.get("source", sources[0]), gran.get("target"))
                if source == pair[0] and target == (pair[1] or next(t for t in targets if t != source)):
                    if seed in [int(s) for s in gran.get("seeds", [seed])]:
                        gran_rows += granularity_study(models, images, meta, y, source, target, params, seed, device,
                                                       gran.get("levels", ["source", "batch", "plate", "one_plate"]))
                    if tokens is None and "coda" in adapted:
                        tokens = _class_token_table(models, adapted, images, meta, source, target, params, seed, device)
    artefact = {"model": "coda_experiment", "config": {"classes": classes, "vit": dict(params["dino"].get("vit") or {}),
                                                        "task_depth": params["classifier"].get("task_depth")},
                "state_dict": state}
    return (pd.DataFrame(results), pd.DataFrame(gran_rows), pd.DataFrame(cka_rows),
            tokens if tokens is not None else pd.DataFrame(), artefact, histories)


def _class_token_table(models, adapted, images, meta, source, target, params, seed, device) -> pd.DataFrame:
    """Class tokens of the CB foundation before and after CODA, on the in-source test plate and the target."""
    from cellbench.adaptation.experiment import eval_size, source_rows
    from cellbench.adaptation.train import predict

    cols, size = params["columns"], eval_size(params)
    rng = np.random.default_rng(seed)
    n = int(params.get("umap_cells", 600))
    tgt = source_rows(meta, cols["source"], target)
    rows = np.concatenate([models["split"]["test"], rng.choice(tgt, min(n, len(tgt)), replace=False)])
    rows = np.sort(rows)
    parts = []
    for stage, foundation in (("before adaptation", models["dual_cb"].foundation), ("after CODA", adapted["coda"].foundation)):
        emb = predict(foundation, images[rows], size, device, features=True)  # class token after the final norm
        keep = [cols["source"], cols["batch"], cols["plate"], cols["label"]]
        table = meta.iloc[rows][keep].reset_index(drop=True)
        parts.append(pd.concat([table.assign(stage=stage),
                                pd.DataFrame(emb, columns=[f"cls_{i}" for i in range(emb.shape[1])])], axis=1))
    return pd.concat(parts, ignore_index=True)


def report_domain_adaptation(results: pd.DataFrame, granularity: pd.DataFrame, cka: pd.DataFrame):
    """Summaries over seeds and the figures; MLflow metrics ``da/{method}/{source}-to-{target}/{metric}``
    (MLflow forbids ``>`` in metric names, hence ``-to-``)."""
    from cellbench.adaptation.experiment import summarise
    from cellbench.reporting.tables import frame_markdown
    from cellbench.reporting.adaptation import (cka_figure, gap_table, granularity_figure, matrix_heatmap,
                                                matrix_markdown)

    if results.empty:
        raise ValueError("domain_adaptation: no results (check train_sources, targets and seeds)")
    summary = summarise(results)
    gaps = pd.concat({m: gap_table(summary, m) for m in ("accuracy", "macro_f1")}, axis=1)
    gaps.columns = [f"{m}_{k}" for m, k in gaps.columns]
    md = ["# Domain adaptation: source x target", "",
          f"Seeds: {sorted(results['seed'].unique())}; per-image scores on every image of the target "
          "(the diagonal: the in-source held-out plate).", "",
          "## In-source vs out-of-source (mean of the matrix cells, %)", "",
          frame_markdown(100 * gaps), "", "## Accuracy", "", matrix_markdown(summary, "accuracy"),
          "## Macro-F1", "", matrix_markdown(summary, "macro_f1")]
    gsum = pd.DataFrame()
    if not granularity.empty:
        gsum = summarise(granularity)
        md += ["## Granularity (ODA / CODA)", "", frame_markdown(gsum.assign(**{c: 100 * gsum[c] for c in gsum.columns
                                                                if c.startswith(("accuracy", "macro"))}), index=False), ""]
    metrics = {f"da/{r.method}/{r.source}-to-{r.target}/{m}": {"value": float(getattr(r, f"{m}_mean")), "step": 0}
               for r in summary.itertuples() for m in ("accuracy", "macro_f1")}
    for r in gsum.itertuples():
        metrics[f"da_granularity/{r.method}/{r.granularity}/accuracy"] = {"value": float(r.accuracy_mean), "step": 0}
    heat = matrix_heatmap(summary, "accuracy", "Per-image accuracy (%), source x target, mean over seeds")
    if gsum.empty or cka.empty:
        raise ValueError("domain_adaptation: the granularity study and CKA need at least one source -> target "
                         "pair (targets other than the training source, granularity.levels not empty)")
    pair = gsum[["source", "target"]].iloc[0]
    same_seeds = summarise(results[results["seed"].isin(granularity["seed"].unique())])
    ref = same_seeds[(same_seeds["source"] == pair["source"]) & (same_seeds["target"] == pair["target"])]
    gfig = granularity_figure(gsum, ref)
    cfig = cka_figure(cka)
    return summary, "\n".join(md), heat, gfig, cfig, metrics


def umap_class_tokens(tokens: pd.DataFrame, params: dict):
    from cellbench.reporting.adaptation import umap_figure

    if tokens.empty:
        raise ValueError("domain_adaptation: no class tokens to plot (the granularity pair had no CODA run)")
    cols = params["columns"]
    return umap_figure(tokens, cols["label"], cols["source"], int(params.get("seeds", [0])[0]))
