import contextlib
import functools
import os

import numpy as np
import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# tests train from scratch unless they turn the trained-model cache on themselves (tests/training/test_cache.py)
os.environ["CELLBENCH_MODEL_CACHE"] = "off"

from cellbench.simulate import CoosDesign, simulate_coos7  # noqa: E402


@pytest.fixture(scope="session")
def small_coos():
    """About 500 simulated COOS-7 crops (all five splits, seven classes)."""
    return simulate_coos7(CoosDesign(size=0.004, seed=3)).materialize()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def budget_curves(monkeypatch):
    """``benchmarks/budget_curves.py`` as a module (a fresh import with ``benchmarks/`` on the path)."""
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    sys.modules.pop("budget_curves", None)
    import budget_curves

    return budget_curves


def base_params(path: str) -> dict:
    """The ``conf/base`` value at a dotted parameter path (e.g. ``representation.deeploc``): tests
    take their settings from the one place that holds the defaults, then override a few."""
    import copy

    value = _base_parameters()
    for key in path.split("."):
        value = value[key]
    return copy.deepcopy(value)


@functools.lru_cache(maxsize=1)
def _base_parameters() -> dict:
    import warnings
    from pathlib import Path

    from kedro.config import OmegaConfigLoader

    from cellbench.settings import CONFIG_LOADER_ARGS

    root = Path(__file__).resolve().parents[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = OmegaConfigLoader(str(root / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": "base"})
        return loader["parameters"]


@pytest.fixture
def base():
    return base_params


def free_port() -> int:
    """A TCP port free on 127.0.0.1, below 49152 (kedro-viz refuses the dynamic range)."""
    import random
    import socket

    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 49000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port found on 127.0.0.1 in 20000-49000")


@contextlib.contextmanager
def server(cmd: list[str], port: int, cwd=None, env=None, path: str = "/"):
    """A server process on 127.0.0.1:``port``, up when ``path`` answers 200 (at most 120 s); on exit
    stopped by its process group (a server already gone is fine)."""
    import os
    import signal
    import subprocess
    import time
    import urllib.request

    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"{cmd[:4]} did not start: {proc.stdout.read().decode()[-2000:]}")
                time.sleep(0.5)
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
