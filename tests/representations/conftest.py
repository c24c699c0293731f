import numpy as np
import pytest


@pytest.fixture(scope="module")
def tiny(small_coos):
    """160 Training crops of the small simulated COOS-7."""
    return small_coos.take(np.flatnonzero(small_coos.metadata["Metadata_Split"].to_numpy() == "train")[:160])


def halves(history):
    losses = [v for _, v in history["train_loss"]]
    return np.mean(losses[:5]), np.mean(losses[-5:])
