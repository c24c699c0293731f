"""``--env workstation``: valid parameters, and training budgets at or past the crossings of Texture
that the committed budget curves measured or predict (``benchmarks/results/budget_*.csv``)."""

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workstation():
    from kedro.config import OmegaConfigLoader

    from cellbench.settings import CONFIG_LOADER_ARGS

    return OmegaConfigLoader(str(ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": "workstation"})["parameters"]


def test_every_section_validates(workstation):
    from cellbench.parameters import validate_parameters

    configs = validate_parameters(workstation)
    assert configs["representation"].pci.steps > 1000  # the environment is merged over conf/base


def _flops_per_step(table: pd.DataFrame, method: str) -> float:
    rows = table[(table.method == method) & (table.steps > 0)]
    return float((rows.flops / rows.steps).median())


def test_coos_budgets_reach_the_measured_crossings(workstation):
    curves = pd.read_csv(ROOT / "benchmarks/results/budget_coos.csv")
    summary = pd.read_csv(ROOT / "benchmarks/results/budget_coos.summary.csv")
    test1 = summary[summary.split == "test1"].set_index("curve")["predicted crossing (FLOPs)"]
    rep = workstation["representation"]
    pci_flops = rep["pci"]["steps"] * _flops_per_step(curves, "pci")
    assert pci_flops >= float(test1["pci"]), "PCI's budget is short of its predicted crossing on Test1"
    assert test1["deeploc fc2"] == "crossed" and rep["deeploc"]["steps"] >= 1000  # crossed by 1,000 steps


def test_pci_budget_is_where_the_pipeline_runs_measured_the_crossing(workstation, budget_curves):
    """``coos_benchmark --env workstation``'s PCI steps are those of the committed pipeline runs
    (``budget_curves.py coos-runs``: at least 2 training seeds) whose Training-CV-chosen PCI layer is,
    on the mean over seeds, below Texture on Test1."""
    runs = pd.read_csv(ROOT / "benchmarks/results/budget_coos_runs.csv")
    steps = workstation["representation"]["pci"]["steps"]
    pci = budget_curves.best_rows(runs[(runs.method == "pci") & (runs.steps == steps)], "test1")
    assert pci.seed.nunique() >= 2, f"no pipeline runs of PCI at {steps} steps for 2 seeds"
    tex = budget_curves.texture_error(runs[runs.method == "texture"], "test1")  # Texture's CV-chosen classifier
    assert pci.balanced_error.mean() < tex, "at this budget PCI's mean over seeds does not pass Texture on Test1"


def test_domain_adaptation_is_the_budget_studys_factor_ten_from_the_pool(workstation, base):
    """The workstation run is, per seed, the configuration of the budget study's ``--start pool``
    point at factor 10 (every step count of conf/base x 10, one training source, the pool of
    conf/workstation), so the study's numbers are the pipeline's; the study has that point for 2 seeds."""
    da, ref = workstation["domain_adaptation"], base("domain_adaptation")
    f = 10
    assert da["dino"]["steps"] == f * ref["dino"]["steps"] and da["dino"]["mae"]["steps"] == f * ref["dino"]["mae"]["steps"]
    assert da["classifier"]["steps"] == f * ref["classifier"]["steps"]
    assert da["classifier"]["eval_every"] == f * ref["classifier"]["eval_every"]
    assert da["adapt"]["steps"] == f * ref["adapt"]["steps"]
    assert list(da["train_sources"]) == ["source_1"] and len(da["seeds"]) >= 1
    assert da["pool"] is not None and da["pool"]["simulation"]["seed"] != ref["ingestion"]["simulation"]["seed"]
    curves = pd.read_csv(ROOT / "benchmarks/results/budget_adaptation.csv")
    pool = curves[(curves.start == "pool") & (curves.factor == f)]
    assert set(pool.seed) >= set(da["seeds"]) | {0, 1}, "the study has no pool point at factor 10 for 2 seeds"
    mean = pool.groupby("method").out_of_source_accuracy.mean()
    assert mean["coda"] > mean["supervised"], "conf/workstation's budget is where CODA passed the supervised ViT"


def test_pool_cache_key_ignores_what_dino_pre_training_does_not_read(workstation):
    """Changing the experiment's MAE / TTT settings (or its own DINO step count, which the pool's
    ``dino.steps`` overrides) keeps the pool's cache key; a DINO setting the pool reads changes it."""
    from cellbench.adaptation.pool import pool_cache_key
    from cellbench.representations.coda import CodaConfig

    da = workstation["domain_adaptation"]

    def key(**dino):
        return pool_cache_key(CodaConfig.from_params({**da, "dino": {**da["dino"], **dino}}, "domain_adaptation"))

    mae = {**da["dino"]["mae"], "steps": 7}
    ttt = {**da["dino"]["ttt"], "steps": 3}
    assert key(mae=mae, ttt=ttt, steps=11) == key()
    assert key(lr=da["dino"]["lr"] * 2) != key()
