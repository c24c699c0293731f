import logging

import pandas as pd
from kedro.framework.project import configure_project
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from cellbench.pipeline_registry import register_pipelines
from cellbench.pipelines.evaluation import create_pipeline as evaluation
from cellbench.pipelines.representation import create_pipeline as representation

from ..conftest import base_params

EVAL_PARAMS = {**base_params("evaluation"), "seeds": [0], "cv_folds": 3,
               "classifiers": {"knn": {"n_neighbors": 11}, "l1_logreg": {"C": 1.0, "max_iter": 100, "tol": 1e-4},
                               "end_to_end": {}}}


# learned representations at toy size: the wiring is under test here, not the quality
TINY = {"device": "cpu", "seed": 0, "width": 0.05, "batch_size": 16, "steps": 3, "embed_batch_size": 128}
NETS = {"deeploc": {**TINY, "eval_every": 3}, "pci": {**TINY, "min_cells_per_group": 2}, "autoencoder": TINY}


def test_registered_pipelines():
    configure_project("cellbench")
    pipes = register_pipelines()
    assert {"ingestion", "representation", "evaluation", "coos_benchmark", "profiling", "treatment_profiling",
            "__default__"} <= set(pipes)
    names = {n.name for n in pipes["coos_benchmark"].nodes}
    assert {"ingest_coos_crops", "representation.texture.features", "evaluation.texture.evaluate", "coos_report"} <= names


def test_representation_and_evaluation_slice_in_memory(small_coos, caplog):
    pipe = representation() + evaluation()
    catalog = DataCatalog(
        datasets={
            "coos_crops": MemoryDataset(small_coos, copy_mode="assign"),
            "params:representation.texture": MemoryDataset({**base_params("representation.texture"),
                                                            "distances": [1, 2], "batch_size": 128}),
            **{f"params:representation.{n}": MemoryDataset({**base_params(f"representation.{n}"), **over})
               for n, over in NETS.items()},
            "params:representation.vgg16": MemoryDataset(base_params("representation.vgg16")),
            **{f"{n}_{kind}": MemoryDataset(copy_mode="assign") for n in ("deeploc", "pci", "autoencoder")
               for kind in ("model", "training_history")},
            "params:evaluation": MemoryDataset(EVAL_PARAMS),
            **{name: MemoryDataset(copy_mode="assign") for name in
               ("coos_benchmark_results", "coos_benchmark_table", "coos_metrics", "coos_per_class_sensitivity")},
        }
    )
    caplog.set_level(logging.INFO)
    SequentialRunner().run(pipe, catalog)
    assert "Pipeline execution completed successfully" in caplog.text
    results = catalog["coos_benchmark_results"].load()
    assert set(results.columns) >= {"representation", "layer", "classifier", "split", "balanced_error", "n_cells",
                                    "balanced_error_std", "n_seeds"}
    assert set(results.split) == set(EVAL_PARAMS["splits"])
    per_layer = results.groupby(["representation", "layer", "classifier"]).n_cells.sum()
    assert (per_layer == len(small_coos)).all()
    layers = set(zip(results.representation, results.layer))
    assert {("texture", "haralick"), ("deeploc", "fc2"), ("deeploc", "end_to_end"), ("pci", "conv3"),
            ("autoencoder", "conv5")} <= layers
    assert "vgg16" not in set(results.representation)  # no weights file: left out, not faked
    assert set(results[results.layer == "end_to_end"].classifier) == {"end_to_end"}
    assert "VGG16 left out of the results" in caplog.text
    history = catalog["deeploc_training_history"].load()
    assert [p["step"] for p in history["training/deeploc/train_loss"]] == [1, 2, 3]
    assert catalog["pci_model"].load()["model"] == "pci"
    metrics = catalog["coos_metrics"].load()
    assert "coos/texture_haralick/knn/test3/balanced_error" in metrics
    assert "| texture | haralick | knn |" in catalog["coos_benchmark_table"].load()
    assert isinstance(results, pd.DataFrame)
    sens = catalog["coos_per_class_sensitivity"].load()
    assert set(sens.label) == set(range(7))
    present = sens.n_cells > 0
    assert sens[present].sensitivity.between(0, 1).all()
    assert sens[~present].sensitivity.isna().all()  # a class absent from a split has no recall


def test_published_reference_column():
    from cellbench.reporting import benchmark_markdown
    from cellbench.reporting.tables import coos7_published_reference

    ref = coos7_published_reference()
    row = ref[(ref.representation == "texture") & (ref.classifier == "knn") & (ref.split == "test4")]
    assert row.published_balanced_error.iloc[0] == 0.256
    res = pd.DataFrame({"representation": ["texture"], "layer": ["haralick"], "classifier": ["knn"],
                        "split": ["test4"], "balanced_error": [0.3]})
    assert "30.0 (paper 25.6)" in benchmark_markdown(res, ref)
