"""Train the registered CODA dual model: validate both sections, call ``cellbench.adaptation.online``."""

from __future__ import annotations

from cellbench.crops import Crops

from .._outputs import metric_histories


def train_coda_model(crops: Crops, da_params: dict, params: dict):
    """``(artefact, metric histories)`` of the dual model trained on ``coda_model.source``."""
    from cellbench.adaptation.experiment import labelled_cells
    from cellbench.adaptation.online import CodaModelConfig, train_source_model
    from cellbench.representations.coda import CodaConfig
    from cellbench.training import resolve_device

    config = CodaModelConfig.from_params(params, "coda_model")
    da = CodaConfig.from_params(da_params, "domain_adaptation")
    images, meta, y, classes = labelled_cells(crops, da)
    present = sorted(meta[da.columns.source].astype(str).unique())
    if config.source not in present:
        raise ValueError(f"coda_model.source: {config.source!r} is not a source of the crops "
                         f"(column {da.columns.source}: {present})")
    artefact, histories = train_source_model(images, meta, y, classes, config.source, da, config.pairs, config.seed,
                                             config.reference_cells, resolve_device(da.device))
    flat = {k: v for name, h in histories.items() for k, v in metric_histories(f"coda/{name}", h).items()}
    return artefact, flat
