"""The COOS benchmark over several simulation + training seeds: how much of a table is the draw?

    python benchmarks/coos_seeds.py --seeds 1 2 --include data/08_reporting/coos_benchmark_results.csv:0

Each seed runs the whole ``coos_benchmark`` pipeline with ``conf/base`` (``kedro run``, one process
per seed) in its own throw-away Kedro project (a copy of ``conf/``, its own MLflow sqlite store), with the simulation seed and the
DeepLoc / PCI / autoencoder training seeds set to it, so the data and the networks are new draws
from the same distributions. ``--include FILE:SEED`` adds a results table already produced (the
default run is seed 0). Writes ``coos_seeds.csv`` (every row, with ``sim_seed``) and
``coos_seeds.md`` (mean ± SD over seeds of every representation / layer / classifier, and of the
row each seed's Training cross-validation chooses per representation) to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
from _conf import included_tables, kedro_run_in_copy

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ["train", "test1", "test2", "test3", "test4"]


def run_seed(seed: int, work: Path) -> pd.DataFrame:
    """``kedro run --pipelines=coos_benchmark`` in a fresh copy of the project (its own process,
    MLflow store and data folders), with the simulation and training seeds set to ``seed``."""
    params = [f"ingestion.simulation.seed={seed}"] + [
        f"representation.{name}.seed={seed}" for name in ("deeploc", "pci", "autoencoder")]
    project = kedro_run_in_copy(work / f"seed{seed}", "coos_benchmark", params)
    return pd.read_csv(project / "data/08_reporting/coos_benchmark_results.csv")


def summarise(all_rows: pd.DataFrame) -> str:
    from cellbench.benchmark import select_best
    from cellbench.reporting.tables import percent_of

    keys = ["representation", "layer", "classifier"]
    seeds = sorted(all_rows.sim_seed.unique())
    wide = all_rows.pivot_table(index=keys + ["sim_seed"], columns="split", values="balanced_error").reset_index()
    lines = [f"# COOS benchmark over {len(seeds)} seeds ({', '.join(map(str, seeds))})", "",
             "Class-balanced error (%), mean ± SD over simulation + training seeds.", "",
             "## Each representation's row chosen by Training cross-validation (per seed)", "",
             "| representation | chosen (layer / classifier, per seed) | " + " | ".join(SPLITS) + " |",
             "|---|---|" + "---|" * len(SPLITS)]
    chosen = []
    for seed in seeds:
        best = select_best(all_rows[all_rows.sim_seed == seed])
        best["sim_seed"] = seed
        chosen.append(best[keys + ["sim_seed"]])
    chosen = pd.concat(chosen).merge(wide, on=keys + ["sim_seed"])
    for rep, grp in chosen.groupby("representation"):
        picks = ", ".join(f"{r.layer}/{r.classifier}" for r in grp.itertuples())
        lines.append(f"| {rep} | {picks} | " + " | ".join(percent_of(grp[s]) for s in SPLITS) + " |")
    lines += ["", "## Every row", "", "| representation | layer | classifier | " + " | ".join(SPLITS) + " |",
              "|---|---|---|" + "---|" * len(SPLITS)]
    for key, grp in wide.groupby(keys):
        lines.append("| " + " | ".join(key) + " | " + " | ".join(percent_of(grp[s]) for s in SPLITS) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--include", nargs="*", default=[], help="FILE:SEED results tables already produced")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    tables = included_tables(args.include)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="coos_seeds_") as tmp:
        for seed in args.seeds:
            t0 = time.perf_counter()
            table = run_seed(seed, Path(tmp)).assign(sim_seed=seed)
            table.to_csv(args.out / f"coos_seeds_seed{seed}.csv", index=False)  # kept if a later seed fails
            tables.append(table)
            print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    all_rows = pd.concat(tables, ignore_index=True)
    all_rows.to_csv(args.out / "coos_seeds.csv", index=False)
    (args.out / "coos_seeds.md").write_text(summarise(all_rows))
    print((args.out / "coos_seeds.md").read_text())


if __name__ == "__main__":
    main()
