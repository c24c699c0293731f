"""Nothing lost, nothing silent: kills at every save stage of every dataset kind, kill and resume
of real ``kedro run`` processes (identical results), and two runs in one project folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from cellbench.datasets.atomic import clean_temporaries
from tests.test_run import copy_project

ROOT = Path(__file__).resolve().parents[1]

# -- every dataset kind, killed while saving (a child process SIGKILLs itself at the fault point) ----
WRITERS = {
    "crop_store": ("cellbench.datasets.CropStoreDataset", "filepath", "crops"),
    "feature_tables": ("cellbench.datasets.FeatureTablesDataset", "path", "features"),
    "torch_model": ("cellbench.datasets.TorchModelDataset", "filepath", "model.pt"),
    "parquet": ("cellbench.datasets.ParquetDataset", "filepath", "table.parquet"),
    "csv": ("cellbench.datasets.CSVDataset", "filepath", "table.csv"),
    "figure": ("cellbench.datasets.MatplotlibDataset", "filepath", "figure.png"),
    "text": ("cellbench.datasets.TextDataset", "filepath", "report.md"),
}

def _write(kind: str, path: str, version: int) -> None:
    """Save version ``version`` of a small output of dataset kind ``kind`` at ``path``."""
    from kedro.io import AbstractDataset

    cls, arg, _ = WRITERS[kind]
    ds = AbstractDataset.from_config("x", {"type": cls, arg: str(path)})
    table = pd.DataFrame({"Metadata_v": [version] * 4, "f": np.arange(4.0) * version})
    if kind == "crop_store":
        from cellbench.crops import Crops

        data = Crops(np.full((4, 2, 8, 8), version, np.uint16), table[["Metadata_v"]])
    elif kind == "feature_tables":
        data = {"conv1": table, "conv2": table * 2}
    elif kind == "torch_model":
        import torch

        data = {"model": "x", "config": {}, "state_dict": {"w": torch.full((3,), float(version))}}
    elif kind in ("parquet", "csv"):
        data = table
    elif kind == "figure":
        import matplotlib.pyplot as plt

        data = plt.figure()
        plt.plot([0, version])
    else:
        data = f"version {version}\n"
    ds.save(data)


def _killed_save(kind: str, path: Path, version: int, kill: str) -> int:
    """``_write`` in a child process that SIGKILLs itself at the fault point ``kill``."""
    env = {**os.environ, "CELLBENCH_KILL_DURING_SAVE": kill, "MPLBACKEND": "Agg"}
    code = f"from tests.test_resilience import _write; _write({kind!r}, {str(path)!r}, {version})"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True).returncode


def _version(kind: str, path: Path) -> int:
    from kedro.io import AbstractDataset

    if kind == "figure":  # not loadable by its dataset: a whole PNG opens
        import matplotlib.pyplot as plt

        return int(plt.imread(path).shape[0] > 0) - 2
    cls, arg, _ = WRITERS[kind]
    data = AbstractDataset.from_config("x", {"type": cls, arg: str(path)}).load()
    if kind == "crop_store":
        return int(np.asarray(data.images).max())
    if kind == "feature_tables":
        layers = {k: (v() if callable(v) else v) for k, v in data.items()}
        assert set(layers) == {"conv1", "conv2"}
        return int(layers["conv1"]["Metadata_v"].iloc[0])
    if kind == "torch_model":
        return int(data["state_dict"]["w"][0])
    if kind in ("parquet", "csv"):
        assert len(data) == 4
        return int(data["Metadata_v"].iloc[0])
    return int(data.split()[1])


KILLS = [(kind, "") for kind in sorted(WRITERS)] + [("crop_store", ":swap"), ("feature_tables", ":swap")]


@pytest.mark.parametrize("kind, stage", KILLS)
def test_a_kill_during_a_save_keeps_the_previous_output_whole(tmp_path, kind, stage):
    """Killed after writing the new output (or, for a folder, between moving the old one aside and
    moving the new one in): the next run's clean-up leaves the previous output, whole."""
    name = WRITERS[kind][2]
    path = tmp_path / "data" / name
    _write(kind, path, 1)
    before = _version(kind, path)
    assert _killed_save(kind, path, 2, kill=f"{name}{stage}") == -signal.SIGKILL
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")], "the killed save left its temporary"
    if stage == ":swap":
        assert not path.exists()  # the old folder moved aside, the new one not yet in place
    touched = clean_temporaries(tmp_path / "data")  # what the next run does first
    assert touched and not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    assert _version(kind, path) == before  # the previous output, whole
    _write(kind, path, 2)
    assert kind == "figure" or _version(kind, path) == 2


