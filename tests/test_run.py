"""One real ``KedroSession`` run of ``coos_benchmark`` on tiny simulated data, tracked in MLflow."""

import re
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

ROOT = Path(__file__).resolve().parents[1]


_TINY_NET = {"width": 0.05, "batch_size": 16, "steps": 3}
QUICK = {
    "representation": {"texture": {"distances": [1, 4]},
                       "deeploc": {**_TINY_NET, "eval_every": 3}, "pci": {**_TINY_NET, "min_cells_per_group": 2},
                       "autoencoder": dict(_TINY_NET)},
    "evaluation": {"seeds": [0], "cv_folds": 3,
                   "classifiers": {"knn": {"n_neighbors": 11}, "random_forest": {"n_iter": 1, "cv": 3, "n_jobs": 1}}},
}


def run_notebook(name: str) -> dict:
    """Execute ``notebooks/<name>`` (percent-format cells) in the current directory, a project
    that has just run: notebooks read a small run's outputs and cannot rot unseen."""
    import runpy

    import matplotlib

    matplotlib.use("Agg")
    return runpy.run_path(str(ROOT / "notebooks" / name), run_name="__main__")


def copy_project(tmp_path) -> Path:
    """``tmp_path/project``: the project's pyproject.toml and conf (cellbench is the installed package)."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()
    return project


def make_project(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A throw-away copy of the project's conf (cellbench itself is the installed package)."""
    # kedro-mlflow ends its run from the runner's thread, so the calling thread's run stack of an
    # earlier session in this process still holds the (finished) run; drop it before a new session
    while mlflow.active_run():
        mlflow.end_run()
    project = copy_project(tmp_path)
    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("CELLBENCH_MLFLOW_URI", f"sqlite:///{db}")
    monkeypatch.chdir(project)
    bootstrap_project(project)
    return project, db


def test_coos_benchmark_session(tmp_path, monkeypatch):
    project, db = make_project(tmp_path, monkeypatch)
    extra = {"ingestion": {"simulation": {"size": 0.003}}, **QUICK}
    with KedroSession.create(project_path=project, runtime_params=extra) as session:
        session.run(pipeline_names=["coos_benchmark"])

    results = pd.read_csv(project / "data/08_reporting/coos_benchmark_results.csv")
    assert set(results.split) == {"train", "test1", "test2", "test3", "test4"}
    assert (project / "data/04_feature/texture/haralick.parquet").is_file()
    assert {p.name for p in (project / "data/04_feature/pci").iterdir()} == {f"conv{i}.parquet" for i in range(1, 6)}
    assert (project / "data/06_models/deeploc.pt").is_file()
    assert {("deeploc", "end_to_end"), ("deeploc", "fc2"), ("autoencoder", "conv3")} <= set(
        zip(results.representation, results.layer))
    for png in ("coos_qc_montage.png", "coos_confusion_test3_test4.png", "coos_error_by_split.png"):
        assert (project / "data/08_reporting" / png).stat().st_size > 10_000

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    runs = mlflow.search_runs(experiment_names=["cellbench"])
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["params.ingestion.simulation.size"] == "0.003"
    assert 0 <= run["metrics.coos/texture_haralick/knn/test4/balanced_error"] <= 1
    arts = {a.path for a in mlflow.tracking.MlflowClient().list_artifacts(run.run_id)}
    assert {"coos_benchmark_results.csv", "coos_benchmark_results.md", "coos_qc_montage.png", "deeploc.pt"} <= arts
    history = mlflow.tracking.MlflowClient().get_metric_history(run.run_id, "training/pci/train_loss")
    assert [m.step for m in history] == [1, 2, 3]
    notebook = run_notebook("coos_results.py")
    assert len(notebook["results"]) == len(results) and len(notebook["runs"]) == 1


