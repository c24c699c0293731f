"""``conf/base`` parameters for the benchmark scripts (read from the repository, whatever the cwd)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def base_params(name: str) -> dict:
    """The ``name`` section of ``conf/base/parameters_<name>.yml`` (e.g. ``evaluation``)."""
    path = ROOT / "conf" / "base" / f"parameters_{name}.yml"
    return yaml.safe_load(path.read_text())[name]


def merge(base: dict, over: dict) -> dict:
    """``over`` deep-merged into ``base`` (Kedro's soft merge of an environment over conf/base)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def env_params(name: str, env: str | None = None) -> dict:
    """The ``name`` section of conf/base with conf/<env>'s ``parameters_<name>.yml`` merged over it."""
    params = base_params(name)
    path = ROOT / "conf" / str(env) / f"parameters_{name}.yml"
    if env and path.is_file():
        params = merge(params, (yaml.safe_load(path.read_text()) or {}).get(name, {}))
    return params


def kedro_run_in_copy(project: Path, pipeline: str, params: list[str]) -> Path:
    """``kedro run --pipelines=<pipeline> --params=...`` in a fresh copy of the project at
    ``project`` (conf/ without local/, pyproject.toml; its own MLflow sqlite store and data
    folders, so runs never share a folder), logging to ``project/kedro_run.log``. Returns the
    project folder; raises with the end of the log when the run fails."""
    import os
    import shutil
    import subprocess
    import sys

    shutil.copytree(ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir(exist_ok=True)
    (project / "src").mkdir(exist_ok=True)
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    env = {**os.environ, "CELLBENCH_MLFLOW_URI": f"sqlite:///{project / 'mlflow.db'}"}
    log = project / "kedro_run.log"
    with open(log, "w") as fh:
        done = subprocess.run([sys.executable, "-m", "kedro", "run", f"--pipelines={pipeline}",
                               f"--params={','.join(params)}"], cwd=project, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{pipeline} failed in {project}; see the end of {log}:\n"
                           + "\n".join(log.read_text().splitlines()[-20:]))
    return project


def included_tables(specs: list[str]):
    """``FILE:SEED`` tables already produced (e.g. the default run, seed 0), each with a
    ``sim_seed`` column, for the seed scripts' ``--include``."""
    import pandas as pd

    tables = []
    for spec in specs:
        path, seed = spec.rsplit(":", 1)
        tables.append(pd.read_csv(path).assign(sim_seed=int(seed)))
    return tables
