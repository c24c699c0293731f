"""Does paired cell inpainting beat Texture on Test1 when it is trained longer than conf/base allows?

Trains PCI (and, with --models pci,autoencoder, the autoencoder baseline) on the default simulated COOS-7
crops for several step budgets, then scores every layer with kNN and L1-LR exactly as
coos_benchmark does. Training only sees Training cells; no test split is used to choose anything.

    python benchmarks/pci_budget.py --steps 300,3000 --width 0.25 [--lr 1e-4] [--crops data/02_intermediate/coos_crops]

A learning rate is chosen by the training loss (the unsupervised objective), never by a test split.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from cellbench.benchmark import evaluate_features
from cellbench.datasets import CropStoreDataset
from cellbench.representations import run

from _conf import base_params


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crops", default="data/02_intermediate/coos_crops")
    ap.add_argument("--steps", default="300,3000")
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--models", default="pci", help="comma-separated: pci, autoencoder")
    ap.add_argument("--out", default="benchmarks/results/pci_budget.csv")
    args = ap.parse_args()
    crops = CropStoreDataset(args.crops).load()
    rows = []
    models = args.models.split(",")
    for steps in (int(s) for s in args.steps.split(",")):
        for name in models:
            start = time.perf_counter()
            params = {**base_params("representation")[name], "width": args.width, "batch_size": args.batch,
                      "steps": steps, "lr": args.lr}
            result = run(name, crops, params, f"representation.{name}")
            tables = result.layers
            losses = [v for _, v in result.history["train_loss"]]
            final_loss = float(sum(losses[-20:]) / len(losses[-20:]))  # the unsupervised objective, Training only
            train_s = time.perf_counter() - start
            for layer, table in tables.items():
                classifiers = {k: base_params("evaluation")["classifiers"][k] for k in ("knn", "l1_logreg")}
                res, _ = evaluate_features(table, name, layer, classifiers)
                rows += [{**r, "steps": steps, "width": args.width, "lr": args.lr, "final_train_loss": final_loss,
                          "train_embed_s": train_s} for r in res.to_dict("records")]
            print(f"{name} lr {args.lr} steps {steps}: mean training loss of the last 20 steps {final_loss:.5f}", flush=True)
            print(pd.DataFrame(rows).query("steps == @steps").pivot_table(
                index=["representation", "layer", "classifier"], columns="split", values="balanced_error").round(3), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
