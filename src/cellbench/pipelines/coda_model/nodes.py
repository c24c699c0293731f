"""Train the registered CODA dual model: validate both sections, call ``cellbench.adaptation.online``."""

from __future__ import annotations

from cellbench.crops import Crops

from .._outputs import metric_histories


def train_coda_model(crops: Crops, da_params: dict, params: dict):
    """``(artefact, metric histories)`` of the dual model trained on ``coda_model.source``."""
    from cellbench.adaptation.online import CodaModelConfig, train_registered_model
    from cellbench.representations.coda import CodaConfig
    from cellbench.training import resolve_device

    config = CodaModelConfig.from_params(params, "coda_model")
    da = CodaConfig.from_params(da_params, "domain_adaptation")
    artefact, histories = train_registered_model(crops, da, config, resolve_device(da.device))
    return artefact, {k: v for name, h in histories.items() for k, v in metric_histories(f"coda/{name}", h).items()}