def test_coos7_environment_runs_real_layout_files(tmp_path, monkeypatch, small_coos):
    """COOS7_v1.1_*.hdf5 files in the published layout through ``coos_benchmark --env coos7``."""
    from tests.ingest.test_coos7_tiff import write_coos7

    sizes = write_coos7(tmp_path / "coos7", small_coos)
    project, _ = make_project(tmp_path, monkeypatch)
    extra = {"ingestion": {"coos7": {"path": str(tmp_path / "coos7"), "chunk_cells": 200}}, **QUICK}
    with KedroSession.create(project_path=project, env="coos7", runtime_params=extra) as session:
        session.run(pipeline_names=["coos_benchmark"])
    results = pd.read_csv(project / "data/08_reporting/coos_benchmark_results.csv")
    for (clf, split), n in results.groupby(["classifier", "split"])["n_cells"].first().items():
        assert n == sizes[split], (clf, split)
    assert "(paper " in (project / "data/08_reporting/coos_benchmark_results.md").read_text()
    stored = pd.read_parquet(project / "data/02_intermediate/coos_crops/metadata.parquet")
    assert stored["Metadata_Source"].iloc[0] == "COOS7_v1.1" and len(stored) == sum(sizes.values())


def test_fov_environment_segments_the_real_field(tmp_path, monkeypatch):
    """``kedro run --pipeline=ingestion --env fov``: real field of view -> crops + montage."""
    project, _ = make_project(tmp_path, monkeypatch)
    fov = ROOT / "tests" / "data" / "cellprofiler_example_human"
    with KedroSession.create(project_path=project, env="fov",
                             runtime_params={"ingestion": {"fields": {"path": str(fov)}}}) as session:
        session.run(pipeline_names=["ingestion"])
    meta = pd.read_parquet(project / "data/02_intermediate/fov_crops/metadata.parquet")
    assert 200 <= len(meta) <= 380
    assert (project / "data/08_reporting/fov_crop_montage.png").stat().st_size > 50_000


def test_profiling_bbbc021_environment(tmp_path, monkeypatch):
    """``kedro run --pipeline=profiling --env bbbc021`` on the real Ljosa 2013 profiles, tracked in MLflow."""
    project, db = make_project(tmp_path, monkeypatch)
    shutil.copytree(ROOT / "data" / "01_raw" / "bbbc021_ljosa2013", project / "data" / "01_raw" / "bbbc021_ljosa2013")
    with KedroSession.create(project_path=project, env="bbbc021",
                             runtime_params={"profiling": {"map": {"null_size": 200}}}) as session:
        session.run(pipeline_names=["profiling"])
    table = pd.read_csv(project / "data/08_reporting/bbbc021_moa_matching.csv")
    assert {"variant", "nsc", "nscb", "map_moa"} <= set(table.columns)
    assert {"raw_median", "plate_dmso_zscore_mean", "plate_dmso_zscore_tvn", "plate_dmso_zscore_tvn_coral"} <= set(table.variant)
    assert (table["nsc_n"] == 103).all() and (table["nscb_n"] == 92).all()
    best = table.set_index("variant")
    assert best.loc["plate_dmso_zscore_mean", "nsc"] > best.loc["raw_median", "nsc"] + 0.2
    assert (project / "data/05_model_input/treatment_profiles/plate_dmso_zscore_tvn.parquet").is_file()
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    run = mlflow.search_runs(experiment_names=["cellbench"]).iloc[0]
    assert run["metrics.profiling/plate_dmso_zscore_mean/nsc"] == pytest.approx(best.loc["plate_dmso_zscore_mean", "nsc"])
    assert run["params.profiling.map.null_size"] == "200"
    notebook = run_notebook("profiling_bbbc021.py")
    assert notebook["wells"].shape[0] == 632


