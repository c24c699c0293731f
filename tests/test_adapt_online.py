"""A registered CODA dual model adapted online to new plates (``coda_model`` then ``adapt``), and
the treatment screen's networks registered (``resnet18_model``, ``vaeplus_model``): versions per
plate with their tags, predictions served by the adapted versions, before / after scores, and the
bad inputs refused before anything is registered."""

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from kedro.framework.session import KedroSession

from cellbench.adaptation.online import entropy, frechet_distance
from tests.test_registered_models import crops_of
from tests.test_run import make_project

VIT = {"image_size": 16, "patch_size": 8, "dim": 16, "depth": 1, "heads": 2, "drop_path": 0.1}
SIM = {"n_sources": 2, "cells_per_well": 2, "compounds_per_moa": 2,
       "moas": ["Actin disruptors", "DNA damage", "Eg5 inhibitors"]}
DA = {"domain_adaptation": {
    "ingestion": {"simulation": SIM},
    "dino": {"vit": VIT, "head": {"out_dim": 16, "hidden": 16, "bottleneck": 8}, "global_size": 16, "local_size": 8,
             "n_local": 2, "steps": 2, "batch_size": 16},
    "classifier": {"global_size": 16, "steps": 2, "batch_size": 16, "eval_every": 2}},
    "coda_model": {"reference_cells": 32}}
NEW_PLATES = "Metadata_Source == 'source_2' and Metadata_Batch == 'source_2_week1' and Metadata_Control == False"


def adapt_params(**over):
    return {"adapt": {"ingestion": {"simulation": SIM}, "cells": NEW_PLATES, "dino": {"steps": 2},
                      "montage": {"query": None}, **over}}


def run(project, params, name):
    while mlflow.active_run():
        mlflow.end_run()
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        session.run(pipeline_names=[name])


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("adapt")
    try:
        project, db = make_project(tmp, mp)
        run(project, DA, "coda_model")
        run(project, adapt_params(), "adapt")
        client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
        yield project, client, db
    finally:
        mp.undo()


def _versions(client):
    return sorted(client.search_model_versions("name='cellbench-coda'"), key=lambda v: int(v.version))


def test_each_new_plate_gets_its_own_registered_version(adapted):
    project, client, _ = adapted
    versions = _versions(client)
    plates = ["source_2_week1_P1", "source_2_week1_P2", "source_2_week1_P3"]
    assert [str(v.version) for v in versions] == ["1", "2", "3", "4"]  # the source model, then one per plate
    assert "cellbench.adapted_on" not in versions[0].tags
    assert [v.tags["cellbench.adapted_on"] for v in versions[1:]] == plates
    assert {v.tags["cellbench.adapted_from"] for v in versions[1:]} == {"cellbench-coda/1"}
    assert {v.tags["cellbench.method"] for v in versions[1:]} == {"coda"}
    report = pd.read_csv(project / "data/08_reporting/adapt_report.csv")
    assert list(report.unit) == plates and list(report.registered_version.astype(str)) == ["2", "3", "4"]
    for col in ("accuracy_before", "accuracy_after", "entropy_before", "entropy_after", "frechet_before",
                "frechet_after", "cka_source", "cka_target"):
        assert report[col].notna().all(), col
    assert report.cka_source.between(-1e-9, 1 + 1e-9).all()
    run_id = versions[1].run_id
    metrics = client.get_run(run_id).data.metrics
    assert metrics["adapt/source_2_week1_P1/accuracy_after"] == pytest.approx(report.accuracy_after[0])
    assert client.get_run(run_id).data.tags["cellbench.adapt.model_version"] == "1"


def test_an_adapted_version_serves_its_own_predictions(adapted):
    project, client, _ = adapted
    table = pd.read_parquet(project / "data/07_model_output/adapt/predictions.parquet")
    crops = crops_of(project, "adapt_crops", None)
    meta = crops.metadata
    rows = np.flatnonzero(meta.eval(NEW_PLATES).to_numpy())
    assert len(table) == len(rows)
    first = table[table.Metadata_Plate == "source_2_week1_P1"]
    assert set(first.Metadata_ModelVersion) == {"2"}
    model = mlflow.pyfunc.load_model("models:/cellbench-coda/2")
    x = np.asarray(crops.take(rows[:len(first)]).images, np.float32)
    served = model.predict(x)
    probs = [c for c in table.columns if c.startswith("Prob_")]
    np.testing.assert_allclose(served[probs].to_numpy(), first[probs].to_numpy(), rtol=1e-4, atol=1e-5)
    unadapted = mlflow.pyfunc.load_model("models:/cellbench-coda/1").predict(x)
    assert not np.allclose(unadapted[probs].to_numpy(), served[probs].to_numpy())  # the foundation moved
    accuracy = (first.Predicted_after.to_numpy() == first.Metadata_MoA.astype(str).to_numpy()).mean()
    report = pd.read_csv(project / "data/08_reporting/adapt_report.csv")
    assert accuracy == pytest.approx(report.accuracy_after[0])


