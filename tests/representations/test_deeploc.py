"""DeepLoc: training with model selection, test-time layers, the entry point, the configuration."""

import numpy as np
import pytest
import torch

from cellbench.config import ConfigError
from cellbench.models import DeepLoc
from cellbench.representations.deeploc import DeepLocConfig, embed, predict, represent, train
from cellbench.training import percentile_stretch

from ..conftest import base_params
from .conftest import halves

CPU = torch.device("cpu")


def _config(**over):
    return DeepLocConfig.from_params({**base_params("representation.deeploc"), "width": 0.125, "batch_size": 32,
                                      "steps": 40, "lr": 0.01, "eval_every": 20, "device": "cpu", **over},
                                     "representation.deeploc")


def test_training_selects_a_checkpoint_and_loss_falls(tiny):
    labels = tiny.metadata["Metadata_Label"].to_numpy()
    model, classes, hist, val = train(percentile_stretch(np.asarray(tiny.images)), labels, _config(), CPU)
    first, last = halves(hist)
    assert last < first and len(val) == 32 and list(classes) == sorted(set(labels))
    assert [s for s, _ in hist["val_balanced_error"]] == [20, 40]
    best = min(hist["val_balanced_error"], key=lambda p: p[1])[0]
    assert hist["best_step"] == [(best, float(best))]


def test_represent_layers_match_predict(tiny):
    result = represent(tiny, _config(steps=3, eval_every=3), CPU)
    assert sorted(result.layers) == ["end_to_end", "fc2"]
    probs = result.layers["end_to_end"].filter(like="Prob_").to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    p, f = predict(result.model, percentile_stretch(np.asarray(tiny.images[:8])), CPU, 60)
    np.testing.assert_allclose(p, probs[:8], rtol=1e-5, atol=1e-6)
    assert result.layers["fc2"]["Metadata_Validation"].sum() == 32
    assert result.artefact["config"]["input_size"] == 60 and result.artefact["classes"] == sorted(
        int(c) for c in set(tiny.metadata["Metadata_Label"]))


def test_predict_does_not_depend_on_the_batch_size(tiny):
    """The inference batch size is a speed setting only (conf/base uses 64, the papers' 1024)."""
    torch.manual_seed(0)
    model = DeepLoc(2, 7, 0.125, 60)
    images = percentile_stretch(np.asarray(tiny.images[:70]))
    p64, f64 = predict(model, images, CPU, 60, batch_size=64)
    p7, f7 = predict(model, images, CPU, 60, batch_size=7)  # ragged last batch
    np.testing.assert_allclose(p7, p64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f7, f64, rtol=1e-5, atol=1e-5)
    assert p64.shape == (70, 7) and f64.shape[0] == 70


def test_five_crop_average_by_hand():
    model = torch.nn.Module()
    model.forward = lambda v: v.mean(dim=(1, 2, 3))[:, None] * torch.tensor([[1.0, -1.0]])
    model.embed = lambda v: {"fc2": v[:, :1, 0, 0], "logits": model.forward(v)}  # one pass gives both
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    out = embed(model, x, 2)
    crops = [x[:, :, 1:3, 1:3], x[:, :, :2, :2], x[:, :, :2, 2:], x[:, :, 2:, :2], x[:, :, 2:, 2:]]
    manual = sum(torch.softmax(torch.stack([c.mean(dim=(1, 2, 3)), -c.mean(dim=(1, 2, 3))], 1), 1) for c in crops) / 5
    torch.testing.assert_close(out["end_to_end"], manual)
    torch.testing.assert_close(out["fc2"], x[:, :1, 1, 1])


def test_configuration_checks():
    with pytest.raises(ConfigError, match=r"representation\.deeploc\.val_fraction: must be in \(0, 1\)"):
        _config(val_fraction=1.5)
    with pytest.raises(ConfigError, match=r"representation\.deeploc\.rot90"):
        _config(rot90=[5])
    with pytest.raises(ConfigError, match=r"representation\.deeploc\.device: 'gpu'"):
        _config(device="gpu")
    assert _config().replace(steps=7).steps == 7
    with pytest.raises(ConfigError, match=r"override\.stpes"):
        _config().replace(stpes=7)