def test_treatment_profiling_session(tmp_path, monkeypatch):
    """``kedro run --pipelines=treatment_profiling``: simulated screen -> texture -> wells -> NSC/NSCB."""
    project, db = make_project(tmp_path, monkeypatch)
    sim = {"cells_per_well": 4, "compounds_per_moa": 2, "concentrations": [1.0, 10.0], "replicates": 2,
           "batches_per_source": 3}
    tiny = {"width": 0.125, "steps": 2, "batch_size": 8}
    params = {"treatments": {"ingestion": {"simulation": sim}, "texture": {"distances": [1]},
                             "weak": {n: dict(tiny) for n in ("resnet_plain", "resnet_mixup", "resnet_gru")},
                             "vae": {n: {"steps": 2, "batch_size": 8} for n in ("ae", "vae", "vaeplus")},
                             "profiling": {"map": {"null_size": 100}}}}
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        session.run(pipeline_names=["treatment_profiling"])
    table = pd.read_csv(project / "data/08_reporting/simulated_moa_matching.csv")
    assert set(table.variant) >= {"raw_median", "plate_dmso_zscore_tvn_coral"}
    assert set(table.features) == {"texture", "resnet_plain", "resnet_mixup", "resnet_gru", "ae", "vae", "vaeplus"}
    assert (table.nsc_n == 12 * 2 * 2).all()  # 12 MoAs x 2 compounds x 2 concentrations
    assert set(table.summary) == {"mean", "mean_sd"}
    assert table.replicate_accuracy.between(0, 1).all() and table.group_accuracy.between(0, 1).all()
    sd = table[(table.summary == "mean_sd") & (table.variant == "raw_median")].set_index("features").n_features
    mean = table[(table.summary == "mean") & (table.variant == "raw_median")].set_index("features").n_features
    assert (sd == 2 * mean).all()  # every feature's mean and SD
    md = (project / "data/08_reporting/simulated_moa_table.md").read_text()
    assert "| Mean | Mean +Whitened | Mean+S.D. | Mean+S.D. +Whitened |" in md and "| vaeplus |" in md
    for png in ("treatment_vae_reconstructions.png", "treatment_vae_interpolation.png"):
        assert (project / "data/08_reporting" / png).stat().st_size > 10_000
    assert (project / "data/06_models/treatment_resnet_mixup.pt").is_file()
    wells = pd.read_parquet(project / "data/03_primary/treatment_wells/resnet_gru.parquet")
    assert len(wells) == 3 * 2 * (6 + 16) and wells["Metadata_Control"].sum() == 3 * 2 * 6
    assert (project / "data/08_reporting/treatment_qc_montage.png").stat().st_size > 50_000
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    run = mlflow.search_runs(experiment_names=["cellbench"]).iloc[0]
    assert 0 <= run["metrics.treatments/resnet_plain/mean/plate_dmso_zscore_median/nsc"] <= 1
    assert 0 <= run["metrics.treatments/vaeplus/mean_sd/plate_dmso_zscore_tvn/replicate_accuracy"] <= 1


