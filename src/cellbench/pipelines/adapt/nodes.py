"""Adapt node: validate the ``adapt`` section, load the registered CODA model, adapt it on each unit
of the new cells (``cellbench.adaptation.online``), then register every adapted model as a new
version tagged with its unit; nothing is registered unless every unit adapted."""

from __future__ import annotations

from cellbench.crops import Crops


def adapt_online(crops: Crops, params: dict):
    """``(predictions, report, MLflow metrics)``: per cell the unit, the class predicted before and
    after and the registered version; per unit the before / after scores of ``shift_report``."""
    import mlflow

    from cellbench.adaptation.online import AdaptConfig, adapt_cells, adaptation_units, with_versions
    from cellbench.training import resolve_device

    from .._models import load_artefact, register_adapted

    config = AdaptConfig.from_params(params, "adapt")
    units = adaptation_units(crops.metadata.reset_index(drop=True), config)  # no cells: fails before loading
    artefact, version = load_artefact(config.model, "coda_model")
    table, report, adapted = adapt_cells(artefact, crops, units, config, resolve_device("auto"))
    registering = config.register and mlflow.active_run() is not None
    versions = register_adapted(adapted, artefact, version, config) if registering else {}
    return with_versions(table, report, versions)
