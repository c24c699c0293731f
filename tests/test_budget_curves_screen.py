"""``benchmarks/budget_curves.py treatment`` scores whatever treatment crop store it is given (the
last ``treatment_profiling`` run's: conf/base's BBBC021-like screen or ``--env jump``'s). Its rows
carry the screen, and ``--resume`` refuses to mix rows of two screens in one CSV (session 15 found
the committed curves had been scored on the JUMP-like crops while labelled BBBC021-like)."""

import argparse

import numpy as np
import pandas as pd
import pytest


def _meta(sources: int, batches_per_source: int, cells: int = 24) -> pd.DataFrame:
    src = np.repeat([f"source_{i}" for i in range(sources)], cells // sources)
    batch = [f"{s}_b{i % batches_per_source}" for i, s in enumerate(src)]
    return pd.DataFrame({"Metadata_Source": src, "Metadata_Batch": batch,
                         "Metadata_Plate": [f"{b}_p{(i // batches_per_source) % 2}" for i, b in enumerate(batch)]})


def test_screen_is_counted_and_named(budget_curves):
    one = budget_curves.screen_of(_meta(1, 4))
    assert one == {"cells": 24, "sources": 1, "batches": 4, "plates": 8}
    assert "BBBC021-like" in budget_curves.screen_label(one) and "24 cells" in budget_curves.screen_label(one)
    three = budget_curves.screen_of(_meta(3, 2))
    assert three["sources"] == 3 and three["batches"] == 6
    assert "JUMP-like" in budget_curves.screen_label(three)


def test_resume_refuses_rows_of_another_screen(budget_curves, tmp_path):
    from cellbench.crops import Crops
    from cellbench.datasets import CropStoreDataset

    meta = _meta(1, 4)
    CropStoreDataset(str(tmp_path / "store")).save(Crops(np.ones((len(meta), 3, 16, 16), np.uint16), meta))
    out = tmp_path / "budget_treatment.csv"
    pd.DataFrame({"method": ["texture"], "seed": [0], "cells": [12960], "sources": [3], "batches": [6],
                  "plates": [24]}).to_csv(out, index=False)
    args = argparse.Namespace(crops=str(tmp_path / "store"), seeds="0", out=str(out), resume=True,
                              methods="resnet_plain", budgets="1", budgets_vae="1")
    with pytest.raises(SystemExit, match="another screen.*give another --out"):
        budget_curves.treatment(args)
    assert pd.read_csv(out).cells.tolist() == [12960]  # the CSV is left as it was


def test_resume_extends_a_network_to_new_budgets(budget_curves, tmp_path):
    """``--resume --budgets ...,10000`` after a study to 3,000 trains each network once more, to the
    largest budget, with snapshots at every budget it had and is asked for; its old rows go."""
    out = tmp_path / "budget_treatment.csv"
    steps = [100, 300, 1000, 3000]
    pd.DataFrame({"method": ["texture"] + ["resnet_plain"] * 4 + ["resnet_mixup"] * 4, "seed": 0,
                  "steps": [0] + steps + steps, "nscb": np.arange(9.0)}).to_csv(out, index=False)
    args = argparse.Namespace(out=str(out), resume=True)
    _, rows, done = budget_curves._resume(args, "method")
    assert done[("resnet_plain", 0)] == set(steps) and done[("texture", 0)] == {0}
    assert budget_curves._budgets_to_train(done, ("resnet_plain", 0), [1000, 3000]) == []  # nothing new
    assert budget_curves._budgets_to_train(done, ("resnet_plain", 0), [3000, 10000]) == steps + [10000]
    assert budget_curves._budgets_to_train(done, ("resnet_plain", 1), [3000, 10000]) == [3000, 10000]  # new seed
    budget_curves._drop_network(rows, "resnet_plain", 0)
    assert rows[0].method.tolist() == ["texture"] + ["resnet_mixup"] * 4
    fresh = argparse.Namespace(out=str(out), resume=False)
    assert budget_curves._resume(fresh, "method")[2] == {}
