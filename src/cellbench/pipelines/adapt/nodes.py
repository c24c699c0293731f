"""Adapt node: validate the ``adapt`` section, load the registered CODA model, adapt it on each unit
of the new cells (``cellbench.adaptation.online``), then register every adapted model as a new
version tagged with its unit; nothing is registered unless every unit adapted."""

from __future__ import annotations

import logging
import tempfile
import time

import numpy as np
import pandas as pd

from cellbench.crops import Crops

log = logging.getLogger(__name__)

DATASET = "coda_model"  # the artefact's name in the registered inference pipeline


def adapt_online(crops: Crops, params: dict):
    """``(predictions, report, MLflow metrics)``: per cell the unit, the class predicted before and
    after and the registered version; per unit the before / after scores of ``shift_report``."""
    import mlflow

    from cellbench.adaptation.online import AdaptConfig, adapt, adaptation_units, check_crops, shift_report
    from cellbench.training import resolve_device

    from .._models import load_artefact, register_artefact

    config = AdaptConfig.from_params(params, "adapt")
    meta = crops.metadata.reset_index(drop=True)
    units = adaptation_units(meta, config)  # an empty selection fails here, before the model is loaded
    artefact, version = load_artefact(config.model, DATASET)
    check_crops(artefact, crops, "adapt crops")
    cols = config.columns
    device = resolve_device("auto")
    adapted, reports, predictions = [], [], []
    for k, (unit, rows) in enumerate(units, 1):
        t0 = time.perf_counter()
        images = np.asarray(crops.take(rows).images, dtype=np.float32)
        part = meta.iloc[rows]
        new, _ = adapt(artefact, images, config.method, config.dino, config.seed, device,
                       treatment=part[cols.treatment].to_numpy() if cols.treatment else None,
                       plate=part[cols.plate].to_numpy(), unit=unit)
        labels = part[cols.label].astype(str).to_numpy() if cols.label else None
        scores, before, after = shift_report(artefact, new, images, labels)
        classes = np.asarray(artefact["classes"])
        reports.append({"unit": unit, "method": config.method, "granularity": config.granularity, **scores,
                        "seconds": time.perf_counter() - t0})
        predictions.append(part[[c for c in part.columns if c.startswith("Metadata_")]].assign(
            Metadata_AdaptUnit=unit, Predicted_before=classes[before.argmax(1)], Predicted_after=classes[after.argmax(1)],
            **{f"Prob_{c}": after[:, i] for i, c in enumerate(classes)}))
        adapted.append((unit, new))
        log.info("adapt %d/%d: %s %s on %s (%d cells) in %.0f s: %s", k, len(units), config.method.upper(),
                 config.granularity, unit, len(rows), time.perf_counter() - t0,
                 ", ".join(f"{key} {value:.3f}" for key, value in scores.items() if isinstance(value, float)))
    report = pd.DataFrame(reports)
    versions = {}
    if config.register and mlflow.active_run():
        with tempfile.TemporaryDirectory() as folder:
            for unit, new in adapted:
                versions[unit] = register_artefact(
                    new, DATASET, "coda", f"adapted_{_safe(unit)}", folder,
                    {"cellbench.adapted_on": unit, "cellbench.adapted_from": f"{version.name}/{version.version}",
                     "cellbench.method": config.method, "cellbench.granularity": config.granularity,
                     "cellbench.source": artefact.get("source", "")})
        mlflow.set_tags({"cellbench.adapt.model_uri": config.model, "cellbench.adapt.model_name": version.name,
                         "cellbench.adapt.model_version": version.version})
    report.insert(1, "registered_version", [versions.get(u, "") for u in report["unit"]])
    table = pd.concat(predictions, ignore_index=True)
    table["Metadata_ModelVersion"] = table["Metadata_AdaptUnit"].map(versions).fillna("")
    metrics = {f"adapt/{_safe(r['unit'])}/{key}": [{"step": 0, "value": float(r[key])}]
               for r in reports for key, value in r.items() if isinstance(value, float) and key != "seconds"}
    return table, report, metrics


def _safe(unit: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(unit))
