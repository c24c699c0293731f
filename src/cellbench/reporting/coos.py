"""The COOS benchmark report: one results table over representations, the Markdown Table 3, the
confusion matrices of the chosen rows on the shifted splits, the error-by-split figure, the
per-class sensitivity table and the MLflow metrics."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from cellbench.benchmark import select_best
from cellbench.simulate import COOS7_CLASSES

from .figures import confusion_figure, error_by_split_figure
from .tables import benchmark_markdown, coos7_published_reference, per_class_sensitivity_table

KEYS = ["representation", "layer", "classifier"]


class CoosReport(NamedTuple):
    results: pd.DataFrame
    markdown: str
    confusion_figure: object
    error_figure: object
    metrics: dict
    sensitivity: pd.DataFrame


def label_name(label, names) -> str:
    """Class name of an integer label, or the label itself when it has none."""
    if isinstance(label, (int, np.integer)) and 0 <= int(label) < len(names):
        return names[int(label)]
    return str(label)


def confusion_matrices(confusion: pd.DataFrame, best: pd.DataFrame, splits) -> dict[str, np.ndarray]:
    """``{"<rep>/<layer>/<classifier> - <split>": counts}`` of each chosen row on each split."""
    mats = {}
    for r in best.itertuples():
        for s in splits:
            sub = confusion[(confusion.representation == r.representation) & (confusion.layer == r.layer)
                            & (confusion.classifier == r.classifier) & (confusion.split == s)]
            if len(sub):
                labels = sorted(set(sub["true"]))
                cm = sub.pivot_table(index="true", columns="predicted", values="count", aggfunc="sum")
                mats[f"{r.representation}/{r.layer}/{r.classifier} - {s}"] = \
                    cm.reindex(index=labels, columns=labels, fill_value=0).to_numpy()
    return mats


def coos_report(results: list[pd.DataFrame], confusion: list[pd.DataFrame], confusion_splits,
                class_names=None, published_reference: bool = False) -> CoosReport:
    """Combine every representation's results and confusion tables; the best (layer, classifier)
    per representation is chosen by Training CV only (``selected_by_training_cv``)."""
    results = pd.concat([t for t in results if len(t)], ignore_index=True)
    confusion = pd.concat([t for t in confusion if len(t)], ignore_index=True)
    best = select_best(results)
    results["selected_by_training_cv"] = results.set_index(KEYS).index.isin(best.set_index(KEYS).index)
    # the published column only makes sense on the real COOS-7 files (conf/coos7 sets it)
    reference = coos7_published_reference() if published_reference else None
    markdown = "# COOS benchmark\n\n" + benchmark_markdown(results, reference)
    markdown += "\nBest layer/classifier per representation by Training cross-validation:\n\n"
    markdown += "\n".join(f"- {r.representation}: {r.layer} / {r.classifier} (CV error {100 * r.cv_balanced_error:.1f} %)"
                          for r in best.itertuples()) + "\n"
    names = list(class_names or COOS7_CLASSES)
    label_names = [label_name(k, names) for k in sorted(set(confusion["true"]))]
    conf_fig = confusion_figure(confusion_matrices(confusion, best, confusion_splits), label_names,
                                "Confusion on the shifted test sets (best layer/classifier by Training CV)",
                                ncols=max(1, len(confusion_splits)))
    err_fig = error_by_split_figure(results, highlight=best)
    metrics = {f"coos/{r.representation}_{r.layer}/{r.classifier}/{r.split}/balanced_error":
               {"value": float(r.balanced_error), "step": 0} for r in results.itertuples()}
    sensitivity = per_class_sensitivity_table(confusion)
    sensitivity["label_name"] = [label_name(k, names) for k in sensitivity["label"]]
    return CoosReport(results, markdown, conf_fig, err_fig, metrics, sensitivity)
