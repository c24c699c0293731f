"""Error vs shift severity: simulate COOS-7 at several ``shift_severity`` values, compute the
Texture representation, run kNN and L1-LR, and plot class-balanced error per split.

    python benchmarks/severity_sweep.py --size 0.03 --severities 0 0.5 1 1.5 2 --out benchmarks/results

Writes ``severity_sweep.csv`` and ``severity_sweep.png``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from _conf import base_params

from cellbench.benchmark import evaluate_features
from cellbench.features import coos_texture_features
from cellbench.simulate import CoosDesign, simulate_coos7

# conf/base's kNN and L1-LR settings, as the coos_benchmark pipeline uses them
CLASSIFIERS = {k: base_params("evaluation")["classifiers"][k] for k in ("knn", "l1_logreg")}


def run(size: float, severities: list[float], seed: int) -> pd.DataFrame:
    rows = []
    for sev in severities:
        t0 = time.perf_counter()
        crops = simulate_coos7(CoosDesign(size=size, seed=seed, shift_severity=sev)).materialize()
        feats = coos_texture_features(crops.images)
        table = pd.concat([crops.metadata, feats], axis=1)
        res, _ = evaluate_features(
            table, "texture", "haralick", CLASSIFIERS, seeds=[seed],
        )
        res["shift_severity"] = sev
        rows.append(res)
        print(f"severity {sev}: {len(crops)} crops in {time.perf_counter() - t0:.1f} s")
        print(res.pivot_table(index="classifier", columns="split", values="balanced_error").round(3))
    return pd.concat(rows, ignore_index=True)


def plot(df: pd.DataFrame, path: Path) -> None:
    fig, axes = plt.subplots(1, df["classifier"].nunique(), figsize=(10, 4), sharey=True, squeeze=False)
    for ax, (clf, g) in zip(axes[0], df.groupby("classifier")):
        for split, gs in g.groupby("split"):
            gs = gs.sort_values("shift_severity")
            ax.plot(gs["shift_severity"], 100 * gs["balanced_error"], marker="o", label=split)
        ax.set_title(f"Texture / {clf}")
        ax.set_xlabel("shift_severity")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("class-balanced error (%)")
    axes[0, -1].legend()
    fig.suptitle("Simulated COOS-7: error grows with covariate-shift severity")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=float, default=0.03)
    ap.add_argument("--severities", type=float, nargs="+", default=[0, 0.5, 1, 1.5, 2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    df = run(args.size, args.severities, args.seed)
    df.to_csv(args.out / "severity_sweep.csv", index=False)
    plot(df, args.out / "severity_sweep.png")
