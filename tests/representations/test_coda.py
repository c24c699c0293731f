"""The CODA family's training (seed 001): DINO pre-training and adaptation, the dual model, the
supervised ViT, MAE / TTT-MAE, and their configurations."""

import numpy as np
import pytest
import torch

from cellbench.adaptation import CrossBatchSampler
from cellbench.config import ConfigError
from cellbench.representations.coda import (ClassifierConfig, DinoConfig, ViTConfig, adapt_dual, dual_model,
                                            new_dino, predict, train_classifier, train_dino, train_mae,
                                            ttt_mae_predict)

from ..conftest import base_params

TINY_OVERRIDES = {"vit": {"image_size": 16, "patch_size": 4, "dim": 16, "depth": 2, "heads": 2, "drop_path": 0.1},
                  "head": {"out_dim": 32, "hidden": 16, "bottleneck": 8, "use_bn": True},
                  "global_size": 16, "local_size": 8, "n_local": 2, "steps": 3, "batch_size": 8, "lr": 1e-3,
                  "mae": {"steps": 3, "decoder_dim": 8, "decoder_depth": 1, "decoder_heads": 2},
                  "ttt": {"steps": 2, "batch_size": 8, "lr": 1e-3}}


def _merge(base: dict, over: dict) -> dict:
    return {k: _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
            for k, v in {**base, **over}.items()}


def dino(**over) -> DinoConfig:
    """conf/base's DINO settings, made tiny, with ``over`` on top."""
    return DinoConfig.from_params(_merge(_merge(base_params("domain_adaptation.dino"), TINY_OVERRIDES), over),
                                  "domain_adaptation.dino")


def classifier(**over) -> ClassifierConfig:
    return ClassifierConfig.from_params({**base_params("domain_adaptation.classifier"), "global_size": 16,
                                         "task_depth": 1, **over}, "domain_adaptation.classifier")


TINY = dino()


def _tiny_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 1000, (n, 3, 20, 20)).astype(np.uint16)
    y = np.arange(n) % 2
    images[y == 1, 0, 5:15, 5:15] += 3000  # class 1: a bright square in channel 0
    return images, y


def test_adaptation_changes_only_the_feature_extractor():
    images, y = _tiny_data()
    state, hist = train_dino(images, TINY, 0, torch.device("cpu"))
    assert len(hist["dino_loss"]) == 3
    dual = dual_model(state.teacher.backbone, 2, classifier(), 0)
    assert not any(p.requires_grad for p in dual.foundation.parameters())
    found_before = {k: v.clone() for k, v in dual.foundation.state_dict().items()}
    dual, _ = train_classifier(dual, images, y, images[:8], y[:8], classifier(steps=3, eval_every=3), 0,
                               torch.device("cpu"))
    assert all(torch.equal(found_before[k], v) for k, v in dual.foundation.state_dict().items())
    sampler = CrossBatchSampler(y, np.arange(32) % 4)
    adapted, new_state, _ = adapt_dual(dual, state, images, TINY, 1, torch.device("cpu"), sampler=sampler)
    before, after = dual.state_dict(), adapted.state_dict()
    for k in before:
        if k.startswith("foundation."):
            continue
        assert torch.equal(before[k], after[k]), k  # projector, task blocks, classifier bit-identical
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("foundation."))
    assert all(torch.equal(a, b) for a, b in zip(adapted.foundation.state_dict().values(),
                                                 new_state.teacher.backbone.state_dict().values()))


def test_fixed_seed_gives_identical_dino_weights():
    images, _ = _tiny_data()
    a, _ = train_dino(images, TINY, 3, torch.device("cpu"))
    b, _ = train_dino(images, TINY, 3, torch.device("cpu"))
    assert all(torch.equal(x, z) for x, z in zip(a.teacher.state_dict().values(), b.teacher.state_dict().values()))


def test_ttt_mae_is_deterministic_and_leaves_the_model_untouched():
    images, y = _tiny_data()
    encoder, decoder, hist = train_mae(images, TINY, 0, torch.device("cpu"))
    assert len(hist["mae_loss"]) == 3
    dual = dual_model(encoder, 2, classifier(), 0)
    snapshot = {k: v.clone() for k, v in dual.state_dict().items()}
    p1 = ttt_mae_predict(dual, decoder, images, TINY, 0, torch.device("cpu"))
    p2 = ttt_mae_predict(dual, decoder, images, TINY, 0, torch.device("cpu"))
    assert p1.shape == (32,) and np.array_equal(p1, p2)
    assert all(torch.equal(snapshot[k], v) for k, v in dual.state_dict().items())


def test_supervised_learns_a_visible_class():
    from cellbench.representations.coda import supervised_vit
    images, y = _tiny_data(64)
    model, hist = train_classifier(supervised_vit(TINY, 3, 2, 0), images, y, images, y,
                                   classifier(steps=60, lr=3e-3, eval_every=20), 0, torch.device("cpu"))
    assert (predict(model, images, 16, torch.device("cpu")) == y).mean() > 0.9


def test_vit_config_rejects_unknown_keys():
    from cellbench.representations.coda import vit_config
    with pytest.raises(ConfigError, match=r"dino\.vit\.width: unknown parameter"):
        dino(vit={"width": 3})
    with pytest.raises(ConfigError, match=r"dino\.vit\.image_size: 18 is not a multiple of patch_size 4"):
        dino(vit={"image_size": 18})
    assert vit_config(ViTConfig.from_params({**base_params("domain_adaptation.dino.vit"), "dim": 384, "heads": 6},
                                            "vit"), 3)["dim"] == 384


def test_last_head_layer_frozen_in_the_first_epoch():
    images, _ = _tiny_data()  # 32 images, batch 8: one epoch is 4 steps
    init = new_dino(TINY, 3, 0).student.head.last_v.detach().clone()
    frozen, _ = train_dino(images, dino(steps=4), 0, torch.device("cpu"))
    assert torch.equal(frozen.student.head.last_v, init)
    moved, _ = train_dino(images, dino(steps=5), 0, torch.device("cpu"))
    assert not torch.equal(moved.student.head.last_v, init)
    free, _ = train_dino(images, dino(steps=2, freeze_last_layer_epochs=0), 0, torch.device("cpu"))
    assert not torch.equal(free.student.head.last_v, init)
