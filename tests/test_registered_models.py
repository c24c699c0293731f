"""``kedro run --pipelines=autoencoder_model``: the network is trained, its inference pipeline is
logged by kedro-mlflow's ``pipeline_ml_factory`` and registered; loaded back it turns raw crops
into the run's own features, and ``mlflow models serve`` answers a real HTTP request with them."""

import json
import sys
import urllib.request

import mlflow
import numpy as np
import pandas as pd
import pytest
from kedro.framework.session import KedroSession

from tests.conftest import free_port, server
from tests.test_run import QUICK, make_project



@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("registry")
    try:
        project, db = make_project(tmp, mp)
        extra = {"ingestion": {"simulation": {"size": 0.003}}, "representation": QUICK["representation"]}
        with KedroSession.create(project_path=project, runtime_params=extra) as session:
            session.run(pipeline_names=["autoencoder_model"])
        client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
        [version] = client.search_model_versions("name='cellbench-autoencoder'")
        local = client.download_artifacts(version.run_id, "model", str(tmp / "downloaded"))
        yield project, client, version, local, db
    finally:
        mp.undo()


def crops_of(project, store: str = "coos_crops", n: int | None = 40):
    """The crops a run stored under ``data/02_intermediate/<store>`` (the first ``n``; None: all)."""
    from cellbench.datasets import CropStoreDataset

    crops = CropStoreDataset(str(project / "data/02_intermediate" / store)).load()
    return crops if n is None else crops.take(np.arange(n))


def test_registered_model_embeds_raw_crops_like_the_run(registered):
    project, client, version, local, _ = registered
    assert str(version.version) == "1"
    run = client.get_run(version.run_id)
    assert run.data.params["representation.autoencoder.steps"] == "3"
    model = mlflow.pyfunc.load_model(local)
    crops = crops_of(project)
    x = np.asarray(crops.images).astype(np.float32)
    served = model.predict(x)
    stored = pd.read_parquet(project / "data/04_feature/autoencoder/conv3.parquet").iloc[:40]
    cols = [c for c in stored.columns if not c.startswith("Metadata_")]
    np.testing.assert_allclose(served[cols].to_numpy(), stored[cols].to_numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(Exception, match="channel"):
        model.predict(x[:, :1])


def test_mlflow_models_serve_answers_with_features(registered):
    project, client, version, local, _ = registered
    port = free_port()
    serve = [sys.executable, "-m", "mlflow", "models", "serve", "-m", local, "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    with server(serve, port, env={"MLFLOW_DISABLE_TELEMETRY": "true"}, path="/ping"):
        x = np.asarray(crops_of(project).images[:3]).astype(np.float32)
        body = json.dumps({"inputs": x.tolist()}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            answer = json.loads(r.read())
    got = pd.DataFrame(answer["predictions"])
    expected = mlflow.pyfunc.load_model(local).predict(x)
    assert list(got.columns) == list(expected.columns) and len(got) == 3
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-5, atol=1e-6)

def embed_run(project, db, monkeypatch, model: str):
    while mlflow.active_run():
        mlflow.end_run()
    monkeypatch.setenv("CELLBENCH_MLFLOW_URI", f"sqlite:///{db}")
    monkeypatch.chdir(project)
    extra = {"embed": {"model": model, "ingestion": {"simulation": {"size": 0.003, "seed": 1}}}}
    with KedroSession.create(project_path=project, runtime_params=extra) as session:
        session.run(pipeline_names=["embed"])


def test_embed_a_new_plate_with_the_registered_model(registered, monkeypatch):
    project, client, version, local, db = registered
    embed_run(project, db, monkeypatch, "models:/cellbench-autoencoder/latest")
    table = pd.read_parquet(project / "data/04_feature/embedded/features.parquet")
    crops = crops_of(project, "embed_crops", None)
    assert len(table) == len(crops) > 0
    assert [c for c in table.columns if c.startswith("Metadata_")] == list(crops.metadata.columns)
    x = np.asarray(crops.images[:5]).astype(np.float32)
    expected = mlflow.pyfunc.load_model(local).predict(x)
    np.testing.assert_allclose(table[expected.columns].to_numpy()[:5], expected.to_numpy(), rtol=1e-5, atol=1e-6)
    runs = client.search_runs([client.get_experiment_by_name("cellbench").experiment_id],
                              filter_string="tags.`cellbench.embed.model_name` = 'cellbench-autoencoder'")
    assert len(runs) == 1 and runs[0].data.tags["cellbench.embed.model_version"] == "1"
    assert runs[0].data.tags["cellbench.embed.model_run_id"] == version.run_id


@pytest.mark.parametrize("uri, message", [
    ("models:/cellbench-autoencoder/9", r"has no version 9 .* its versions are \[1\]"),
    ("models:/no-such-model/1", r"no registered model named 'no-such-model'.*cellbench-autoencoder"),
    ("cellbench-autoencoder", r"embed.model: 'cellbench-autoencoder' is not a registered model URI"),
])
def test_embed_refuses_a_model_that_does_not_exist(registered, monkeypatch, uri, message):
    project, client, _, _, db = registered
    before = len(client.search_model_versions("name='cellbench-autoencoder'"))
    with pytest.raises(Exception, match=message):
        embed_run(project, db, monkeypatch, uri)
    assert len(client.search_model_versions("name='cellbench-autoencoder'")) == before  # nothing registered
