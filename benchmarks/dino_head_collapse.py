"""Why conf/base puts BN in the DINO head: at batch 64 and 150 steps the reference head (no BN)
collapses to a uniform output (loss -> ln K) and its features are worse than a random ViT's.

Trains DINO on one simulated JUMP-like source (6 MoAs, 10 uM) with several head / momentum
settings and reports the loss trajectory and a 3-fold linear-probe MoA accuracy of the teacher's
class token (the probe is a diagnostic of the features, never used to pick test settings).

    python benchmarks/dino_head_collapse.py
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from _conf import base_params

from cellbench.adaptation.dino import eval_view
from cellbench.representations.coda import DinoConfig, train_dino
from cellbench.simulate.treatments import TreatmentDesign, simulate_treatments
from cellbench.training.preprocess import max_normalise

MOAS = ["Actin disruptors", "DNA damage", "Eg5 inhibitors", "Microtubule destabilizers", "Microtubule stabilizers",
        "Protein synthesis"]
HEAD = {"out_dim": 256, "hidden": 256, "bottleneck": 64, "use_bn": False}
BASE = {"vit": {"image_size": 48, "patch_size": 8, "dim": 64, "depth": 3, "heads": 2, "drop_path": 0.1}, "head": HEAD,
        "global_size": 48, "local_size": 24, "n_local": 4, "steps": 150, "batch_size": 64, "lr": 5e-4,
        "warmup_fraction": 0.1, "momentum_teacher": 0.996}
def _merge(base: dict, over: dict) -> dict:
    return {k: _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
            for k, v in {**base, **over}.items()}


CONFIGS = {
    "reference head (no BN), EMA 0.996": {},
    "reference head, EMA 0.99": {"momentum_teacher": 0.99},
    "BN head, EMA 0.996": {"head": {**HEAD, "use_bn": True}},
    "BN head, EMA 0.99 (conf/base)": {"momentum_teacher": 0.99, "head": {**HEAD, "use_bn": True}},
    "random ViT (no training)": {"steps": 1, "lr": 0.0},
}


def main():
    torch.set_num_threads(2)
    design = TreatmentDesign.from_params({"design": "jump", "n_sources": 1, "moas": MOAS, "cells_per_well": 16,
                                          "concentrations": [10.0], "compounds_per_moa": 4, "inactive_fraction": 0.0,
                                          "batches_per_source": 2, "replicates": 3})
    crops = simulate_treatments(design).materialize()
    keep = ~crops.metadata["Metadata_Control"].to_numpy()
    images, meta = crops.images[keep], crops.metadata[keep]
    y = np.searchsorted(sorted(meta["Metadata_MoA"].unique()), meta["Metadata_MoA"])
    print(f"{len(images)} cells, {len(set(y))} MoAs")
    for name, override in CONFIGS.items():
        t = time.perf_counter()
        config = DinoConfig.from_params(_merge(_merge(base_params("domain_adaptation")["dino"], BASE), override), "dino")
        state, hist = train_dino(images, config, 0, torch.device("cpu"))
        with torch.no_grad():
            f = state.teacher.backbone.features(eval_view(torch.from_numpy(max_normalise(images)), 48)).numpy()
        probe = cross_val_score(LogisticRegression(max_iter=2000), (f - f.mean(0)) / (f.std(0) + 1e-6), y, cv=3).mean()
        loss = [v for _, v in hist["dino_loss"]]
        print(f"{name:36s} {time.perf_counter() - t:5.0f} s  loss {loss[0]:.2f} -> {loss[len(loss) // 2]:.2f} -> "
              f"{loss[-1]:.2f} (ln K = {np.log(HEAD['out_dim']):.2f})  linear probe {probe:.3f}")


if __name__ == "__main__":
    main()
