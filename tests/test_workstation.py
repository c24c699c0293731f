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
