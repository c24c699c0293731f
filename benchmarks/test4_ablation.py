"""Which part of the second microscope costs each representation its Test4 accuracy?

    python benchmarks/test4_ablation.py --size 0.05 --out benchmarks/results

Simulated COOS-7 (``conf/base`` settings). Only the Test4 plates are imaged on the second
microscope, and its parameters draw no random numbers, so every variant below has the same
Training cells and the same Test4 cells up to the instrument; DeepLoc (``conf/base``) and Texture
are trained once on Training and scored (``conf/base`` kNN and L1-LR, as ``evaluation`` does) on
Test4 as imaged by:

- ``reference``: the first microscope (what is left is Test4's late-day and plate effects),
- ``psf``, ``camera`` (gain, offset, read noise), ``photons``, ``vignetting``: one factor of the
  second microscope at its default, the others at 1,
- ``all``: the default second microscope (the benchmark's Test4).

Writes ``test4_ablation.csv`` (class-balanced error per representation / classifier / variant).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")

import numpy as np
import pandas as pd
from _conf import ROOT, base_params

from cellbench.crops import Crops
from cellbench.features import coos_texture_features
from cellbench.benchmark import EvaluationConfig, evaluate_layers
from cellbench.representations import run
from cellbench.simulate import CoosDesign, Nuisance, simulate_coos7

NEUTRAL = {"scope_psf_factor": 1.0, "scope_gain_factor": 1.0, "scope_offset_factor": 1.0,
           "scope_read_noise_factor": 1.0, "scope_photon_factor": 1.0, "scope_vignetting_factor": 1.0}
DEFAULT = Nuisance()
VARIANTS = {
    "reference": {},
    "psf": {"scope_psf_factor": DEFAULT.scope_psf_factor},
    "camera": {"scope_gain_factor": DEFAULT.scope_gain_factor, "scope_offset_factor": DEFAULT.scope_offset_factor,
               "scope_read_noise_factor": DEFAULT.scope_read_noise_factor},
    "photons": {"scope_photon_factor": DEFAULT.scope_photon_factor},
    "vignetting": {"scope_vignetting_factor": DEFAULT.scope_vignetting_factor},
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    t0 = time.perf_counter()
    base = simulate_coos7(CoosDesign(size=args.size, seed=args.seed)).materialize()
    split = base.metadata["Metadata_Split"].to_numpy()
    meta = base.metadata.copy()
    meta.loc[split == "test4", "Metadata_Split"] = "test4_all"
    images, metas = [np.asarray(base.images)], [meta]
    for name, factors in VARIANTS.items():
        c = simulate_coos7(CoosDesign(size=args.size, seed=args.seed, nuisance=Nuisance(**{**NEUTRAL, **factors})))
        c = c.materialize()
        rows = np.flatnonzero(c.metadata["Metadata_Split"].to_numpy() == "test4")
        assert np.array_equal(c.images[split == "train"], base.images[split == "train"])  # same Training cells
        m = c.metadata.iloc[rows].copy()
        m["Metadata_Split"] = f"test4_{name}"
        images.append(np.asarray(c.images)[rows])
        metas.append(m)
    crops = Crops(np.concatenate(images), pd.concat(metas, ignore_index=True))
    splits = ["train", "test4_reference"] + [f"test4_{n}" for n in VARIANTS if n != "reference"] + ["test4_all"]
    print(f"simulated {len(crops)} crops in {time.perf_counter() - t0:.0f} s", flush=True)

    params = base_params("representation")
    evaluation = base_params("evaluation")
    evaluation = {**evaluation, "splits": splits, "seeds": [0],
                  "classifiers": {k: evaluation["classifiers"][k] for k in ("knn", "l1_logreg", "end_to_end")}}
    texture = {"haralick": pd.concat([crops.metadata, coos_texture_features(crops.images)], axis=1)}
    deeploc = run("deeploc", crops, params["deeploc"], "representation.deeploc").layers
    evaluation = EvaluationConfig.from_params(evaluation, "evaluation")
    results = [evaluate_layers(texture, evaluation, "texture")[0],
               evaluate_layers(deeploc, evaluation, "deeploc")[0]]  # end_to_end: the network's own call
    out = pd.concat(results, ignore_index=True)[["representation", "layer", "classifier", "split", "balanced_error"]]
    args.out.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out / "test4_ablation.csv", index=False)
    table = out.pivot_table(index=["representation", "layer", "classifier"], columns="split", values="balanced_error")
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print((100 * table[splits]).round(1).to_string())
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
