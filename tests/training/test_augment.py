"""Batch augmentations against per-crop hand versions."""

import numpy as np
import pytest
import torch

from cellbench.training.augment import random_rot90


def test_random_rot90_turns_each_crop_as_drawn():
    x = torch.arange(6 * 2 * 5 * 5, dtype=torch.float32).reshape(6, 2, 5, 5)
    out = random_rot90(x, np.random.default_rng(4), (0, 1, 2, 3))
    k = np.random.default_rng(4).choice((0, 1, 2, 3), size=6)  # the same draws
    assert len(set(k)) > 1
    for i in range(6):
        torch.testing.assert_close(out[i], torch.rot90(x[i], int(k[i]), dims=(1, 2)), rtol=0, atol=0)
    with pytest.raises(ValueError, match="random_rot90: square crops expected, got 5 x 4"):
        random_rot90(x[..., :4], np.random.default_rng(0))
