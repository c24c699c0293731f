"""Project hooks: every parameter section is validated once the run's configuration is known
(``--env`` and ``--params`` merged), before MLflow starts a run and before any node does work;
one run per project folder at a time, with what a killed run left behind cleaned up first."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from kedro.framework.hooks import hook_impl

from cellbench.parameters import validate_parameters

log = logging.getLogger(__name__)


class ValidateParameters:
    """Builds the typed configuration of every section (``cellbench.parameters.SECTIONS``); an
    unknown or misspelt key, a missing one or a value of the wrong kind stops the run with a
    ``ConfigError`` naming its full path."""

    @hook_impl(tryfirst=True)  # before kedro-mlflow reads its configuration
    def after_context_created(self, context) -> None:
        from kedro.framework.project import settings

        from cellbench.config import ConfigError

        conf = Path(context.project_path) / settings.CONF_SOURCE
        env = context.env
        if env and env != "local" and not (conf / env).is_dir():
            known = sorted(p.name for p in conf.iterdir() if p.is_dir() and p.name not in ("base", "local"))
            raise ConfigError(f"--env {env}: there is no configuration environment {conf / env}; the environments "
                              f"of this project are {known}")
        sections = validate_parameters(context.params)
        log.info("parameters validated: %s", ", ".join(sorted(sections)))


class DistributedRun:
    """``torchrun --nproc_per_node=N --no-python kedro run ...``: every process runs the pipeline
    (the training loops split each global batch over the processes, ``cellbench.training.distributed``);
    only rank 0 writes. On the other ranks every output of the pipeline is kept in memory, and
    kedro-mlflow is switched off in ``settings.py``, so files and the MLflow run are written once."""

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        if not secondary_rank():
            return
        from kedro.io import MemoryDataset

        for name in pipeline.all_outputs():
            catalog[name] = MemoryDataset(copy_mode="assign")
        log.info("rank %s of %s: outputs kept in memory; rank 0 writes", os.environ["RANK"], os.environ.get("WORLD_SIZE"))


def _project(run_params) -> Path:
    return Path(run_params.get("project_path") or Path.cwd())


def secondary_rank() -> bool:
    """True in the processes of a ``torchrun`` job other than rank 0 (they write and track nothing)."""
    return int(os.environ.get("RANK", "0")) > 0


class RunLock:
    """Before anything else of a run (``tryfirst``, so before kedro-mlflow starts an MLflow run):
    take the project folder's run lock (a second concurrent run stops here with
    ``cellbench.runs.RunLocked``) and remove the temporaries a killed save left under ``data/``
    (restoring an output killed mid-replacement). The lock is released when the run ends or fails,
    or by the operating system when the process dies. Ranks > 0 of a ``torchrun`` job are part of
    rank 0's run."""

    def __init__(self):
        self._handle = None

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        if secondary_rank():
            return
        from cellbench.datasets.atomic import clean_temporaries
        from cellbench.runs import acquire_run_lock

        project = _project(run_params)
        self._handle = acquire_run_lock(project)
        clean_temporaries(project / "data")

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog) -> None:
        self._release()

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:
        self._release()

    def _release(self) -> None:
        from cellbench.runs import release_run_lock

        release_run_lock(self._handle)
        self._handle = None


class TrackRun:
    """After kedro-mlflow has started the run (``trylast``): runs that killed processes left
    RUNNING in this project are marked KILLED, and the new run is tagged with the project folder,
    pid and host so that the next run can do the same for it."""

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        if secondary_rank():
            return
        from cellbench.runs import mark_killed_runs, tag_active_run

        project = _project(run_params)
        mark_killed_runs(project)
        tag_active_run(project)


class RunSummary:
    """The end of a run says what happened: the result tables it wrote (Markdown, printed), where
    its figures and tables are, and the MLflow run to open (``tryfirst``: before kedro-mlflow
    closes the run)."""

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog) -> None:
        if secondary_rank():
            return
        from cellbench.runs import run_summary

        try:
            text = run_summary(_project(run_params), pipeline.all_outputs(), catalog,
                               run_params.get("pipeline_names") or [run_params.get("pipeline_name")])
        except Exception as exc:  # a summary must never fail a finished run
            log.warning("could not summarise the run: %s", exc)
            return
        print(text, flush=True)
