"""Weakly supervised ResNet18 (plain, mixup, GRU) against per-channel texture on the simulated
BBBC021-like screen, judged as seeds 003/004 judge it: well means -> treatment profiles -> NSC/NSCB.

The network is trained on treatment labels (compound @ concentration, DMSO included) of the cells
of replicates 1 and 3 (DeepProfiler's split; replicate 2 is never trained on); MoA labels are never
seen. Features (``res4a``, the paper's conv4a, spatially averaged) of every cell are averaged per
well and go through the same profiling recipes as the texture features.

    python benchmarks/weak_supervision.py --steps 1500 --width 0.25 [--out benchmarks/results/weak_supervision.csv]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cellbench.features import multichannel_texture_features
from cellbench.metadata import feature_columns
from cellbench.metrics.retrieval import nsc_nscb
from cellbench.profiling import aggregate, apply_recipe
from cellbench.simulate import TreatmentDesign, simulate_treatments
from cellbench.training import resolve_device
from cellbench.training.preprocess import half_max_normalise
from cellbench.representations.weak import WeakConfig
from cellbench.representations.weak import train as train_weak

from _conf import base_params

STRATA = ["Metadata_Source", "Metadata_Batch", "Metadata_Plate", "Metadata_Well", "Metadata_Compound",
          "Metadata_Concentration", "Metadata_Treatment", "Metadata_MoA", "Metadata_Control", "Metadata_Replicate"]
RECIPES = {
    "plate_dmso_zscore_median": {"normalize": {"method": "standardize", "by": "Metadata_Plate"},
                                 "feature_select": ["drop_na_columns", "variance_threshold"],
                                 "treatment": {"operation": "median"}},
    "plate_dmso_zscore_tvn": {"normalize": {"method": "standardize", "by": "Metadata_Plate"},
                              "feature_select": ["drop_na_columns", "variance_threshold"],
                              "tvn": {"reg": 1.0}, "treatment": {"operation": "median"}},
}


def evaluate(name: str, cells: pd.DataFrame) -> list[dict]:
    wells = aggregate(cells, strata=STRATA, operation="mean")
    rows = []
    for recipe, spec in RECIPES.items():
        _, t = apply_recipe(wells, spec)
        res = nsc_nscb(t, t[feature_columns(t)].to_numpy())
        rows.append({"features": name, "recipe": recipe, "nsc": res["nsc"], "nscb": res["nscb"],
                     "n_treatments": res["nsc_n"]})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--regularisers", default="none,mixup,gru")
    ap.add_argument("--out", default="benchmarks/results/weak_supervision.csv")
    args = ap.parse_args()
    crops = simulate_treatments(TreatmentDesign()).materialize()
    meta, images = crops.metadata, np.asarray(crops.images)
    rows = evaluate("texture", pd.concat([meta, multichannel_texture_features(images, ("DNA", "Tubulin", "Actin"))],
                                         axis=1))
    x = half_max_normalise(images)
    train = meta["Metadata_Replicate"].isin([1, 3]).to_numpy()
    device = resolve_device("auto")
    for reg in args.regularisers.split(","):
        start = time.perf_counter()
        name = {"none": "resnet_plain", "mixup": "resnet_mixup", "gru": "resnet_gru"}[reg]
        config = WeakConfig.from_params({**base_params("treatments")["weak"][name], "width": args.width,
                                         "steps": args.steps, "batch_size": args.batch, "lr": 1e-3},
                                        f"treatments.weak.{name}")
        model, _, hist = train_weak(x[train], meta.loc[train, "Metadata_Treatment"].to_numpy(),
                               meta.loc[train, "Metadata_Batch"].to_numpy(), config, device)
        model.eval()
        with torch.no_grad():
            feats = np.concatenate([model.embed(torch.from_numpy(x[i:i + 512]).to(device))["res4a"].float().cpu().numpy()
                                    for i in range(0, len(x), 512)])
        seconds = time.perf_counter() - start
        cells = pd.concat([meta, pd.DataFrame(feats, columns=[f"res4a_{j}" for j in range(feats.shape[1])])], axis=1)
        for r in evaluate(f"resnet18_{reg}", cells):
            rows.append({**r, "train_embed_s": seconds, "final_loss": hist["train_loss"][-1][1]})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)
    print(pd.DataFrame(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
