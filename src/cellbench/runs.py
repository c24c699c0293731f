"""One ``kedro run`` per project folder at a time, and what a killed run left behind.

* :func:`acquire_run_lock`: an exclusive ``flock`` on ``<project>/.cellbench-run.lock``, taken
  when a run starts and released by the operating system when the process ends, however it ends
  (a SIGKILL included). A second run in the same folder stops at once with :class:`RunLocked`,
  naming the process that holds the folder.
* :func:`mark_killed_runs`: MLflow runs of this project folder still marked RUNNING when a new
  run holds the lock can only belong to killed processes; they are set to KILLED.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import logging
import os
import socket
import sys
from pathlib import Path

log = logging.getLogger(__name__)
LOCK_NAME = ".cellbench-run.lock"
PROJECT_TAG = "cellbench.project"


class RunLocked(RuntimeError):
    """Another run holds the project folder."""


def acquire_run_lock(project: Path):
    """The open, exclusively locked lock file of ``project`` (keep it open for the whole run), or
    :class:`RunLocked` naming the holder."""
    path = Path(project) / LOCK_NAME
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        try:
            holder = json.loads(handle.read() or "{}")
        except ValueError:
            holder = {}
        handle.close()
        raise RunLocked(
            f"another kedro run is using the project folder {Path(project).resolve()} (pid {holder.get('pid', '?')}, "
            f"started {holder.get('started', '?')}: {holder.get('command', '?')}). Two runs in one folder would "
            "overwrite each other's data/ and MLflow records; wait for it to finish, or run from a copy of the "
            f"project. The lock ({path}) is released when that process ends.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": datetime.datetime.now().isoformat(timespec="seconds"),
                             "command": " ".join(sys.argv)}))
    handle.flush()
    return handle


def release_run_lock(handle) -> None:
    if handle is not None and not handle.closed:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def mark_killed_runs(project: Path) -> list[str]:
    """Set every RUNNING MLflow run tagged with this project folder to KILLED (call it only while
    holding the run lock: then none of them can be alive). Returns their ids."""
    import mlflow

    client = mlflow.tracking.MlflowClient()
    folder = str(Path(project).resolve())
    try:
        runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                  filter_string=f"attributes.status = 'RUNNING' and tags.`{PROJECT_TAG}` = '{folder}'")
    except Exception as exc:  # a store that cannot be searched must not stop the run
        log.warning("could not look for runs left RUNNING by killed processes: %s", exc)
        return []
    for run in runs:
        client.set_terminated(run.info.run_id, status="KILLED")
        log.warning("MLflow run %s was left RUNNING by a killed process (pid %s); marked KILLED", run.info.run_id,
                    run.data.tags.get("cellbench.pid", "?"))
    return [r.info.run_id for r in runs]


def tag_active_run(project: Path) -> None:
    """Tag the active MLflow run with the project folder, pid and host (what ``mark_killed_runs`` reads)."""
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.set_tags({PROJECT_TAG: str(Path(project).resolve()), "cellbench.pid": str(os.getpid()),
                         "cellbench.host": socket.gethostname()})


def _local_path(dataset) -> Path | None:
    """The local file or folder a dataset writes (looking through kedro-mlflow's wrapper)."""
    for attr in ("_filepath", "_path", "_normalized_path"):
        value = getattr(dataset, attr, None)
        if value:
            return Path(str(value))
    return None


def run_summary(project: Path, outputs, catalog, pipelines) -> str:
    """What a finished run produced: its Markdown result tables (printed whole, up to 40 lines
    each), its figures and tables under ``data/08_reporting``, and the MLflow run with the command
    that opens it."""
    import mlflow

    project = Path(project).resolve()
    reports, tables = [], []
    for name in sorted(outputs):
        try:
            path = _local_path(catalog.get(name))
        except Exception:
            continue
        if path is None or not path.exists():
            continue
        path = path if path.is_absolute() else project / path
        try:
            shown = path.relative_to(project)
        except ValueError:
            shown = path
        if "08_reporting" in path.parts:
            (tables if path.suffix == ".md" else reports).append(shown)
    lines = [f"== cellbench: {', '.join(p for p in pipelines if p) or 'run'} finished =="]
    for md in tables:
        body = (project / md).read_text().splitlines()
        lines += ["", f"-- {md}", *body[:40], *(["..."] if len(body) > 40 else [])]
    if reports:
        lines += ["", "Figures and tables:", *[f"  {p}" for p in reports]]
    run = mlflow.active_run()
    if run is not None:
        uri = mlflow.get_tracking_uri()
        lines += ["", f"MLflow run {run.info.run_id} (experiment {run.info.experiment_id}) in {uri}",
                  f"  open it: mlflow ui --backend-store-uri {uri} --host 127.0.0.1  "
                  f"(then http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id})"]
    return "\n".join(lines)