@pytest.mark.parametrize("over, message", [
    ({"cells": "Metadata_Source == 'nowhere'"}, r"adapt.cells: no cells to adapt on"),
    ({"model": "models:/cellbench-coda/99"}, r"has no version 99"),
    ({"model": "models:/cellbench-nothing/1"}, r"no registered model named 'cellbench-nothing'"),
    ({"granularity": "well"}, r"adapt.granularity: 'well'"),
    ({"dino": {"stpes": 2}}, r"adapt.dino.stpes: unknown parameter"),
])
def test_bad_parameters_are_refused_and_nothing_is_registered(adapted, over, message):
    project, client, _ = adapted
    before = len(_versions(client))
    with pytest.raises(Exception, match=message):
        run(project, adapt_params(**over), "adapt")
    assert len(_versions(client)) == before


@pytest.mark.parametrize("change, message", [
    (lambda x: x[:, :2], r"takes 3 channel\(s\), got 2"),
    (lambda x: x[:, :, :8, :8], r"needs crops of at least 16 x 16 px, got 8 x 8"),
])
def test_crops_the_model_cannot_take_are_refused(adapted, monkeypatch, change, message):
    from cellbench.crops import Crops
    from cellbench.pipelines.adapt.nodes import adapt_online
    from tests.conftest import base_params

    project, client, db = adapted
    monkeypatch.chdir(project)
    crops = crops_of(project, "adapt_crops", None)
    bad = Crops(np.ascontiguousarray(change(np.asarray(crops.images))), crops.metadata)
    params = {**base_params("adapt"), "cells": NEW_PLATES, "dino": {"steps": 2}}
    before = len(_versions(client))
    # the node reads the registry of this project's store; mlflow keeps its URIs process-wide (a
    # module global and an environment variable each), so they are patched and restored, never set
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    monkeypatch.setattr(tracking_utils, "_tracking_uri", f"sqlite:///{db}")
    monkeypatch.setattr(registry_utils, "_registry_uri", f"sqlite:///{db}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{db}")
    with pytest.raises(ValueError, match=message):
        adapt_online(bad, params)
    assert len(_versions(client)) == before


def test_a_model_that_is_not_coda_is_refused():
    from cellbench.adaptation.online import dual_from

    with pytest.raises(ValueError, match=r"the model is 'deeploc', not a CODA dual model"):
        dual_from({"model": "deeploc", "config": {}, "state_dict": {}})


def test_frechet_distance_and_entropy_by_hand():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 2)) * [1.0, 2.0]
    b = rng.standard_normal((4000, 2)) * [3.0, 2.0] + [1.0, 0.0]
    # diagonal covariances: |mu_a - mu_b|^2 + sum (sqrt(va) - sqrt(vb))^2 = 1 + (1 - 3)^2 + 0 = 5
    assert frechet_distance(a, b) == pytest.approx(5.0, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert entropy(np.array([[0.5, 0.5], [1.0, 0.0]])) == pytest.approx(np.log(2) / 2)


def test_the_treatment_networks_are_registered_and_serve_raw_crops(tmp_path, monkeypatch):
    project, db = make_project(tmp_path, monkeypatch)
    sim = {"cells_per_well": 2, "compounds_per_moa": 1, "concentrations": [10.0], "replicates": 2,
           "batches_per_source": 2}
    tiny = {"width": 0.125, "steps": 2, "batch_size": 8}
    params = {"treatments": {"ingestion": {"simulation": sim}, "weak": {"resnet_plain": tiny},
                             "vae": {"vaeplus": {"steps": 2, "batch_size": 8}}}}
    for name in ("resnet18_model", "vaeplus_model"):
        run(project, params, name)
    crops = crops_of(project, "treatment_crops", 12)
    x = np.asarray(crops.images, np.float32)
    for name, folder, layer in (("resnet18", "treatment_resnet_plain", "res4a"), ("vaeplus", "treatment_vaeplus", "mu")):
        served = mlflow.pyfunc.load_model(f"models:/cellbench-{name}/1").predict(x)
        stored = pd.read_parquet(project / f"data/04_feature/{folder}/{layer}.parquet").iloc[:12]
        cols = [c for c in stored.columns if not c.startswith("Metadata_")]
        np.testing.assert_allclose(served[cols].to_numpy(), stored[cols].to_numpy(), rtol=1e-4, atol=1e-5)
        artefact = torch.load(project / f"data/06_models/{folder}.pt", weights_only=True)
        assert artefact["model"] == {"resnet18": "resnet18", "vaeplus": "vaeplus"}[name]
    with pytest.raises(Exception, match="channel"):
        mlflow.pyfunc.load_model("models:/cellbench-vaeplus/1").predict(x[:, :1])
