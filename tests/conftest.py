import os

import numpy as np
import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from cellbench.simulate import CoosDesign, simulate_coos7  # noqa: E402


@pytest.fixture(scope="session")
def small_coos():
    """About 500 simulated COOS-7 crops (all five splits, seven classes)."""
    return simulate_coos7(CoosDesign(size=0.004, seed=3)).materialize()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
