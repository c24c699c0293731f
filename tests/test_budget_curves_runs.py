"""``benchmarks/budget_curves.py coos-runs`` reads finished ``coos_benchmark`` runs back from MLflow
into the COOS study's columns (the step count, seed and batch size from the run's parameters, the
training FLOPs and CPU seconds from its metrics, the errors from its report artefact), so that a
pipeline run past the study's budgets is drawn on the study's figure."""

import argparse

import pandas as pd
import pytest


def _report() -> pd.DataFrame:
    rows = []
    for rep, layers in (("texture", ["haralick"]), ("deeploc", ["end_to_end", "fc2"]), ("pci", ["conv4"]),
                        ("autoencoder", ["conv3"])):
        for layer in layers:
            for clf in (["end_to_end"] if layer == "end_to_end" else ["knn", "l1_logreg", "random_forest"]):
                for split, err in (("test1", 0.05), ("test4", 0.3)):
                    rows.append({"representation": rep, "layer": layer, "classifier": clf, "split": split,
                                 "balanced_error": err, "balanced_error_std": 0.0, "n_seeds": 1, "n_cells": 10,
                                 "cv_balanced_error": 0.1, "selected_by_training_cv": False})
    return pd.DataFrame(rows)


def _run(client, experiment: str, tmp_path, pci_steps: int, seed: int, report: bool = True) -> str:
    """A finished ``coos_benchmark`` run, made through the client (no fluent active-run state, which
    another test may have left behind)."""
    run = client.create_run(experiment, run_name="coos_benchmark", tags={"env": "workstation"})
    rid = run.info.run_id
    for m, steps in (("deeploc", 1000), ("pci", pci_steps), ("autoencoder", 100)):
        for key, value in (("steps", steps), ("seed", seed), ("batch_size", 32)):
            client.log_param(rid, f"representation.{m}.{key}", value)
        client.log_metric(rid, f"training/{m}/flops", steps * 4.0e10)
        client.log_metric(rid, f"training/{m}/cpu_seconds", steps * 0.3)
    if report:
        path = tmp_path / f"r{seed}" / "coos_benchmark_results.csv"
        path.parent.mkdir()
        _report().to_csv(path, index=False)
        client.log_artifact(rid, str(path))
    client.set_terminated(rid, "FINISHED")
    return rid


def test_finished_runs_come_back_in_the_studys_columns(budget_curves, tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("coos", artifact_location=str(tmp_path / "art"))
    first = _run(client, experiment, tmp_path, 10000, 0)
    second = _run(client, experiment, tmp_path, 10000, 1)
    out = tmp_path / "runs.csv"
    args = argparse.Namespace(tracking_uri=uri, runs=None, out=str(out))
    budget_curves.coos_runs(args)
    got = pd.read_csv(out)
    assert set(got.run_id) == {first, second}
    assert set(got.classifier) == {"knn", "l1_logreg", "end_to_end"}  # the study's: no random forest
    pci = got[(got.method == "pci") & (got.run_id == second)]
    assert pci.steps.unique().tolist() == [10000] and pci.seed.unique().tolist() == [1]
    assert pci.samples.iloc[0] == 320000 and pci.flops.iloc[0] == pytest.approx(4.0e14)
    assert pci.cpu_seconds.iloc[0] == pytest.approx(3000.0)
    assert got[got.method == "texture"].steps.unique().tolist() == [0]
    picked = budget_curves.best_rows(got[got.method != "texture"], "test1")  # what plot-coos draws
    assert set(picked.curve) == {"deeploc end-to-end", "deeploc fc2", "pci", "autoencoder"}

    budget_curves.coos_runs(argparse.Namespace(tracking_uri=uri, runs=first, out=str(out)))
    assert len(pd.read_csv(out)) == len(got)  # a run read again replaces its rows

    broken = _run(client, experiment, tmp_path, 300, 2, report=False)
    with pytest.raises(SystemExit, match=f"run {broken} has no artefact coos_benchmark_results.csv"):
        budget_curves.coos_runs(argparse.Namespace(tracking_uri=uri, runs=broken, out=str(out)))
    assert len(pd.read_csv(out)) == len(got)  # nothing half-written
    with pytest.raises(SystemExit, match="--runs: no run 'nosuchrun'"):
        budget_curves.coos_runs(argparse.Namespace(tracking_uri=uri, runs="nosuchrun", out=str(out)))
