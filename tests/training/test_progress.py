"""Training is never silent: step, loss, rate and time left appear while a loop runs."""

import logging

import numpy as np
import torch

from cellbench.training.loops import Progress


def test_progress_reports_first_and_last_step_with_rate_and_time_left(caplog):
    caplog.set_level(logging.INFO, logger="cellbench.training")
    p = Progress("Demo", 5, batch_size=8, every_s=3600)
    for step in range(1, 6):
        p.update(step, 0.5 / step)
    lines = [r.getMessage() for r in caplog.records if r.name == "cellbench.training"]
    assert len(lines) == 2  # the first step, then the last (the clock interval is an hour)
    assert lines[0].startswith("Demo step 1/5: loss 0.5,") and "steps/s" in lines[0] and "cells/s" in lines[0]
    assert lines[1].startswith("Demo step 5/5: loss 0.1,") and lines[1].endswith("0m00s left")


def test_a_training_loop_reports_progress(caplog):
    from tests.conftest import base_params

    from cellbench.representations.pci import AutoencoderConfig, train_autoencoder

    caplog.set_level(logging.INFO, logger="cellbench.training")
    config = AutoencoderConfig.from_params({**base_params("representation.autoencoder"), "width": 0.0625, "steps": 3,
                                            "batch_size": 4, "device": "cpu"}, "representation.autoencoder")
    train_autoencoder(np.random.default_rng(0).random((8, 2, 64, 64)).astype(np.float32), config, torch.device("cpu"))
    assert any(r.getMessage().startswith("Autoencoder step 3/3: loss") for r in caplog.records)