# -- real kedro runs ---------------------------------------------------------------------------------
QUICK = """
ingestion:
  simulation: {size: 0.003}
representation:
  texture: {distances: [1, 4]}
  deeploc: {width: 0.05, batch_size: 16, steps: 3, eval_every: 3}
  pci: {width: 0.05, batch_size: 16, steps: 3, min_cells_per_group: 2}
  autoencoder: {width: 0.05, batch_size: 16, steps: 3}
evaluation:
  seeds: [0]
  cv_folds: 3
  classifiers: {knn: {n_neighbors: 11}, random_forest: {n_iter: 1, cv: 3, n_jobs: 1}}
"""


def _project(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).mkdir(parents=True)
    project = copy_project(tmp_path / name)
    (project / "conf" / "local" / "parameters_quick.yml").write_text(QUICK)
    return project


def _env(project: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "CELLBENCH_KILL_DURING_SAVE"}
    return {**env, "KEDRO_DISABLE_TELEMETRY": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "COLUMNS": "200",
            "CELLBENCH_MLFLOW_URI": f"sqlite:///{project / 'mlflow.db'}", **extra}


def _kedro(project: Path, *args, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kedro", "run", "--pipelines=coos_benchmark", *args], cwd=project,
                          env=_env(project, **env), capture_output=True, text=True, timeout=600)


def _results(project: Path) -> pd.DataFrame:
    return pd.read_csv(project / "data/08_reporting/coos_benchmark_results.csv")


def _no_corrupt_output(project: Path) -> None:
    """Every output under data/ is whole: Parquet footers read, crop stores load (manifest)."""
    import pyarrow.parquet as pq

    from cellbench.datasets import CropStoreDataset

    for path in (project / "data").rglob("*.parquet"):
        if not any(part.startswith(".") for part in path.relative_to(project).parts) and path.parent.suffix != ".zarr":
            pq.read_metadata(path)
    for store in (project / "data/02_intermediate").glob("*_crops"):
        CropStoreDataset(str(store)).load()


def _runs(project: Path) -> list:
    """The project's MLflow runs, read with a client of its own (the process-wide tracking URI, and
    the run stack other session tests leave in this process, are not touched)."""
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids)


def _statuses(project: Path) -> list[str]:
    return sorted(r.info.status for r in _runs(project))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    project = _project(tmp_path_factory.mktemp("reference"), "ref")
    done = _kedro(project)
    assert done.returncode == 0, done.stderr[-3000:]
    return _results(project)


def test_kill_mid_save_then_resume_is_identical(tmp_path, reference):
    """SIGKILL while the texture tables are saved: nothing corrupt; ``--only-missing-outputs``
    reruns only what is missing and the results equal an uninterrupted run's; the killed MLflow run
    is marked KILLED."""
    project = _project(tmp_path, "p")
    killed = _kedro(project, CELLBENCH_KILL_DURING_SAVE="texture")
    assert killed.returncode == -signal.SIGKILL
    assert not (project / "data/04_feature/texture").exists()
    assert list((project / "data/04_feature").glob(".texture.tmp-*"))
    _no_corrupt_output(project)
    resumed = _kedro(project, "--only-missing-outputs")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "ingest_coos_crops" not in resumed.stderr.split("Running node")[1:]  # the crops were kept
    assert not list((project / "data").rglob(".*.tmp-*"))
    pd.testing.assert_frame_equal(_results(project), reference)
    assert _statuses(project) == ["FINISHED", "KILLED"]


def test_one_run_per_folder_then_kill_mid_training_and_rerun(tmp_path, reference):
    """Run A holds the folder; run B (other parameters) stops at once, naming A, and is never
    recorded; A is then killed by PID while it trains; run C completes and equals an uninterrupted
    run; MLflow holds A as KILLED and C as FINISHED."""
    project = _project(tmp_path, "p")
    first = subprocess.Popen([sys.executable, "-m", "kedro", "run", "--pipelines=coos_benchmark"], cwd=project,
                             env=_env(project), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = ""
    for line in first.stdout:  # wait until A trains (it holds the lock from its start)
        seen += line
        if "DeepLoc step" in line or "PCI step" in line or "Autoencoder step" in line:
            break
    assert first.poll() is None, seen[-3000:]
    assert f'"pid": {first.pid}' in (project / ".cellbench-run.lock").read_text()
    start = time.time()
    second = subprocess.run([sys.executable, "-m", "kedro", "run", "--pipelines=coos_benchmark",
                             "--params=ingestion.simulation.seed=1"], cwd=project, env=_env(project),
                            capture_output=True, text=True, timeout=300)
    assert second.returncode != 0 and time.time() - start < 60
    output = second.stdout + second.stderr
    assert "another kedro run is using the project folder" in output and str(first.pid) in output
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    _no_corrupt_output(project)
    again = _kedro(project)
    assert again.returncode == 0, again.stderr[-3000:]
    pd.testing.assert_frame_equal(_results(project), reference)  # seed 0's results, not seed 1's
    assert _statuses(project) == ["FINISHED", "KILLED"]
    assert {r.data.params["ingestion.simulation.seed"] for r in _runs(project)} == {"0"}