def test_domain_adaptation_session(tmp_path, monkeypatch):
    """``kedro run --pipelines=domain_adaptation``: JUMP-like sources -> CODA experiment -> matrix, figures, MLflow."""
    project, db = make_project(tmp_path, monkeypatch)
    vit = {"image_size": 16, "patch_size": 8, "dim": 16, "depth": 1, "heads": 2, "drop_path": 0.1}
    params = {"domain_adaptation": {
        "ingestion": {"simulation": {"n_sources": 2, "cells_per_well": 2, "compounds_per_moa": 2,
                                     "moas": ["Actin disruptors", "DNA damage", "Eg5 inhibitors"]}},
        "seeds": [0, 1],
        "dino": {"vit": vit, "head": {"out_dim": 16, "hidden": 16, "bottleneck": 8}, "global_size": 16,
                 "local_size": 8, "n_local": 2, "steps": 2, "batch_size": 16,
                 "mae": {"steps": 2, "decoder_dim": 8}, "ttt": {"steps": 1, "batch_size": 32}},
        "classifier": {"global_size": 16, "steps": 2, "batch_size": 16, "eval_every": 2},
        "adapt": {"steps": 1},
        "granularity": {"source": "source_1", "target": "source_2", "levels": ["source", "plate", "one_plate"]},
        "cka_cells": 32, "umap_cells": 40,
        "pool": {"simulation": {"design": "jump", "seed": 1, "n_sources": 3, "batches_per_source": 1, "replicates": 2,
                                "cells_per_well": 1, "compounds_per_moa": 1, "moas": ["Epithelial"]},
                 "exclude_sources": ["source_1"], "seed": 0, "dino": {"steps": 3}}}}
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        session.run(pipeline_names=["domain_adaptation"])
    pool = torch.load(project / "data/06_models/da_pool_foundation.pt", weights_only=True)
    assert pool["model"] == "vit" and pool["pool"]["sources"] == ["source_2", "source_3"] and pool["pool"]["steps"] == 3
    assert pool["state_dict"]["pos_embed"].shape == (1, 1 + 2 * 2, 16)
    results = pd.read_parquet(project / "data/07_model_output/domain_adaptation/results.parquet")
    # 2 seeds x 2 sources x (2 targets x 4 methods + 1 off-diagonal target x 2 adapted methods)
    assert len(results) == 2 * 2 * (2 * 4 + 2)
    assert set(results.method) == {"supervised", "dual_dino", "dual_cb", "ttt", "oda", "coda"}
    assert results.accuracy.between(0, 1).all() and results.macro_f1.between(0, 1).all()
    assert not ((results.method.isin(["oda", "coda"])) & (results.source == results.target)).any()
    off = results[results.source != results.target]  # the target linear probe: out of source, every method but TTT
    assert off[off.method != "ttt"].probe_accuracy.between(0, 1).all() and off[off.method == "ttt"].probe_accuracy.isna().all()
    summary = pd.read_csv(project / "data/08_reporting/domain_adaptation_matrix.csv")
    assert (summary.n_seeds == 2).all() and summary.accuracy_std.notna().all()
    gran = pd.read_parquet(project / "data/07_model_output/domain_adaptation/granularity.parquet")
    assert set(gran.granularity) == {"source", "plate", "one_plate"} and set(gran.method) == {"oda", "coda"}
    assert (gran.loc[gran.granularity == "plate", "n_units"] == 6).all()  # 2 batches x 3 replicate plates
    cka = pd.read_parquet(project / "data/07_model_output/domain_adaptation/cka.parquet")
    assert cka.cka.between(0, 1 + 1e-9).all()
    report = (project / "data/08_reporting/domain_adaptation.md").read_text()
    assert "CODA" in report and "source_1" in report
    for png in ("domain_adaptation_matrix.png", "domain_adaptation_granularity.png", "domain_adaptation_cka.png",
                "domain_adaptation_umap.png"):
        assert (project / "data/08_reporting" / png).stat().st_size > 10_000
    artefact = torch.load(project / "data/06_models/domain_adaptation.pt", weights_only=True)
    assert any(k.startswith("seed1/source_2-to-source_1/coda/foundation/") for k in artefact["state_dict"])
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    run = mlflow.search_runs(experiment_names=["cellbench"]).iloc[0]
    assert run["metrics.da/coda/source_1-to-source_2/accuracy"] == pytest.approx(
        summary.query("method == 'coda' and source == 'source_1' and target == 'source_2'").accuracy_mean.iloc[0])
    assert "metrics.training/da/seed0/source_1/cb_pretrain/dino_loss" in run.index
    assert "metrics.training/da/pool/dino/dino_loss" in run.index
    notebook = run_notebook("domain_adaptation.py")
    assert set(notebook["gran"].granularity) == {"source", "plate", "one_plate"}


