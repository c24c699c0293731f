"""The generic pre-training pool (``domain_adaptation.pool``): kept apart from the benchmark,
pre-trained once (model cache), loadable as ``dino.pretrained``; and the target linear probe."""

import numpy as np
import pytest
import torch

from cellbench.adaptation import pool as pool_module
from cellbench.adaptation.experiment import linear_probe
from cellbench.adaptation.pool import NO_POOL, pool_crops, pool_foundation
from cellbench.config import ConfigError
from cellbench.datasets import TorchModelDataset
from cellbench.representations.coda import CodaConfig, new_dino, supervised_vit

from ..conftest import base_params
from ..representations.test_coda import TINY_OVERRIDES, _merge

POOL = {"simulation": {"design": "jump", "seed": 1, "n_sources": 3, "batches_per_source": 1, "replicates": 2,
                       "cells_per_well": 1, "compounds_per_moa": 1, "concentrations": [10.0],
                       "moas": ["Epithelial", "Kinase inhibitors"]},
        "exclude_sources": ["source_1"], "seed": 0, "dino": {"steps": 2}}


def coda(**over) -> CodaConfig:
    params = _merge(base_params("domain_adaptation"), {"dino": TINY_OVERRIDES, "pool": POOL})
    return CodaConfig.from_params(_merge(params, over), "domain_adaptation")


def test_the_pool_must_be_another_screen_and_fit_the_foundation(tmp_path):
    assert coda().pool.exclude_sources == ("source_1",)
    with pytest.raises(ConfigError, match=r"domain_adaptation\.pool\.simulation\.seed: 0 is the benchmark's own"):
        coda(pool={"simulation": {"seed": 0}})
    with pytest.raises(ConfigError, match=r"domain_adaptation\.pool\.dino\.vit: the pool's ViT is the experiment's"):
        coda(pool={"dino": {"vit": {"dim": 32}}})
    with pytest.raises(ConfigError, match=r"domain_adaptation\.pool\.dino\.stpes: unknown parameter"):
        coda(pool={"dino": {"stpes": 3}})
    with pytest.raises(ConfigError, match=r"domain_adaptation\.pool\.exclude_source: unknown parameter"):
        coda(pool={"exclude_source": ["source_1"]})
    weights = tmp_path / "vit.pt"
    weights.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"domain_adaptation\.pool: set together with domain_adaptation\.dino\.pretrained"):
        coda(dino={"pretrained": str(weights)})


def test_pool_crops_leave_out_the_reference_microscope():
    crops = pool_crops(coda().pool)
    meta = crops.metadata
    assert set(meta.Metadata_Source) == {"source_2", "source_3"}
    assert set(meta.Metadata_MoA) <= {"Epithelial", "Kinase inhibitors", "DMSO"}
    assert len(crops) == len(meta) == 2 * 2 * (2 + 6)  # 2 sources x 2 plates x (2 treatments + 6 DMSO wells) x 1 cell
    with pytest.raises(ValueError, match=r"pool\.exclude_sources: \['source_9'\] not in the pool's screen"):
        pool_crops(coda(pool={"exclude_sources": ["source_9"]}).pool)


def test_pool_foundation_is_cached_and_loads_as_dino_pretrained(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLBENCH_MODEL_CACHE", str(tmp_path / "cache"))
    calls = []
    trained = pool_module.pretrain_on_pool
    monkeypatch.setattr(pool_module, "pretrain_on_pool", lambda *a: calls.append(1) or trained(*a))
    config = coda()
    artefact, history = pool_foundation(config, torch.device("cpu"))
    assert len(calls) == 1 and [s for s, _ in history["dino_loss"]] == [1, 2]
    assert artefact["pool"]["sources"] == ["source_2", "source_3"] and artefact["pool"]["steps"] == 2
    again, history_again = pool_foundation(config, torch.device("cpu"))  # same pool, settings, code: no training
    assert len(calls) == 1 and history_again == history
    assert all(torch.equal(again["state_dict"][k], v) for k, v in artefact["state_dict"].items())
    pool_foundation(coda(pool={"dino": {"steps": 3}}), torch.device("cpu"))  # other settings: trained again
    assert len(calls) == 2
    pool_foundation(coda(pool={"simulation": {"seed": 2}}), torch.device("cpu"))  # another pool: trained again
    assert len(calls) == 3
    # the artefact, saved by the catalog's dataset, is a checkpoint that dino.pretrained loads
    path = tmp_path / "da_pool_foundation.pt"
    TorchModelDataset(str(path)).save(artefact)
    scratch = CodaConfig.from_params({**coda().to_dict(), "pool": None}, "domain_adaptation")
    from_file = scratch.replace(dino={**scratch.dino.to_dict(), "pretrained": str(path)})
    for model in (new_dino(from_file.dino, 3, seed=5).student.backbone, new_dino(scratch.dino, 3, 5, artefact["state_dict"]).teacher.backbone,
                  supervised_vit(scratch.dino, 3, 4, 5, artefact["state_dict"])):
        state = model.state_dict()
        assert all(torch.equal(state[k], v) for k, v in artefact["state_dict"].items())
    assert not torch.equal(new_dino(scratch.dino, 3, 5).student.backbone.state_dict()["pos_embed"],
                           artefact["state_dict"]["pos_embed"])


def test_no_pool_is_an_empty_artefact():
    config = CodaConfig.from_params({**coda().to_dict(), "pool": None}, "domain_adaptation")
    assert pool_foundation(config, torch.device("cpu")) == (NO_POOL, {})


def test_linear_probe_hand_cases():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    plates = np.tile(np.repeat(["a", "b", "c"], 10), 2)  # every plate holds both classes
    separable = np.c_[labels * 4.0 + rng.normal(0, 0.1, 60), rng.normal(0, 1, 60)]
    assert linear_probe(separable, labels, plates, seed=0) == 1.0
    # features that only name the plate, labels that follow the plate: a probe scored on plates it
    # was not fitted on cannot know the held-out plate's label (ungrouped folds would give 1.0)
    plate_of = np.repeat(np.arange(6), 10)
    onehot = np.eye(6)[plate_of]
    assert linear_probe(onehot, plate_of % 2, plate_of.astype(str), seed=0) <= 0.5
    with pytest.raises(ValueError, match="1 plate"):
        linear_probe(separable, labels, np.full(60, "a"), seed=0)
