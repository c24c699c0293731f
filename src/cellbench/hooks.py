"""Project hooks: every parameter section is validated once the run's configuration is known
(``--env`` and ``--params`` merged), before MLflow starts a run and before any node does work."""

from __future__ import annotations

import logging
import os

from kedro.framework.hooks import hook_impl

from cellbench.parameters import validate_parameters

log = logging.getLogger(__name__)


class ValidateParameters:
    """Builds the typed configuration of every section (``cellbench.parameters.SECTIONS``); an
    unknown or misspelt key, a missing one or a value of the wrong kind stops the run with a
    ``ConfigError`` naming its full path."""

    @hook_impl
    def after_context_created(self, context) -> None:
        sections = validate_parameters(context.params)
        log.info("parameters validated: %s", ", ".join(sorted(sections)))


class DistributedRun:
    """``torchrun --nproc_per_node=N --no-python kedro run ...``: every process runs the pipeline
    (the training loops split each global batch over the processes, ``cellbench.training.distributed``);
    only rank 0 writes. On the other ranks every output of the pipeline is kept in memory, and
    kedro-mlflow is switched off in ``settings.py``, so files and the MLflow run are written once."""

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        rank = int(os.environ.get("RANK", "0"))
        if rank == 0:
            return
        from kedro.io import MemoryDataset

        for name in pipeline.all_outputs():
            catalog[name] = MemoryDataset(copy_mode="assign")
        log.info("rank %d of %s: outputs kept in memory; rank 0 writes", rank, os.environ.get("WORLD_SIZE"))
