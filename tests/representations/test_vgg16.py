"""VGG16 transfer: weights from a local torchvision-layout file, left out without one, and a
misspelt path is an error before any work."""

import numpy as np
import pytest
import torch

from cellbench.config import ConfigError
from cellbench.models import VGG16
from cellbench.representations.vgg16 import VGG16Config, represent

from ..conftest import base_params


def _config(**over):
    return VGG16Config.from_params({**base_params("representation.vgg16"), "device": "cpu", **over},
                                   "representation.vgg16")


def test_weights_path_and_layers_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"representation\.vgg16\.weights: no file"):
        _config(weights=str(tmp_path / "vgg16.pht"))
    with pytest.raises(ConfigError, match=r"representation\.vgg16\.layers: unknown layer\(s\) \['conv6_1'\]"):
        _config(layers=["conv6_1"])
    (tmp_path / "tensor.pth").write_bytes(b"")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    from cellbench.representations.vgg16 import load
    with pytest.raises(ValueError, match="expected a state dict, found a Tensor"):
        load(str(tmp_path / "tensor.pth"))


def test_without_weights_it_is_left_out_and_with_them_every_layer(tmp_path, small_coos, caplog):
    crops = small_coos.take(np.arange(6))
    assert represent(crops, _config(), torch.device("cpu")).layers == {}
    assert "VGG16 left out" in caplog.text
    torch.manual_seed(0)
    torch.save(VGG16().state_dict(), tmp_path / "vgg16.pth")
    result = represent(crops, _config(weights=str(tmp_path / "vgg16.pth"), layers=["conv3_3"]), torch.device("cpu"))
    table = result.layers["conv3_3"]
    assert len(table) == 6 and len([c for c in table.columns if c.startswith("VGG16_conv3_3_")]) == 256
