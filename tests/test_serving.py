"""Registered feature extractors applied to raw crops give the same features as the benchmark's
own embedding, and refuse crops the network cannot take."""

import numpy as np
import pytest

from cellbench.representations import run
from cellbench.serving import extract_features


@pytest.fixture(scope="module")
def crops(small_coos):
    return small_coos.take(np.arange(96))


@pytest.mark.parametrize("method", ["deeploc", "autoencoder", "pci"])
def test_extract_features_equals_the_benchmark_embedding(crops, method):
    from tests.conftest import base_params

    params = {**base_params(f"representation.{method}"), "width": 0.0625, "steps": 2, "batch_size": 8,
              "device": "cpu", "max_train_cells": 48, **({"min_cells_per_group": 2} if method == "pci" else {})}
    rep = run(method, crops, params, f"representation.{method}")
    served = extract_features(rep.artefact, np.asarray(crops.images))
    assert len(served) == len(crops)
    for name, table in rep.layers.items():
        cols = [c for c in table.columns if not c.startswith("Metadata_")]
        np.testing.assert_allclose(served[cols].to_numpy(), table[cols].to_numpy(), rtol=1e-5, atol=1e-6)


def test_extract_features_refuses_what_the_model_cannot_take(crops):
    from tests.conftest import base_params

    params = {**base_params("representation.autoencoder"), "width": 0.0625, "steps": 1, "batch_size": 8,
              "device": "cpu", "max_train_cells": 16}
    artefact = run("autoencoder", crops, params, "representation.autoencoder").artefact
    x = np.asarray(crops.images)
    with pytest.raises(ValueError, match=r"the model takes 2 channel\(s\), the crops have 3"):
        extract_features(artefact, np.concatenate([x, x[:, :1]], axis=1))
    with pytest.raises(ValueError, match="at least 32 x 32 px, got 16 x 16"):
        extract_features(artefact, x[:, :, :16, :16])
    with pytest.raises(ValueError, match="no crops given"):
        extract_features(artefact, x[:0])
    with pytest.raises(ValueError, match="N x C x H x W"):
        extract_features(artefact, x[0])
    with pytest.raises(ValueError, match="cannot be served"):
        extract_features({"model": "vgg16"}, x)
