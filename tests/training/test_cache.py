"""The trained-model cache: a repeated (method, configuration, crops, code) loads instead of
training; a change of configuration or data trains again; entries are never half-written."""

import numpy as np
import pandas as pd
import pytest
import torch

import cellbench.representations.pci as pci_module
from cellbench.representations import run
from cellbench.training import cache

PATH = "representation.autoencoder"


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """The cache in ``tmp_path``; ``calls`` counts how often the autoencoder really trains."""
    monkeypatch.setenv("CELLBENCH_MODEL_CACHE", str(tmp_path / "cache"))
    calls = []
    real = pci_module.represent

    def represent(crops, config, device):
        calls.append(config.steps)
        return real(crops, config, device)

    monkeypatch.setattr(pci_module, "represent", represent)
    return calls


@pytest.fixture
def params():
    from tests.conftest import base_params

    return {**base_params(PATH), "width": 0.0625, "steps": 2, "batch_size": 8, "device": "cpu",
            "max_train_cells": 40}


@pytest.fixture(scope="module")
def crops(small_coos):
    return small_coos.take(np.arange(120))


def test_repeated_config_hits_and_changes_miss(counted, params, crops, tmp_path):
    first = run("autoencoder", crops, params, PATH)
    again = run("autoencoder", crops, params, PATH)
    assert counted == [2]  # the second call loaded the entry
    assert first.layers.keys() == again.layers.keys()
    for name in first.layers:
        pd.testing.assert_frame_equal(first.layers[name], again.layers[name])
    assert again.history == {k: [tuple(map(float, x)) for x in v] for k, v in first.history.items()}
    for k, v in first.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k])
    run("autoencoder", crops, {**params, "steps": 3}, PATH)  # configuration changed
    assert counted == [2, 3]
    changed = crops.take(np.arange(len(crops)))
    changed.images[0, 0, 0, 0] += 1  # one pixel of the data changed
    run("autoencoder", changed, params, PATH)
    assert counted == [2, 3, 2]
    entries = [p for p in (tmp_path / "cache").iterdir()]
    assert len(entries) == 3 and not any(p.name.startswith(".") for p in entries)  # no temporaries left


def test_metadata_change_misses_and_broken_entries_retrain(counted, params, crops, tmp_path):
    run("autoencoder", crops, params, PATH)
    relabelled = crops.take(np.arange(len(crops)))
    relabelled.metadata["Metadata_Split"] = relabelled.metadata["Metadata_Split"].iloc[::-1].to_numpy()
    assert cache.data_fingerprint(relabelled) != cache.data_fingerprint(crops)
    [entry] = list((tmp_path / "cache").iterdir())
    (entry / "artefact.pt").write_bytes(b"not a torch file")  # a damaged entry: trained again, replaced
    run("autoencoder", crops, params, PATH)
    assert counted == [2, 2]
    run("autoencoder", crops, params, PATH)
    assert counted == [2, 2]


def test_cache_off_writes_nothing(monkeypatch, params, crops, tmp_path):
    monkeypatch.setenv("CELLBENCH_MODEL_CACHE", "off")
    monkeypatch.chdir(tmp_path)
    run("autoencoder", crops, params, PATH)
    assert not (tmp_path / "data").exists()
