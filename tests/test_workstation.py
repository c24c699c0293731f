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


def test_domain_adaptation_is_the_budget_studys_factor_three_from_the_pool(workstation, base):
    """The workstation run is, per seed, the configuration of the budget study's ``--start pool``
    point at factor 3 (every step count of conf/base x 3, one training source, the pool of
    conf/workstation), so the study's numbers are the pipeline's."""
    da, ref = workstation["domain_adaptation"], base("domain_adaptation")
    assert da["dino"]["steps"] == 3 * ref["dino"]["steps"] and da["dino"]["mae"]["steps"] == 3 * ref["dino"]["mae"]["steps"]
    assert da["classifier"]["steps"] == 3 * ref["classifier"]["steps"]
    assert da["classifier"]["eval_every"] == 3 * ref["classifier"]["eval_every"]
    assert da["adapt"]["steps"] == 3 * ref["adapt"]["steps"]
    assert list(da["train_sources"]) == ["source_1"] and len(da["seeds"]) >= 2
    assert da["pool"] is not None and da["pool"]["simulation"]["seed"] != ref["ingestion"]["simulation"]["seed"]
    curves = pd.read_csv(ROOT / "benchmarks/results/budget_adaptation.csv")
    pool = curves[(curves.start == "pool") & (curves.factor == 3)]
    assert set(pool.seed) >= set(da["seeds"]), "the study has no pool point at factor 3 for every workstation seed"
