"""AE / VAE / VAE+ training (seed 003) through its configuration."""

import numpy as np
import pytest
import torch


def _vae(name, **over):
    from cellbench.representations.vae import VAEConfig

    from ..conftest import base_params

    return VAEConfig.from_params({**base_params(f"treatments.vae.{name}"), "width": 0.25, "steps": 30,
                                  "batch_size": 16, "gamma_delay": 5, "gamma_slope": 5, "lr": 1e-3, "device": "cpu",
                                  **over}, f"treatments.vae.{name}")


def test_vae_training_runs_and_reconstruction_improves():
    from cellbench.representations.vae import train
    from cellbench.training.preprocess import max_normalise

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    blobs = np.stack([np.exp(-((yy - rng.uniform(20, 44)) ** 2 + (xx - rng.uniform(20, 44)) ** 2) / 60.0)
                      for _ in range(48)])
    images = max_normalise(np.repeat(blobs[:, None], 3, axis=1) * 1000 + rng.random((48, 3, 64, 64)), size=68)
    assert images.shape == (48, 3, 68, 68) and np.isclose(images[:, :, 2:-2, 2:-2].max(), 1.0)
    cpu = torch.device("cpu")
    for variant in ("ae", "vae", "vaeplus"):
        model, hist = train(images, _vae(variant), cpu)
        pix = [v for _, v in hist["pixel_loss"]]
        assert np.mean(pix[-5:]) < np.mean(pix[:5]), variant
        assert (model.discriminator is not None) == (variant == "vaeplus")
        assert model.encoder.convs[0][0].out_channels == 8  # 32 filters x width 0.25
    from cellbench.config import ConfigError
    with pytest.raises(ConfigError, match=r"treatments\.vae\.ae\.variant: 'gan' is not one of"):
        _vae("ae", variant="gan")


def test_vae_width_one_is_the_published_model():
    from cellbench.models import VAEPlus

    a, b = VAEPlus(3, 256, True), VAEPlus(3, 256, True, width=1.0)
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    assert a.discriminator.head[0].out_channels == 64 and a.encoder.convs[0][0].out_channels == 32
    with pytest.raises(ValueError, match="width"):
        VAEPlus(3, 8, False, width=0)
