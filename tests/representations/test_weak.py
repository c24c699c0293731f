"""Weakly supervised ResNet18 pieces (seed 004): architecture, sampling, mixup, GRU sets."""

import numpy as np
import pytest
import torch

from cellbench.models import ResNet18, SequenceClassifier
from cellbench.training.preprocess import half_max_normalise
from cellbench.representations.weak import class_uniform_indices, mixup, random_shift, sequence_indices


def test_resnet18_matches_its_specification():
    m = ResNet18(in_channels=3, n_classes=10)
    conv = lambda a, b, k: k * k * a * b  # noqa: E731  (no bias; BN carries the offset)
    bn = lambda c: 2 * c  # noqa: E731
    trunk = conv(3, 64, 7) + bn(64)
    c = 64
    for i, ch in enumerate((64, 128, 256, 512)):
        for b in range(2):
            c_in = c if b == 0 else ch
            trunk += conv(c_in, ch, 3) + bn(ch) + conv(ch, ch, 3) + bn(ch)
            if b == 0 and (i > 0):
                trunk += conv(c_in, ch, 1) + bn(ch)
        c = ch
    assert trunk == 11_176_512  # torchvision resnet18 without its fc layer
    head = 512 * 256 + bn(256) + 256 * 10 + 10
    assert sum(p.numel() for p in m.parameters()) == trunk + head
    feats = m.eval().embed(torch.randn(2, 3, 64, 64))
    assert {k: v.shape[1] for k, v in feats.items()} == {"res3": 128, "res4a": 256, "res4": 256, "res5": 512}
    assert SequenceClassifier(m, 10)(torch.randn(2, 5, 3, 64, 64)).shape == (2, 10)


def test_mixup_labels_sum_to_one_and_match_the_image_weights():
    rng = np.random.default_rng(0)
    x = torch.randn(64, 3, 8, 8)
    y = torch.nn.functional.one_hot(torch.randint(0, 5, (64,)), 5).float()
    xm, ym, lam, partner = mixup(x, y, 0.2, rng)
    np.testing.assert_allclose(ym.sum(dim=1).numpy(), 1.0, rtol=1e-6)
    expected = torch.from_numpy(lam)[:, None, None, None] * x + (1 - torch.from_numpy(lam)[:, None, None, None]) * x[partner]
    torch.testing.assert_close(xm, expected)
    torch.testing.assert_close(ym, torch.from_numpy(lam)[:, None] * y + (1 - torch.from_numpy(lam)[:, None]) * y[partner])
    assert (lam < 0.1).mean() + (lam > 0.9).mean() > 0.5  # Beta(0.2, 0.2) puts most mass near 0 and 1


def test_gru_sets_are_one_treatment_from_several_batches():
    labels = np.repeat(["a", "b"], [30, 30])
    batches = np.tile(["w1", "w2", "w3"], 20)
    sets = sequence_indices(labels, batches, 200, 3, np.random.default_rng(0))
    assert all(len(set(labels[s])) == 1 for s in sets)
    assert all(len(set(batches[s])) == 3 for s in sets)  # three cells, three different weeks
    longer = sequence_indices(labels, batches, 50, 5, np.random.default_rng(1))
    assert all(len(set(batches[s])) == 3 for s in longer)  # 5 cells cycle through the 3 weeks


def test_class_uniform_sampling_and_normalisation():
    labels = np.array(["big"] * 900 + ["small"] * 100)
    picked = class_uniform_indices(labels, 4000, np.random.default_rng(0))
    assert abs(np.mean(labels[picked] == "small") - 0.5) < 0.03
    x = np.zeros((1, 1, 2, 2), np.uint16)
    x[0, 0] = [[0, 50], [100, 25]]
    np.testing.assert_allclose(half_max_normalise(x)[0, 0], [[-1, 0], [1, -0.5]])
    shifted = random_shift(torch.ones(20, 1, 10, 10), 0.3, np.random.default_rng(0))
    assert (shifted.sum(dim=(1, 2, 3)) >= 49).all() and (shifted == 0).any()


def _weak(name="resnet_plain", **over):
    from cellbench.representations.weak import WeakConfig

    from ..conftest import base_params

    return WeakConfig.from_params({**base_params(f"treatments.weak.{name}"), "width": 0.125, "steps": 2,
                                   "batch_size": 8, "device": "cpu", **over}, f"treatments.weak.{name}")


def test_weak_training_runs_each_regulariser():
    from cellbench.representations.weak import train

    rng = np.random.default_rng(0)
    imgs = half_max_normalise(rng.integers(0, 1000, (40, 3, 32, 32)).astype(np.uint16))
    labels, batches = np.repeat(np.arange(4), 10), np.tile(np.arange(2), 20)
    for name in ("resnet_plain", "resnet_mixup", "resnet_gru"):
        model, classes, hist = train(imgs, labels, batches, _weak(name), torch.device("cpu"))
        assert len(hist["train_loss"]) == 2 and list(classes) == [0, 1, 2, 3]
    from cellbench.config import ConfigError
    with pytest.raises(ConfigError, match=r"treatments\.weak\.resnet_plain\.regulariser: 'dropout' is not one of"):
        _weak(regulariser="dropout")
    with pytest.raises(ConfigError, match=r"treatments\.weak\.resnet_plain\.layers"):
        _weak(layers=["conv9"])


def test_weak_represent_embeds_every_cell():
    import pandas as pd

    from cellbench.crops import Crops
    from cellbench.representations.weak import represent

    rng = np.random.default_rng(1)
    meta = pd.DataFrame({"Metadata_Treatment": np.repeat(["a", "b"], 6), "Metadata_Batch": np.tile(["w1", "w2"], 6),
                         "Metadata_Replicate": np.tile([1, 2, 3], 4)})
    crops = Crops(rng.integers(0, 1000, (12, 3, 32, 32)).astype(np.uint16), meta)
    result = represent(crops, _weak("resnet_mixup"), torch.device("cpu"))
    assert list(result.layers) == ["res4a"] and len(result.layers["res4a"]) == 12
    assert result.artefact["classes"] == ["a", "b"] and result.config.regulariser == "mixup"


def test_precomputed_groups_draw_exactly_what_per_step_grouping_drew():
    """The loop computes the label / batch groups once; the draws are those of grouping every step
    (the previous implementation, written out here)."""
    from cellbench.representations.weak import batch_groups, label_members

    def per_step_sequences(labels, batches, n_sets, length, rng):
        classes, inverse = np.unique(labels, return_inverse=True)
        out = np.empty((n_sets, length), dtype=np.int64)
        for s in range(n_sets):
            members = np.flatnonzero(inverse == rng.integers(len(classes)))
            groups = [members[batches[members] == b] for b in np.unique(batches[members])]
            order = rng.permutation(len(groups))
            for t in range(length):
                g = groups[order[t % len(groups)]]
                out[s, t] = g[rng.integers(len(g))]
        return out

    rng = np.random.default_rng(3)
    labels = rng.choice(["a", "b", "c", "d"], 300)
    batches = rng.choice(["w1", "w2", "w3"], 300)
    groups, members = batch_groups(labels, batches), label_members(labels)
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(5):  # consecutive steps share one generator
        np.testing.assert_array_equal(sequence_indices(labels, batches, 8, 3, a, groups),
                                      per_step_sequences(labels, batches, 8, 3, b))
        np.testing.assert_array_equal(class_uniform_indices(labels, 16, a, members),
                                      class_uniform_indices(labels, 16, b))
