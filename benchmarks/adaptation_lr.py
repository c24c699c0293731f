"""Sensitivity of ODA / CODA to the adaptation learning rate (seed 0, every source -> target pair).

conf/base adapts with the pre-training lr of the CPU budget (5e-4); the seed adapts with its own
pre-training lr (1e-4). This script reports both, with the unadapted dual models, so users can see
how much the result depends on it. It is a sensitivity report: the defaults were not chosen from it
(that would tune on the target's labels).

    python benchmarks/adaptation_lr.py [--lrs 5e-4,1e-4] [--out benchmarks/results/adaptation_lr.csv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch
from _conf import base_params

from cellbench.adaptation.experiment import (ADAPTED, adapt_params, cross_batch_sampler, eval_size, labelled_cells,
                                             scores, source_rows, train_source)
from cellbench.ingest.sources import IngestionConfig, ingest
from cellbench.representations.coda import CodaConfig, adapt_dual, predict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lrs", default="5e-4,1e-4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/adaptation_lr.csv")
    args = ap.parse_args()
    params = CodaConfig.from_params(base_params("domain_adaptation"), "domain_adaptation")
    crops = ingest(IngestionConfig.from_params(params.ingestion.to_dict(), "domain_adaptation.ingestion")).materialize()
    images, meta, y, _ = labelled_cells(crops, params)
    device, seed = torch.device("cpu"), args.seed
    size, n_classes, column = eval_size(params), int(y.max()) + 1, params.columns.source
    sources = sorted(meta[column].astype(str).unique())
    rows = []
    for source in sources:
        models, _ = train_source(images, meta, y, source, params, seed, device)
        for target in [t for t in sources if t != source]:
            idx = source_rows(meta, column, target)
            for kind in ("dino", "cb"):
                rows.append({"source": source, "target": target, "method": f"dual_{kind}", "lr": None,
                             **scores(y[idx], predict(models[f"dual_{kind}"], images[idx], size, device), n_classes)})
            for lr in [float(v) for v in args.lrs.split(",")]:
                adapt = adapt_params(params).replace("adapt", lr=lr)
                for method, kind in ADAPTED.items():
                    sampler = cross_batch_sampler(meta, idx, params) if kind == "cb" else None
                    model, _, _ = adapt_dual(models[f"dual_{kind}"], models[f"state_{kind}"], images[idx], adapt, seed,
                                             device, sampler=sampler)
                    rows.append({"source": source, "target": target, "method": method, "lr": lr,
                                 **scores(y[idx], predict(model, images[idx], size, device), n_classes)})
                    print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print((100 * table.groupby(["method", "lr"], dropna=False)[["accuracy", "macro_f1"]].mean()).round(1))


if __name__ == "__main__":
    main()
