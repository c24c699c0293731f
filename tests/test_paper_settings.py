"""The papers' settings (``--env paper``) proven end to end on the CPU: real ``KedroSession`` runs
with the paper environment's architectures and crop sizes (full-width DeepLoc / PCI / autoencoder /
ResNet18 / VAE+, ViT-S/16 at 224 px on 256-px crops), only the step counts and the data size
overridden to tiny values, MLflow included."""

import mlflow
import pandas as pd
import torch
from kedro.framework.session import KedroSession

from .test_run import make_project

FEW = {"batch_size": 8, "steps": 2, "embed_batch_size": 64, "num_workers": 0}


def _run(tmp_path, monkeypatch, env, pipeline, params):
    project, db = make_project(tmp_path, monkeypatch)
    with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
        session.run(pipeline_names=[pipeline])
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    return project, mlflow.search_runs(experiment_names=["cellbench"]).iloc[0]


def test_coos_benchmark_paper_settings(tmp_path, monkeypatch):
    params = {"ingestion": {"simulation": {"size": 0.003}},
              "representation": {"deeploc": {**FEW, "eval_every": 2}, "pci": {**FEW, "min_cells_per_group": 2},
                                 "autoencoder": FEW},
              "evaluation": {"seeds": [0], "classifiers": {"random_forest": {"n_iter": 1, "cv": 3, "n_jobs": 1}}}}
    project, run = _run(tmp_path, monkeypatch, "paper", "coos_benchmark", params)
    deeploc = torch.load(project / "data/06_models/deeploc.pt", weights_only=True)
    assert deeploc["config"]["width"] == 1.0 and deeploc["state_dict"]["fc1.0.weight"].shape[0] == 512
    pci = torch.load(project / "data/06_models/pci.pt", weights_only=True)
    assert pci["config"]["width"] == 1.0 and pci["state_dict"]["source.blocks.0.conv.weight"].shape[0] == 96
    table = pd.read_parquet(project / "data/04_feature/pci/conv5.parquet")
    assert len([c for c in table.columns if c.startswith("PCI_conv5_")]) == 256
    assert run["params.representation.deeploc.width"] == "1.0" and run["params.representation.deeploc.steps"] == "2"
    assert run["params.evaluation.classifiers.random_forest.cv"] == "3"
    results = pd.read_csv(project / "data/08_reporting/coos_benchmark_results.csv")
    assert {"texture", "deeploc", "pci", "autoencoder"} <= set(results.representation)


def test_treatment_profiling_paper_settings(tmp_path, monkeypatch):
    sim = {"cells_per_well": 2, "sites_per_well": 1, "compounds_per_moa": 2, "concentrations": [1.0, 10.0],
           "replicates": 2, "batches_per_source": 3}
    params = {"treatments": {"ingestion": {"simulation": sim}, "texture": {"distances": [1]},
                             "weak": {n: dict(FEW) for n in ("resnet_plain", "resnet_mixup", "resnet_gru")},
                             "vae": {n: dict(FEW) for n in ("ae", "vae", "vaeplus")},
                             "profiling": {"map": {"null_size": 50}}}}
    project, run = _run(tmp_path, monkeypatch, "paper", "treatment_profiling", params)
    resnet = torch.load(project / "data/06_models/treatment_resnet_gru.pt", weights_only=True)
    assert resnet["config"]["width"] == 1.0 and resnet["state_dict"]["stem.0.weight"].shape[0] == 64
    vae = torch.load(project / "data/06_models/treatment_vaeplus.pt", weights_only=True)
    assert vae["state_dict"]["encoder.convs.0.0.weight"].shape[0] == 32
    assert run["params.treatments.weak.resnet_plain.width"] == "1.0"
    table = pd.read_csv(project / "data/08_reporting/simulated_moa_matching.csv")
    assert set(table.features) == {"texture", "resnet_plain", "resnet_mixup", "resnet_gru", "ae", "vae", "vaeplus"}


def test_domain_adaptation_paper_settings(tmp_path, monkeypatch):
    """ViT-S/16 at 224 px (DINO 2 x 224 + 6 x 96 crops, 12 task blocks) on 256-px simulated crops."""
    sim = {"n_sources": 2, "cells_per_well": 1, "compounds_per_moa": 1, "batches_per_source": 1,
           "moas": ["Actin disruptors", "DNA damage"]}
    few = {"steps": 1, "batch_size": 4}
    params = {"domain_adaptation": {
        "ingestion": {"simulation": sim}, "seeds": [0], "train_sources": ["source_1"], "targets": ["source_2"],
        "dino": {**few, "mae": {"steps": 1}, "ttt": {"steps": 1, "batch_size": 16}},
        "classifier": {**few, "eval_every": 1}, "adapt": {"steps": 1},
        "granularity": {"source": "source_1", "target": "source_2", "levels": ["one_plate"]}, "cka_cells": 8,
        "umap_cells": 8}}
    project, run = _run(tmp_path, monkeypatch, "paper", "domain_adaptation", params)
    artefact = torch.load(project / "data/06_models/domain_adaptation.pt", weights_only=True)
    assert artefact["config"]["vit"] == {"image_size": 224, "patch_size": 16, "dim": 384, "depth": 12, "heads": 6,
                                         "mlp_ratio": 4.0, "drop_path": 0.1}
    assert artefact["state_dict"]["seed0/source_1/dual_cb/foundation.pos_embed"].shape == (1, 197, 384)
    assert artefact["config"]["task_depth"] == 12
    crops = pd.read_parquet(project / "data/02_intermediate/da_crops/metadata.parquet")
    assert len(crops) > 0
    results = pd.read_parquet(project / "data/07_model_output/domain_adaptation/results.parquet")
    assert set(results.method) == {"supervised", "dual_dino", "dual_cb", "ttt", "oda", "coda"}
    assert run["params.domain_adaptation.dino.vit.dim"] == "384"


def test_paper_coos7_is_paper_and_coos7():
    """``--env paper_coos7`` (one --env for the papers' settings on the real files) equals conf/base
    with conf/paper and conf/coos7 merged over it."""
    from pathlib import Path

    from kedro.config import OmegaConfigLoader

    from cellbench.settings import CONFIG_LOADER_ARGS

    conf = Path(__file__).resolve().parents[1] / "conf"

    def params(env):
        return OmegaConfigLoader(str(conf), **{**CONFIG_LOADER_ARGS, "default_run_env": env})["parameters"]

    def merge(base, over):
        return {k: merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                for k, v in {**base, **over}.items()}

    def pick(resolved, raw):  # the values conf/coos7 itself sets, resolved
        return {k: pick(resolved[k], v) if isinstance(v, dict) else resolved[k] for k, v in raw.items()}

    import yaml

    raw = {}
    for path in (conf / "coos7").glob("parameters_*.yml"):
        raw.update(yaml.safe_load(path.read_text()))
    paper, coos7, both = params("paper"), params("coos7"), params("paper_coos7")
    expected = merge(paper, pick(coos7, raw))
    for section in ("ingestion", "representation", "evaluation"):
        got = both[section]
        want = expected[section]
        if section == "ingestion":  # conf/coos7 names the source; the simulation keys are unused there
            got, want = {k: v for k, v in got.items() if k != "simulation"}, {k: v for k, v in want.items()
                                                                             if k != "simulation"}
        assert got == want, section
