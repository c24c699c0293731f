"""The views users rely on, loaded in a real browser (Debian's headless Chromium, which ``.ci/run``
installs): after two small runs, the MLflow UI shows a run's flattened parameters, hierarchical
metrics and figure artefacts and compares the two runs; ``kedro viz`` lists the namespaced
representations. Servers are bound to 127.0.0.1 and stopped by their process group."""

import os
import shutil
import subprocess
import sys

import mlflow
import pytest
from kedro.framework.session import KedroSession

from tests.conftest import free_port, server
from tests.test_run import ROOT, make_project

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--window-size=1600,1000",
         "--virtual-time-budget=20000"]
SHOTS = os.environ.get("CELLBENCH_SCREENSHOTS")  # a folder: also write the README's screenshots there


def render(url: str, profile, screenshot: str | None = None) -> str:
    """The DOM of ``url`` after its scripts ran (and ``SHOTS/<screenshot>``, a PNG of it, when
    ``CELLBENCH_SCREENSHOTS`` names a folder)."""
    args = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}"]
    if screenshot and SHOTS:
        screenshot = os.path.join(SHOTS, screenshot)
        subprocess.run(args + [f"--screenshot={screenshot}", url], capture_output=True, timeout=180, check=True)
    return subprocess.run(args + ["--dump-dom", url], capture_output=True, text=True, timeout=180, check=True).stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project copy after two runs: ``ingestion`` (a figure artefact) and ``profiling`` (flattened
    parameters, hierarchical metrics)."""
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("browser")
    try:
        proj, db = make_project(tmp, mp)
        shutil.copytree(ROOT / "data" / "01_raw" / "bbbc021_ljosa2013", proj / "data" / "01_raw" / "bbbc021_ljosa2013")
        for pipeline, params in (("ingestion", {"ingestion": {"simulation": {"size": 0.003}}}),
                                 ("profiling", {"profiling": {"map": {"null_size": 100, "null_cache": None}}})):
            while mlflow.active_run():
                mlflow.end_run()
            with KedroSession.create(project_path=proj, runtime_params=params) as session:
                session.run(pipeline_names=[pipeline])
        client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{db}")
        exp = client.get_experiment_by_name("cellbench")
        runs = {r.data.tags.get("mlflow.runName"): r for r in client.search_runs([exp.experiment_id])}
        yield proj, db, exp.experiment_id, runs
    finally:
        mp.undo()


def test_mlflow_ui_shows_parameters_metrics_figures_and_compares_runs(project, tmp_path):
    proj, db, exp, runs = project
    assert {"ingestion", "profiling"} <= set(runs)
    port = free_port()
    ui = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{db}", "-h", "127.0.0.1",
          "-p", str(port), "--workers", "1"]
    with server(ui, port, proj, {"MLFLOW_DISABLE_TELEMETRY": "true"}):
        base = f"http://127.0.0.1:{port}/#/experiments/{exp}"
        profiling, ingestion = runs["profiling"].info.run_id, runs["ingestion"].info.run_id
        page = render(f"{base}/runs/{profiling}", tmp_path / "p1", "mlflow_run.png")
        assert "profiling.columns.moa" in page  # a nested parameter, flattened with dots
        assert "profiling.integration.batches" in page
        assert "profiling/jump_mad_int/overall" in page  # a hierarchical metric
        arts = render(f"{base}/runs/{ingestion}/artifacts", tmp_path / "p2")
        assert "coos_qc_montage.png" in arts
        compare = render(f'http://127.0.0.1:{port}/#/compare-runs?runs=["{profiling}","{ingestion}"]'
                         f'&experiments=["{exp}"]', tmp_path / "p3", "mlflow_compare.png")
        assert "profiling" in compare and "ingestion" in compare and "Parameters" in compare


def test_kedro_viz_lists_the_namespaced_representations(project, tmp_path):
    proj, *_ = project
    port = free_port()
    viz = [sys.executable, "-m", "kedro", "viz", "run", "--host", "127.0.0.1", "--port", str(port), "--no-browser"]
    with server(viz, port, proj, {"KEDRO_DISABLE_TELEMETRY": "1"}):
        page = render(f"http://127.0.0.1:{port}/", tmp_path / "v", "kedro_viz.png")
    for name in ("representation.texture", "representation.deeploc", "representation.pci",
                 "representation.autoencoder"):
        assert name in page
    assert "coos_qc_montage" in page


def test_kedro_viz_previews_tables_and_figures(project, tmp_path):
    """The catalog's kedro-viz metadata (layer, preview_args): a result table and a figure have
    previews in the API, and the figure's preview renders in the node's panel in the browser."""
    import base64
    import json
    import urllib.request

    proj, *_ = project
    port = free_port()
    viz = [sys.executable, "-m", "kedro", "viz", "run", "--host", "127.0.0.1", "--port", str(port), "--no-browser"]

    def get(path):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=120) as r:
            return json.loads(r.read())

    with server(viz, port, proj, {"KEDRO_DISABLE_TELEMETRY": "1"}):
        nodes = {n["name"]: n for n in get("/api/main")["nodes"] if n["type"] == "data"}  # coos_benchmark
        nodes |= {n["name"]: n for n in get("/api/pipelines/profiling")["nodes"] if n["type"] == "data"}
        figure = get(f"/api/nodes/{nodes['coos_qc_montage']['id']}")
        table = get(f"/api/nodes/{nodes['moa_matching']['id']}")
        page = render(f"http://127.0.0.1:{port}/?pid=__default__&sn={nodes['coos_qc_montage']['id']}", tmp_path / "w",
                      "kedro_viz_preview.png")
    assert nodes["moa_matching"]["layer"] == "reporting"
    assert figure["preview_type"] == "ImagePreview"
    assert base64.b64decode(figure["preview"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert table["preview_type"] == "TablePreview"
    import pandas as pd

    rows = len(pd.read_csv(proj / "data/08_reporting/bbbc021_moa_matching.csv"))
    assert "variant" in table["preview"]["columns"] and len(table["preview"]["data"]) == min(10, rows) > 0
    assert "data:image/png;base64" in page
