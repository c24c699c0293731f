"""``kedro run --pipelines=<name>_model`` (``deeploc_model``, ``pci_model``, ``autoencoder_model``
on the COOS crops; ``resnet18_model`` (weakly supervised, plain) and ``vaeplus_model`` on the
simulated treatment screen's crops; ``coda_model`` in :mod:`.coda_model`): ingestion, the network's
training, and kedro-mlflow's ``pipeline_ml_factory`` logging the
inference pipeline (``serving_crops`` -> ``extract_features`` -> ``serving_features``) with the
trained artefact as an MLflow model ``model`` of the run, registered as ``cellbench-<name>``
(a new version per run). Served or loaded, it takes raw ``N x C x H x W`` crops
(``cellbench.serving``: the preprocessing is inside) and returns one row of features per crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from kedro.pipeline import Node, Pipeline
from kedro_mlflow.pipeline import pipeline_ml_factory
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from cellbench.serving import extract_features

from .ingestion import create_pipeline as ingestion
from .ingestion import namespaced as ingestion_namespaced
from .representation.pipeline import instance

MODELS = ("deeploc", "pci", "autoencoder")
# the treatment screen's networks (trained on the simulated screen's crops, seed 003 / 004)
TREATMENT_MODELS = {"resnet18": "resnet_plain", "vaeplus": "vaeplus"}
INPUT = "serving_crops"
# any number of crops, channels and pixels: the model checks them against its network
SIGNATURE = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, -1, -1))]))


def registered_name(name: str) -> str:
    return f"cellbench-{name}"


def inference(artefact: str) -> Pipeline:
    """Raw crops -> features with the trained artefact ``artefact`` (a catalog dataset)."""
    return Pipeline([Node(extract_features, [artefact, INPUT], "serving_features", name="extract_features")])


def requirements() -> list[str]:
    """The packages a served model imports, pinned to the versions installed here (written out, so
    that MLflow does not load the model in a subprocess to infer them at every logging); the
    cellbench package itself must be installed where the model is served."""
    from importlib.metadata import version

    names = ("kedro", "kedro-datasets", "kedro-mlflow", "mlflow", "torch", "numpy", "pandas", "pyarrow", "scipy",
             "scikit-learn")
    return [f"{n}=={version(n)}" for n in names]


def log_model_kwargs(name: str) -> dict:
    return {"artifact_path": "model", "registered_model_name": registered_name(name), "signature": SIGNATURE,
            "pip_requirements": requirements()}


def model_pipeline(name: str):
    """Training (ingestion + the network) and the inference pipeline it logs and registers."""
    if name in TREATMENT_MODELS:  # ingestion of the treatment screen + that network's node
        from .treatment_profiling.pipeline import feature_node

        feature_set = TREATMENT_MODELS[name]
        training = ingestion_namespaced("treatments", "treatment_crops", "treatment_qc_montage") + Pipeline(
            [feature_node(feature_set)])
        artefact = f"treatment_{feature_set}_model"
    else:
        training, artefact = ingestion() + instance(name, True), f"{name}_model"
    return pipeline_ml_factory(training=training, inference=inference(artefact), input_name=INPUT,
                               log_model_kwargs=log_model_kwargs(name))


def register_artefact(artefact: dict, dataset: str, name: str, model_name: str, folder, tags: dict) -> str:
    """Log ``artefact`` as a new version of the registered model ``name`` from the active MLflow
    run: the same inference pipeline (``dataset`` -> ``extract_features``), packaged by kedro-mlflow's
    ``KedroPipelineModel`` with the artefact saved under ``folder``; ``tags`` go on the version.
    Returns the version."""
    import mlflow
    from kedro.io import DataCatalog, MemoryDataset
    from kedro_mlflow.mlflow import KedroPipelineModel

    from cellbench.datasets import TorchModelDataset

    path = Path(folder) / f"{model_name}.pt"
    TorchModelDataset(str(path)).save(artefact)
    catalog = DataCatalog(datasets={dataset: TorchModelDataset(str(path)), INPUT: MemoryDataset()})
    kpm = KedroPipelineModel(pipeline=inference(dataset), catalog=catalog, input_name=INPUT)
    info = mlflow.pyfunc.log_model(name=model_name, python_model=kpm,
                                   artifacts=kpm.extract_pipeline_artifacts(parameters_saving_folder=Path(folder)),
                                   signature=SIGNATURE, registered_model_name=registered_name(name),
                                   pip_requirements=requirements())
    version = str(info.registered_model_version)
    client = mlflow.tracking.MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(registered_name(name), version, key, str(value))
    return version


def load_artefact(uri: str, dataset: str) -> tuple[dict, object]:
    """The trained artefact inside a registered model (``models:/<name>/<version>``) and the
    registry version it resolves to."""
    import mlflow

    from cellbench.embedding import resolve

    version = resolve(uri, mlflow.tracking.MlflowClient())
    model = mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")
    kpm = model.unwrap_python_model()
    try:
        artefact = kpm.loaded_catalog.load(dataset)
    except Exception as exc:
        raise ValueError(f"{uri} ({version.name} version {version.version}) holds no {dataset!r} artefact; it is not "
                         f"a model this pipeline can continue from ({exc})") from exc
    return artefact, version


def register_adapted(adapted: list, artefact: dict, version, config) -> dict:
    """Each ``(unit, adapted artefact)`` registered as a new version of the model ``version`` names
    (``cellbench-<name>``), tagged with its unit, origin, method and granularity. Returns
    ``{unit: version}``."""
    import tempfile

    import mlflow

    from cellbench.adaptation.online import safe_name

    name = version.name.removeprefix("cellbench-")
    with tempfile.TemporaryDirectory() as folder:
        versions = {unit: register_artefact(new, "coda_model", name, f"adapted_{safe_name(unit)}", folder,
                                            {"cellbench.adapted_on": unit,
                                             "cellbench.adapted_from": f"{version.name}/{version.version}",
                                             "cellbench.method": config.method,
                                             "cellbench.granularity": config.granularity,
                                             "cellbench.source": artefact.get("source", "")})
                    for unit, new in adapted}
    mlflow.set_tags({"cellbench.adapt.model_uri": config.model, "cellbench.adapt.model_name": version.name,
                     "cellbench.adapt.model_version": version.version})
    return versions
