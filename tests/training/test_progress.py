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


def test_counting_measures_the_first_call_and_adds_it_per_call():
    p = Progress("Demo", 3)
    lin = torch.nn.Linear(16, 5)
    for _ in range(3):
        with p.counting():
            lin(torch.randn(4, 16))
    assert p.flops == 3 * 2 * 16 * 5 * 4  # 2 d_in d_out per row, 4 rows, three calls
    assert p.history(3)["flops"] == [(3, 3 * 640.0)]


def _autoencoder(steps):
    from tests.conftest import base_params

    from cellbench.representations.pci import AutoencoderConfig

    return AutoencoderConfig.from_params({**base_params("representation.autoencoder"), "width": 0.0625,
                                          "steps": steps, "batch_size": 4, "device": "cpu"},
                                         "representation.autoencoder")


def test_a_loop_records_its_flops_and_snapshots_equal_shorter_runs():
    from cellbench.models.pci import ConvAutoencoder
    from cellbench.representations.pci import train_autoencoder
    from cellbench.training.flops import count_flops
    from cellbench.training.loops import capture_snapshots

    images = np.random.default_rng(0).random((8, 2, 64, 64)).astype(np.float32)
    with capture_snapshots([2]) as snaps:
        _, history = train_autoencoder(images, _autoencoder(4), torch.device("cpu"))
    ae = ConvAutoencoder(2, 0.0625)
    x = torch.from_numpy(images[:4])
    per_step = count_flops(lambda a: torch.mean((ae(a) - a) ** 2), x, backward=True)
    assert history["flops"][-1] == (4, 4.0 * per_step)
    assert [s["step"] for s in snaps] == [2] and snaps[0]["flops"] == 2.0 * per_step
    short, _ = train_autoencoder(images, _autoencoder(2), torch.device("cpu"))  # the 2-step run, from scratch
    for k, v in short.state_dict().items():
        torch.testing.assert_close(snaps[0]["state_dict"][k], v.cpu(), rtol=0, atol=0)


def test_profile_steps_times_one_window_and_profiles_the_next():
    import pytest

    from cellbench.representations.pci import train_autoencoder
    from cellbench.training.loops import profile_steps

    images = np.random.default_rng(0).random((8, 2, 64, 64)).astype(np.float32)
    with profile_steps(1, 2, 2) as taken:
        train_autoencoder(images, _autoencoder(6), torch.device("cpu"))
    assert len(taken) == 1
    record = taken[0]
    assert record["loop"] == "Autoencoder" and record["batch_size"] == 4 and record["steps"] == 2
    assert record["wall_seconds"] > 0 and record["profiled_steps"] == 2 and record["profiled_seconds"] > 0
    names = {e.key for e in record["profile"].key_averages()}
    assert any("convolution" in n for n in names)  # the profiled steps' operators were recorded
    with profile_steps(2, 2, 5) as short:  # a loop ending inside its profiled window closes it there
        train_autoencoder(images, _autoencoder(6), torch.device("cpu"))
    assert [r["profiled_steps"] for r in short] == [2]
    with profile_steps(2, 5, 5) as none:  # one ending inside its timed window leaves nothing
        train_autoencoder(images, _autoencoder(6), torch.device("cpu"))
    assert none == []
    with pytest.raises(ValueError, match="profile_steps: first, timed and profiled must be >= 1"):
        with profile_steps(0, 1, 1):
            pass