def test_exploration_session(tmp_path, monkeypatch, capsys):
    """``kedro run --pipelines=exploration`` on a small simulated protein library: every
    representation scored on every layer, the figures, the table and the MLflow run."""
    project, db = make_project(tmp_path, monkeypatch)
    net = {"width": 0.05, "batch_size": 16, "steps": 3}
    extra = {"exploration": {
        "ingestion": {"simulation": {"proteins_per_class": 3, "cells_per_image": 8, "variable_cells": 20,
                                     "multi_proteins_per_pair": 2}},
        "analysis": {"n_pairs": 50, "cell_line_pairs": 500},
        "representation": {"texture": {"distances": [1, 4]}, "pci": net, "autoencoder": net,
                           "deeploc": {**net, "eval_every": 3}}}}
    with KedroSession.create(project_path=project, runtime_params=extra) as session:
        session.run(pipeline_names=["exploration"])
    scores = pd.read_csv(project / "data/08_reporting/exploration_scores.csv")
    assert set(zip(scores.representation, scores.layer)) >= {("texture", "haralick"), ("pci", "conv5"),
                                                             ("autoencoder", "conv1"), ("deeploc", "fc2")}
    chosen = scores[scores.chosen]
    assert list(chosen.representation) == ["texture", "pci", "autoencoder", "deeploc"]
    assert list(chosen.layer) == ["haralick", "conv3", "conv3", "fc2"]
    assert chosen["protein_ari"].between(-1, 1).all() and chosen["same_cell_line"].notna().all()
    table = (project / "data/08_reporting/exploration_scores.md").read_text()
    assert "| texture | haralick |" in table and "protein ARI" in table
    for name in ("texture", "pci", "autoencoder", "deeploc"):
        for fig in ("heatmap", "multilocalisation", "clades"):
            assert (project / f"data/08_reporting/exploration/{name}_{fig}.png").stat().st_size > 20_000
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    run = mlflow.search_runs(experiment_names=["cellbench"]).iloc[0]
    assert -1 <= run["metrics.exploration/pci/protein_ari"] <= 1
    assert run["params.exploration.layers.pci"] == "conv3"
    arts = {a.path for a in mlflow.tracking.MlflowClient().list_artifacts(run.run_id)}
    assert {"exploration_scores.csv", "exploration_scores.md", "texture_heatmap.png", "library_pci.pt"} <= arts
    # the end of the run says what happened: the table, where the figures are, the MLflow run to open
    summary = capsys.readouterr().out
    assert "== cellbench: exploration finished ==" in summary and "| texture | haralick |" in summary
    assert "data/08_reporting/exploration/pci_heatmap.png" in summary
    assert f"MLflow run {run.run_id}" in summary and "mlflow ui --backend-store-uri" in summary


PIPELINE_SECTIONS = {  # pipeline -> a misspelt key inside a section it reads
    "ingestion": ("ingestion", "simulation", "sizee"),
    "representation": ("representation", "pci", "stpes"),
    "evaluation": ("evaluation", "classifiers", "knn", "n_neighbours"),
    "coos_benchmark": ("representation", "deeploc", "lr_decay"),
    "profiling": ("profiling", "map", "nul_size"),
    "treatment_profiling": ("treatments", "vae", "vaeplus", "latnt"),
    "domain_adaptation": ("domain_adaptation", "dino", "vit", "widht"),
    "exploration": ("exploration", "analysis", "rare_windw"),
    "embed": ("embed", "batch_sise"),
    "autoencoder_model": ("representation", "autoencoder", "stepz"),
}


@pytest.mark.parametrize("pipeline", sorted(PIPELINE_SECTIONS))
def test_misspelt_parameter_stops_every_pipeline_before_work(pipeline, tmp_path, monkeypatch):
    """``--params <section>...<misspelt>=1`` fails before any node runs, naming the key; nothing is
    written to data/ and no MLflow run is started."""
    from cellbench.config import ConfigError

    project, db = make_project(tmp_path, monkeypatch)
    *path, key = PIPELINE_SECTIONS[pipeline]
    extra: dict = {key: 1}
    for part in reversed(path):
        extra = {part: extra}
    before = sorted(p.relative_to(project) for p in (project / "data").rglob("*")) if (project / "data").exists() else []
    with KedroSession.create(project_path=project, runtime_params=extra) as session:
        with pytest.raises(ConfigError, match=re.escape(".".join([*path, key]))):
            session.run(pipeline_names=[pipeline])
    after = sorted(p.relative_to(project) for p in (project / "data").rglob("*")) if (project / "data").exists() else []
    assert after == before
    if db.exists():
        mlflow.set_tracking_uri(f"sqlite:///{db}")
        assert mlflow.search_runs(search_all_experiments=True).empty
