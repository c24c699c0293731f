"""How much cell-to-cell variation makes simulated COOS-7 as hard for Texture as the real one?

    python benchmarks/calibrate_cell_variation.py --seeds 0 1 --out benchmarks/results

The simulator's cells of one well can differ in organelle counts and extents
(``cell_appearance_sd``) and in their distance from the focal plane (``cell_defocus_sd``).
This script scores the Texture representation (``conf/base`` settings) with ``conf/base``'s
L1-LR and kNN by 5-fold cross-validation on the **Training** split only, over a grid of the two
parameters, and prints the seed's published Texture errors beside them (Table 3: L1-LR 6.4 % on
Training, in-sample, and 6.8 % on Test1, held-out cells of the same wells; kNN 10.4 / 11.8 %).
The 5-fold CV error is the held-out analogue that needs no test split. The default (0.35, 0.25)
is one of the two grid points nearest 6.4 % in L1-LR CV error averaged over seeds 0 and 1
(6.5 %; (0.4, 0.2) gives 6.3 %). No test split is read. kNN stays above the published value
(13.7 % against 10.4 %) at every point near the L1-LR target.

Writes ``calibrate_cell_variation.csv``.
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

from cellbench.benchmark import evaluate_features
from cellbench.features import coos_texture_features
from cellbench.simulate import CoosDesign, simulate_coos7

PUBLISHED_TRAIN = {"l1_logreg": 6.4, "knn": 10.4}  # seed 000, Table 3, Texture
GRID = [(0.0, 0.0), (0.3, 0.0), (0.5, 0.0), (0.0, 0.3), (0.0, 0.6),
        (0.3, 0.2), (0.3, 0.25), (0.35, 0.25), (0.4, 0.2), (0.3, 0.3), (0.4, 0.4)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=float, default=0.05)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    evaluation = base_params("evaluation")
    classifiers = {k: evaluation["classifiers"][k] for k in PUBLISHED_TRAIN}
    rows = []
    for appearance, defocus in GRID:
        for seed in args.seeds:
            t0 = time.perf_counter()
            crops = simulate_coos7(CoosDesign(size=args.size, seed=seed, cell_appearance_sd=appearance,
                                              cell_defocus_sd=defocus)).materialize()
            train = crops.metadata["Metadata_Split"].to_numpy() == "train"
            table = pd.concat([crops.metadata[train].reset_index(drop=True),
                               coos_texture_features(np.asarray(crops.images)[train])], axis=1)
            res, _ = evaluate_features(table, "texture", "haralick", classifiers, seeds=[0], splits=["train"],
                                       cv_folds=int(evaluation["cv_folds"]))
            for r in res.itertuples():
                rows.append(dict(cell_appearance_sd=appearance, cell_defocus_sd=defocus, seed=seed,
                                 classifier=r.classifier, train_cv_error=100 * r.cv_balanced_error))
            print(f"appearance {appearance} defocus {defocus} seed {seed}: "
                  + ", ".join(f"{r.classifier} {100 * r.cv_balanced_error:.1f} %" for r in res.itertuples())
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    out = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out / "calibrate_cell_variation.csv", index=False)
    table = out.pivot_table(index=["cell_appearance_sd", "cell_defocus_sd"], columns="classifier",
                            values="train_cv_error", aggfunc="mean").round(1)
    print(table.to_string())
    print("published (seed 000, Table 3, Texture Training):", PUBLISHED_TRAIN)


if __name__ == "__main__":
    main()
