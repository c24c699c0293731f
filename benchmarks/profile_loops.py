"""Where does a training step's time go? Every training loop of the five seeds, profiled.

    python benchmarks/profile_loops.py [--loops coos,treatment,adaptation] [--threads 2] \
        [--first 3 --timed 10 --profiled 4] [--out benchmarks/results/profile_loops.csv]

Each loop runs at its ``conf/base`` settings (batch, width, input size; the model cache off)
for ``first + timed + profiled`` steps inside :func:`cellbench.training.loops.profile_steps`:
the first steps (warm-up, the FLOP count of step 1) are left out, the next ``timed`` steps are
timed plainly (cells/s = batch x steps / wall seconds) and the last ``profiled`` run under
``torch.profiler`` (CPU). The profile's operators are grouped into

* ``conv/GEMM``: convolutions and their backward, matrix products, attention's forward (the
  arithmetic a step exists for; attention's fused backward kernel is listed with the other
  operators, by name);
* ``optimiser``: everything inside ``Optimizer.step`` (inclusive);
* the largest other operators by self time (element-wise, normalisation, copies, ...);
* ``outside operators``: wall time of the window not spent in any torch operator (Python, NumPy
  augmentation, the data pipeline).

The loops: COOS (DeepLoc, PCI, autoencoder) on the pipeline's coos_crops; the treatment screen
(ResNet18 plain / mixup / GRU; AE / VAE / VAE+) on treatment_crops; domain adaptation (DINO,
DINO-CB, MAE, the dual / supervised classifiers, ODA / CODA adaptation) on a freshly simulated
copy of the ``domain_adaptation`` screen, one source and one target.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("CELLBENCH_MODEL_CACHE", "off")  # every loop trains
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _host import host_line, pin_threads  # noqa: E402

GEMM = ("conv", "mm", "matmul", "linear", "bmm", "addmm", "baddbmm", "scaled_dot_product", "_flash_attention",
        "einsum")


def _is_gemm(name: str) -> bool:
    base = name.split("::")[-1]
    return any(base == g or base.startswith(g) or f"_{g}" in base for g in GEMM) and "backward" not in base \
        or base in ("convolution_backward", "mkldnn_convolution_backward", "mm_backward", "bmm_backward")


def summarise(record: dict) -> dict:
    """One row per profiled loop: cells/s, ms per step and the shares of the profiled window."""
    prof = record["profile"]
    window_us = record["profiled_seconds"] * 1e6
    events = prof.events()
    top = [e for e in events if e.cpu_parent is None]  # outermost operators of the window
    in_ops = sum(e.cpu_time_total for e in top if e.thread == top[0].thread) if top else 0.0
    optim = sum(e.cpu_time_total for e in top if e.name.startswith("Optimizer.step"))
    gemm, other = 0.0, {}
    for avg in prof.key_averages():
        if avg.key.startswith(("Optimizer.", "autograd::engine", "ProfilerStep")):
            continue
        if _is_gemm(avg.key):
            gemm += avg.self_cpu_time_total
        else:
            other[avg.key] = other.get(avg.key, 0.0) + avg.self_cpu_time_total
    # the optimiser's own operators are counted once, as "optimiser"
    optim_ops = {e.name for e in events if any(p.name.startswith("Optimizer.step") for p in _parents(e))}
    other = {k: v for k, v in other.items() if k not in optim_ops}
    largest = sorted(other.items(), key=lambda kv: -kv[1])[:5]
    share = lambda us: 100.0 * us / window_us  # noqa: E731
    return {"loop": record["loop"], "batch": record["batch_size"],
            "cells_per_s": record["batch_size"] * record["steps"] / record["wall_seconds"],
            "ms_per_step": 1e3 * record["wall_seconds"] / record["steps"],
            "conv_gemm_pct": share(gemm), "optimiser_pct": share(optim),
            "outside_ops_pct": max(0.0, share(window_us - in_ops)),
            "largest_other": "; ".join(f"{k.removeprefix('aten::')} {share(v):.1f}%" for k, v in largest)}


def _parents(event):
    p = event.cpu_parent
    while p is not None:
        yield p
        p = p.cpu_parent


def _coos(window):
    from _conf import base_params

    from cellbench.datasets import CropStoreDataset
    from cellbench.representations import run

    crops = CropStoreDataset("data/02_intermediate/coos_crops").load()
    for method in ("deeploc", "pci", "autoencoder"):
        params = {**base_params("representation")[method], "steps": window, "device": "cpu"}
        if method == "deeploc":
            params["eval_every"] = window  # one validation, after the profiled window
        run(method, crops, params, f"representation.{method}")


def _treatment(window):
    from _conf import base_params

    from cellbench.datasets import CropStoreDataset
    from cellbench.representations import run

    crops = CropStoreDataset("data/02_intermediate/treatment_crops").load()
    params = base_params("treatments")
    for group, names in (("weak", ("resnet_plain", "resnet_mixup", "resnet_gru")), ("vae", ("ae", "vae", "vaeplus"))):
        for name in names:
            run(group, crops, {**params[group][name], "steps": window, "device": "cpu"}, f"treatments.{group}.{name}")


def _adaptation(window):
    import torch
    from _conf import base_params

    from cellbench.adaptation.experiment import run_experiment
    from cellbench.ingest.sources import IngestionConfig, ingest
    from cellbench.representations.coda import CodaConfig

    params = base_params("domain_adaptation")
    crops = ingest(IngestionConfig.from_params(params["ingestion"], "domain_adaptation.ingestion"))
    crops = crops.materialize()
    p = {**params, "seeds": [0], "train_sources": ["source_1"], "targets": ["source_3"],
         "dino": {**params["dino"], "steps": window, "mae": {**params["dino"]["mae"], "steps": window}},
         "classifier": {**params["classifier"], "steps": window, "eval_every": window},
         "adapt": {**params["adapt"], "steps": window}, "granularity": {**params["granularity"], "levels": []}}
    run_experiment(crops, CodaConfig.from_params(p, "domain_adaptation"), torch.device("cpu"))


STUDIES = {"coos": _coos, "treatment": _treatment, "adaptation": _adaptation}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loops", default="coos,treatment,adaptation")
    ap.add_argument("--first", type=int, default=3)
    ap.add_argument("--timed", type=int, default=10)
    ap.add_argument("--profiled", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/profile_loops.csv")
    ap.add_argument("--label", default="", help="a note stored with every row (e.g. before / after a change)")
    args = ap.parse_args()
    pin_threads(args.threads)
    import pandas as pd
    import torch

    from cellbench.training.loops import profile_steps

    torch.set_num_threads(args.threads)
    print(host_line(), flush=True)
    window = args.first + args.timed + args.profiled
    rows = []
    for study in args.loops.split(","):
        start = time.perf_counter()
        with profile_steps(args.first, args.timed, args.profiled) as taken:
            STUDIES[study](window)
        for record in taken:
            if record.get("profile") is not None:
                rows.append({"study": study, **summarise(record), "label": args.label})
                print(rows[-1], flush=True)
        print(f"{study}: {time.perf_counter() - start:.0f} s", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    if out.is_file():
        table = pd.concat([pd.read_csv(out), table])
    table.to_csv(out, index=False)
    from cellbench.reporting.tables import frame_markdown

    print(frame_markdown(pd.DataFrame(rows).round(1), index=False))


if __name__ == "__main__":
    main()
