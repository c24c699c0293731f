"""AE / VAE / VAE+ building blocks (seed 003): shapes, parameter counts, losses, the gamma schedule."""

import math

import pytest
import torch

from cellbench.models import VAEPlus, gamma_schedule, kl_divergence
from cellbench.models.vae import pixel_loss, similarity_loss


def test_shapes_and_parameter_counts_from_the_specification():
    m = VAEPlus(in_channels=3, latent=256)
    conv = lambda a, b: 25 * a * b  # noqa: E731  (5x5, no bias)
    bn = lambda c: 2 * c  # noqa: E731
    trunk = conv(3, 32) + bn(32) + 2 * (conv(32, 32) + bn(32))
    assert sum(p.numel() for p in m.encoder.parameters()) == trunk + conv(32, 512) + bn(512)
    assert sum(p.numel() for p in m.decoder.parameters()) == (conv(256, 32) + bn(32) + 3 * (conv(32, 32) + bn(32))
                                                              + 32 * 3 + bn(3))
    assert sum(p.numel() for p in m.discriminator.parameters()) == trunk + conv(32, 64) + bn(64) + 64 + bn(1)
    x = torch.rand(2, 3, 68, 68)
    x_hat, mu, logvar = m(x)
    assert x_hat.shape == x.shape and mu.shape == logvar.shape == (2, 256)
    logit, hidden = m.discriminator(x)
    assert logit.shape == (2,) and [h.shape[-1] for h in hidden] == [64, 28, 10, 1]
    m.eval()
    torch.testing.assert_close(m.embed(x)["mu"], m.encoder(x)[0])
    assert VAEPlus(discriminator=False).discriminator is None


def test_kl_and_pixel_loss_hand_cases():
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    # 0.5 * ((1 + 1 - 1 - 0) + (2 + 0 - 1 - ln 2)) = 1 - ln(2) / 2
    assert float(kl_divergence(mu, logvar)) == pytest.approx(1 - math.log(2) / 2)
    assert float(kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4))) == 0.0
    x, x_hat = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    assert float(pixel_loss(x, x_hat)) == 2.0  # 0.5 * 4 pixels * 1, per sample


@pytest.mark.parametrize("step, layer, expected", [
    (0, 0, 0.0), (2500, 0, 0.0), (3750, 0, 0.5), (5000, 0, 1.0), (80000, 0, 1.0),
    (5000, 1, 0.0), (6250, 1, 0.5), (7500, 1, 1.0), (8750, 2, 0.5), (11250, 3, 0.5), (12500, 3, 1.0),
])
def test_progressive_gamma_schedule(step, layer, expected):
    assert gamma_schedule(step, layer) == pytest.approx(expected)


def test_similarity_loss_follows_the_schedule():
    a = [torch.zeros(2, 1, 3, 3) for _ in range(4)]
    b = [torch.ones(2, 1, 3, 3) for _ in range(4)]
    assert float(similarity_loss(a, b, step=2000, image_size=68, channels=3)) == 0.0
    # at step 6250: layer 0 at weight 1, layer 1 at 0.5; mean squared difference 1; scale 0.5*68*68*3
    assert float(similarity_loss(a, b, step=6250, image_size=68, channels=3)) == pytest.approx(1.5 * 0.5 * 68 * 68 * 3)

