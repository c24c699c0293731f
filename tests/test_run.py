"""One real ``KedroSession`` run of ``coos_benchmark`` on tiny simulated data, tracked in MLflow."""

import shutil
from pathlib import Path

import mlflow
import pandas as pd
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

ROOT = Path(__file__).resolve().parents[1]


def test_coos_benchmark_session(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()  # cellbench itself is the installed package
    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("CELLBENCH_MLFLOW_URI", f"sqlite:///{db}")
    monkeypatch.chdir(project)
    bootstrap_project(project)
    extra = {
        "ingestion": {"simulation": {"size": 0.003}},
        "representation": {"texture": {"distances": [1, 4]}},
        "evaluation": {"seeds": [0], "cv_folds": 3,
                       "classifiers": {"knn": {"n_neighbors": 11}, "random_forest": {"n_iter": 1, "cv": 3, "n_jobs": 1}}},
    }
    with KedroSession.create(project_path=project, runtime_params=extra) as session:
        session.run(pipeline_names=["coos_benchmark"])

    results = pd.read_csv(project / "data/08_reporting/coos_benchmark_results.csv")
    assert set(results.split) == {"train", "test1", "test2", "test3", "test4"}
    assert (project / "data/04_feature/texture/haralick.parquet").is_file()
    for png in ("coos_qc_montage.png", "coos_confusion_test3_test4.png", "coos_error_by_split.png"):
        assert (project / "data/08_reporting" / png).stat().st_size > 10_000

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    runs = mlflow.search_runs(experiment_names=["cellbench"])
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["params.ingestion.simulation.size"] == "0.003"
    assert 0 <= run["metrics.coos/texture_haralick/knn/test4/balanced_error"] <= 1
    arts = {a.path for a in mlflow.tracking.MlflowClient().list_artifacts(run.run_id)}
    assert {"coos_benchmark_results.csv", "coos_benchmark_results.md", "coos_qc_montage.png"} <= arts
