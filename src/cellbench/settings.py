"""Kedro project settings for cellbench."""

from omegaconf.resolvers import oc

from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # lets conf/base/mlflow.yml read CELLBENCH_MLFLOW_URI (falls back to ./mlflow.db)
    "custom_resolvers": {"oc.env": oc.env},
    # an environment (paper, coos7, fov, bbbc021) overrides only the keys it names, deep inside
    # nested parameters; the catalog is merged entry by entry
    "merge_strategy": {"parameters": "soft", "catalog": "soft"},
}

from cellbench.hooks import (DistributedRun, RunLock, RunSummary, TrackRun, ValidateParameters,  # noqa: E402
                             secondary_rank)

# parameters are validated against their typed configurations before anything runs; one run per
# project folder (a lock, temporaries of killed saves cleaned, killed MLflow runs marked KILLED);
# under torchrun only rank 0 writes outputs and tracks the run in MLflow; the end of a run prints
# its result tables, where its figures are and the MLflow run to open
HOOKS = (ValidateParameters(), RunLock(), DistributedRun(), TrackRun(), RunSummary())
if secondary_rank():
    DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")
