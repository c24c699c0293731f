"""Paired cell inpainting and its autoencoder baseline: pairing, training, reproducibility, the
entry point and the configuration."""

import numpy as np
import pytest
import torch

from cellbench.config import ConfigError
from cellbench.representations.pci import (AutoencoderConfig, PCIConfig, pci_groups, represent, sample_partners,
                                           train_autoencoder, train_pci)
from cellbench.training import minmax_per_crop

from ..conftest import base_params
from .conftest import halves

CPU = torch.device("cpu")


def _config(cls, name, **over):
    return cls.from_params({**base_params(f"representation.{name}"), "width": 0.0625, "batch_size": 16, "steps": 30,
                            "device": "cpu", **over}, f"representation.{name}")


def test_pair_sampling_same_group_never_self():
    groups = np.array(["w1"] * 5 + ["w2"] * 3 + ["w3"] * 1)
    eligible, inverse, members = pci_groups(groups, min_cells=2)
    assert list(eligible) == list(range(8))  # the single-cell well is dropped
    rng = np.random.default_rng(0)
    a = np.repeat(eligible, 2000)
    b = sample_partners(a, inverse, members, rng)
    assert (a != b).all() and (groups[a] == groups[b]).all()
    counts = np.bincount(b[a == 0], minlength=5)[1:5]  # partners of cell 0: cells 1..4, uniform
    assert counts.min() > 400 and counts.max() < 600
    with pytest.raises(ValueError, match="no group"):
        pci_groups(groups, min_cells=6)



def test_training_loss_falls_and_is_reproducible(tiny):
    images = minmax_per_crop(np.asarray(tiny.images))
    config = _config(AutoencoderConfig, "autoencoder", seed=1)
    model, hist = train_autoencoder(images, config, CPU)
    first, last = halves(hist)
    assert last < 0.8 * first
    model2, _ = train_autoencoder(images, config, CPU)
    for (k, v), v2 in zip(model.state_dict().items(), model2.state_dict().values()):
        assert torch.equal(v, v2), k  # same seed, same CPU: bit-identical weights and features
    x = torch.from_numpy(images[:8])
    assert all(torch.equal(a, b) for a, b in zip(model.eval().embed(x).values(), model2.eval().embed(x).values()))
    groups = (tiny.metadata["Metadata_Plate"].astype(str) + tiny.metadata["Metadata_Well"].astype(str)).to_numpy()
    _, hist = train_pci(images, groups, _config(PCIConfig, "pci", min_cells_per_group=2), CPU)
    first, last = halves(hist)
    assert last < first


def test_represent_gives_every_layer_and_a_rebuildable_artefact(tiny):
    from cellbench.representations import rebuild

    result = represent(tiny, _config(PCIConfig, "pci", steps=2, min_cells_per_group=2), CPU)
    assert sorted(result.layers) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert all(len(t) == len(tiny) for t in result.layers.values())
    model = rebuild(result.artefact)
    x = torch.from_numpy(minmax_per_crop(np.asarray(tiny.images[:4])))
    feats = model.embed(x.contiguous(memory_format=torch.channels_last))["conv3"].detach().numpy()
    cols = [c for c in result.layers["conv3"].columns if c.startswith("PCI_conv3_")]
    np.testing.assert_allclose(feats, result.layers["conv3"][cols].to_numpy()[:4], rtol=1e-5, atol=1e-6)
    ae = represent(tiny, _config(AutoencoderConfig, "autoencoder", steps=2), CPU)
    assert ae.artefact["model"] == "autoencoder" and "AE_conv1_0" in ae.layers["conv1"].columns


def test_configuration_errors_name_the_key(tiny):
    with pytest.raises(ConfigError, match=r"representation\.pci\.stpes: unknown parameter.*known keys"):
        _config(PCIConfig, "pci", stpes=3)
    with pytest.raises(ConfigError, match=r"representation\.pci\.steps: must be > 0"):
        _config(PCIConfig, "pci", steps=0)
    with pytest.raises(ConfigError, match=r"representation\.pci\.lr: expected a number"):
        _config(PCIConfig, "pci", lr="fast")
    params = base_params("representation.autoencoder")
    del params["beta1"]
    with pytest.raises(ConfigError, match=r"representation\.autoencoder\.beta1: missing"):
        AutoencoderConfig.from_params(params, "representation.autoencoder")
    with pytest.raises(ValueError, match=r"pair_by: column\(s\) \['Metadata_Image'\]"):
        represent(tiny, _config(PCIConfig, "pci", pair_by=["Metadata_Image"]), CPU)
