"""Evaluation nodes: run the COOS protocol per representation and build the report."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from cellbench.benchmark import evaluate_features, select_best
from cellbench.reporting import benchmark_markdown, confusion_figure, error_by_split_figure
from cellbench.reporting.tables import coos7_published_reference, per_class_sensitivity_table
from cellbench.simulate import COOS7_CLASSES


log = logging.getLogger(__name__)
RESULT_COLUMNS = ["representation", "layer", "classifier", "split", "balanced_error", "balanced_error_std",
                  "n_seeds", "n_cells", "cv_balanced_error"]
CONFUSION_COLUMNS = ["representation", "layer", "classifier", "split", "true", "predicted", "count"]


def _load(part):
    return part() if isinstance(part, Callable) else part


def evaluate_representation(features: dict, params: dict, representation: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every layer of one representation through every configured classifier."""
    if not features:  # e.g. VGG16 without an ImageNet weights file: left out, and said so
        log.warning("representation %r produced no feature tables; it is left out of the results", representation)
        return pd.DataFrame(columns=RESULT_COLUMNS), pd.DataFrame(columns=CONFUSION_COLUMNS)
    results, confusion = [], []
    for layer in sorted(features):
        # a network's own predictions are scored as they are; every other layer by the classifier zoo
        classifiers = {"end_to_end": {}} if layer == "end_to_end" else params["classifiers"]
        r, c = evaluate_features(
            _load(features[layer]),
            representation=representation,
            layer=layer,
            classifiers=classifiers,
            seeds=params.get("seeds", [0]),
            splits=params.get("splits", ["train", "test1", "test2", "test3", "test4"]),
            cv_folds=int(params.get("cv_folds", 5)),
        )
        results.append(r)
        confusion.append(c)
    return pd.concat(results, ignore_index=True), pd.concat(confusion, ignore_index=True)


def _label_name(label, names) -> str:
    """Class name of an integer label, or the label itself when it has none."""
    if isinstance(label, (int, np.integer)) and 0 <= int(label) < len(names):
        return names[int(label)]
    return str(label)


def build_report(params: dict, *tables: pd.DataFrame):
    """Combine all representations: CSV table, Markdown Table 3, figures and MLflow metrics."""
    half = len(tables) // 2
    results = pd.concat([t for t in tables[:half] if len(t)], ignore_index=True)
    confusion = pd.concat([t for t in tables[half:] if len(t)], ignore_index=True)
    best = select_best(results)
    keys = ["representation", "layer", "classifier"]
    results["selected_by_training_cv"] = results.set_index(keys).index.isin(best.set_index(keys).index)
    # the published column only makes sense on the real COOS-7 files (conf/coos7 sets it)
    reference = coos7_published_reference() if params.get("published_reference") else None
    markdown = "# COOS benchmark\n\n" + benchmark_markdown(results, reference)
    markdown += "\nBest layer/classifier per representation by Training cross-validation:\n\n"
    markdown += "\n".join(
        f"- {r.representation}: {r.layer} / {r.classifier} (CV error {100 * r.cv_balanced_error:.1f} %)"
        for r in best.itertuples()
    ) + "\n"
    names = params.get("class_names") or list(COOS7_CLASSES)
    mats = {}
    for r in best.itertuples():
        for s in params.get("confusion_splits", ["test3", "test4"]):
            sub = confusion[(confusion.representation == r.representation) & (confusion.layer == r.layer)
                            & (confusion.classifier == r.classifier) & (confusion.split == s)]
            if len(sub):
                labels = sorted(set(sub["true"]))
                cm = sub.pivot_table(index="true", columns="predicted", values="count", aggfunc="sum")
                cm = cm.reindex(index=labels, columns=labels, fill_value=0).to_numpy()
                mats[f"{r.representation}/{r.layer}/{r.classifier} - {s}"] = cm
    label_names = [_label_name(k, names) for k in sorted(set(confusion["true"]))]
    conf_fig = confusion_figure(mats, label_names, "Confusion on the shifted test sets (best layer/classifier by Training CV)",
                                ncols=max(1, len(params.get("confusion_splits", ["test3", "test4"]))))
    err_fig = error_by_split_figure(results, highlight=best)
    metrics = {
        f"coos/{r.representation}_{r.layer}/{r.classifier}/{r.split}/balanced_error": {"value": float(r.balanced_error), "step": 0}
        for r in results.itertuples()
    }
    sensitivity = per_class_sensitivity_table(confusion)
    sensitivity["label_name"] = [_label_name(k, names) for k in sensitivity["label"]]
    return results, markdown, conf_fig, err_fig, metrics, sensitivity
