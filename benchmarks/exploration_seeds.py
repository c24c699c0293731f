"""The protein-library exploration over several simulation + training seeds (mean ± SD).

    python benchmarks/exploration_seeds.py --seeds 1 2 --include data/08_reporting/exploration_scores.csv:0

Each seed runs ``kedro run --pipelines=exploration`` with ``conf/base`` in its own throw-away
project (a copy of ``conf/``, its own MLflow sqlite store), the library's simulation seed and the
PCI / autoencoder / DeepLoc training seeds set to it. ``--include FILE:SEED`` adds a score table
already produced (the default run is seed 0). Writes ``exploration_seeds.csv`` (every layer of
every seed) and ``exploration_seeds.md`` (mean ± SD of the chosen layers) to ``--out``.
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
SCORES = ["protein_ari", "protein_purity", "rare_hits", "rare_median_rank", "multiloc_spearman", "subpopulation_ari",
          "pairwise_overall", "same_cell_line", "different_cell_line", "cell_line_difference"]


def run_seed(seed: int, work: Path) -> pd.DataFrame:
    params = [f"exploration.ingestion.simulation.seed={seed}"] + [
        f"exploration.representation.{name}.seed={seed}" for name in ("deeploc", "pci", "autoencoder")]
    start = time.perf_counter()
    project = kedro_run_in_copy(work / f"seed{seed}", "exploration", params)
    print(f"seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    return pd.read_csv(project / "data/08_reporting/exploration_scores.csv")


def summarise(rows: pd.DataFrame) -> str:
    seeds = sorted(rows.sim_seed.unique())
    chosen = rows[rows.chosen]
    lines = [f"# Protein-library exploration over {len(seeds)} seeds ({', '.join(map(str, seeds))})", "",
             "Chosen layer of each representation; mean ± SD over simulation + training seeds.", "",
             "| representation | layer | " + " | ".join(SCORES) + " |", "|---|---|" + "---|" * len(SCORES)]
    for (rep, layer), grp in chosen.groupby(["representation", "layer"], sort=False):
        cells = [f"{grp[s].mean():.3f} ± {grp[s].std(ddof=1):.3f}" if len(grp) > 1 else f"{grp[s].mean():.3f}"
                 for s in SCORES]
        lines.append(f"| {rep} | {layer} | " + " | ".join(cells) + " |")
    lines += ["", "## Every layer (mean over seeds)", "", "| representation | layer | " + " | ".join(SCORES) + " |",
              "|---|---|" + "---|" * len(SCORES)]
    for (rep, layer), grp in rows.groupby(["representation", "layer"], sort=False):
        lines.append(f"| {rep} | {layer} | " + " | ".join(f"{grp[s].mean():.3f}" for s in SCORES) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--include", nargs="*", default=[], help="FILE:SEED score tables already produced")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    frames = included_tables(args.include)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            frames.append(run_seed(seed, Path(tmp)).assign(sim_seed=seed))
    rows = pd.concat(frames, ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(args.out / "exploration_seeds.csv", index=False)
    (args.out / "exploration_seeds.md").write_text(summarise(rows))
    print(summarise(rows))


if __name__ == "__main__":
    main()
