"""Architectures against their specifications, training behaviour, reproducibility, artefacts."""

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.io.core import DatasetError

from cellbench.datasets import FeatureTablesDataset, TorchModelDataset
from cellbench.models import VGG16, ConvAutoencoder, DeepLoc, PairedCellInpainting, build_model, vgg16_state_dict_keys
from cellbench.training import minmax_per_crop, percentile_stretch, to_vgg_rgb


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def conv(c_in, c_out, k=3):
    return k * k * c_in * c_out + c_out


def test_deeploc_matches_its_specification():
    m = DeepLoc(in_channels=2, n_classes=7)
    bn = lambda c: 2 * c  # noqa: E731  (scale and offset)
    convs = [(2, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 256)]
    expected = sum(conv(a, b) + bn(b) for a, b in convs)
    expected += (8 * 8 * 256 * 512 + 512) + bn(512) + (512 * 512 + 512) + bn(512) + (512 * 7 + 7) + bn(7)
    assert n_params(m) == expected == 10_985_237
    assert m.flat_dim == 16_384  # 60 -> 30 -> 15 -> 8 with SAME pooling
    out = m.eval().embed(torch.randn(3, 2, 60, 60))
    assert out["logits"].shape == (3, 7) and out["fc2"].shape == (3, 512)
    assert m.features[1].eps == 1e-3 and m.features[1].momentum == 0.5


def test_pci_and_autoencoder_match_their_specification():
    m = PairedCellInpainting(x_channels=2, y_channels=1, out_channels=1)
    bn = lambda c: 2 * c  # noqa: E731
    src = [(2, 96), (96, 256), (256, 384), (384, 384), (384, 256)]
    tgt = [(1, 16), (16, 32), (32, 32)]
    dec = [(288, 256), (256, 384), (384, 384), (384, 256), (256, 96)]
    expected = sum(conv(a, b) + bn(b) for a, b in src + tgt) + sum(conv(a, b) for a, b in dec) + conv(96, 1, 1)
    assert n_params(m) == expected
    y = m(torch.randn(2, 2, 64, 64), torch.randn(2, 1, 64, 64))
    assert y.shape == (2, 1, 64, 64)
    widths = {k: v.shape[1] for k, v in m.embed(torch.randn(2, 2, 64, 64)).items()}
    assert widths == {"conv1": 96, "conv2": 256, "conv3": 384, "conv4": 384, "conv5": 256}
    ae = ConvAutoencoder(in_channels=2)
    dec_ae = [(256, 256)] + dec[1:]
    assert n_params(ae) == sum(conv(a, b) + bn(b) for a, b in src) + sum(conv(a, b) for a, b in dec_ae) + conv(96, 2, 1)
    assert ae(torch.randn(2, 2, 64, 64)).shape == (2, 2, 64, 64)
    # features are taken before BatchNorm: non-negative (post-ReLU) maxima
    assert all((v >= 0).all() for v in ae.embed(torch.rand(2, 2, 64, 64)).values())


def test_vgg16_torchvision_layout(tmp_path):
    m = VGG16()
    sd = m.state_dict()
    assert list(sd) == vgg16_state_dict_keys()
    assert sd["features.0.weight"].shape == (64, 3, 3, 3) and sd["features.28.weight"].shape == (512, 512, 3, 3)
    assert sd["classifier.0.weight"].shape == (4096, 25088) and sd["classifier.6.weight"].shape == (1000, 4096)
    assert n_params(m) == 138_357_544  # torchvision's documented count
    out = m.embed(torch.randn(2, 3, 64, 64))
    assert {k: v.shape[1] for k, v in out.items()} == {"conv3_3": 256, "conv4_1": 512, "conv4_2": 512}
    # a file saved from a torchvision-layout model loads strictly into ours
    torch.save({k: v.clone() for k, v in sd.items()}, tmp_path / "vgg16.pth")
    VGG16().load_state_dict(torch.load(tmp_path / "vgg16.pth", weights_only=True), strict=True)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet")


def test_preprocessing_hand_cases():
    x = np.zeros((1, 2, 4, 4), np.uint16)
    x[0, 0] = np.arange(16).reshape(4, 4) * 10
    x[0, 1] = 3  # constant channel
    mm = minmax_per_crop(x)
    assert mm[0, 0].min() == 0 and mm[0, 0].max() == 1 and (mm[0, 1] == 0).all()
    ps = percentile_stretch(x, 0, 100)
    np.testing.assert_allclose(ps[0, 0], x[0, 0] / 150.0, rtol=1e-6)
    assert (ps[0, 1] == 0).all()  # range 0 <= 1: only shifted
    rgb = to_vgg_rgb(x)
    assert rgb.shape == (1, 3, 4, 4)
    np.testing.assert_allclose(rgb[0, 0, 0, 0], (0 - 0.485) / 0.229, rtol=1e-6)


def test_model_artefact_dataset(tmp_path):
    ds = TorchModelDataset(str(tmp_path / "m.pt"))
    m = DeepLoc(width=0.1)
    ds.save({"model": "deeploc", "config": {"width": 0.1}, "state_dict": m.state_dict(), "classes": [0, 1]})
    back = ds.load()
    rebuilt = build_model(back["model"], **back["config"])
    rebuilt.load_state_dict(back["state_dict"])
    assert back["classes"] == [0, 1]
    with pytest.raises(DatasetError, match="expected a dict with a 'state_dict'"):
        ds.save(m)
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a readable weights-only torch file"):
        TorchModelDataset(str(tmp_path / "bad.pt")).load()
    assert not list(tmp_path.glob(".m.pt.*"))


def test_feature_tables_dataset_replaces_layers(tmp_path):
    ds = FeatureTablesDataset(str(tmp_path / "vgg16"))
    assert ds.load() == {}
    t = pd.DataFrame({"Metadata_Label": [0], "f": [1.0]})
    ds.save({"conv3_3": t, "conv4_1": t})
    assert set(ds.load()) == {"conv3_3", "conv4_1"}
    ds.save({"conv4_2": t})
    assert set(ds.load()) == {"conv4_2"}  # stale layers are gone
    ds.save({})
    assert ds.load() == {}
