"""How much training compute does a learned representation need before it beats Texture?

    python benchmarks/budget_curves.py coos --budgets 30,100,300,1000 --seeds 0,1 \
        [--crops data/02_intermediate/coos_crops] [--threads 1]
    python benchmarks/budget_curves.py plot-coos      # docs/figures/budget_coos.png from the CSV

**COOS study** (seed 000 / 002's comparison on the simulated default design, ``conf/base``
settings except the step count and the training seed): DeepLoc (end-to-end and fc2), paired cell
inpainting and the autoencoder. Each network is trained once per seed for the largest budget inside
:func:`cellbench.training.loops.capture_snapshots`; its weights at every smaller budget are exactly
those of a shorter run (the loops' schedules do not depend on the total step count; for DeepLoc the
snapshot is the checkpoint of lowest validation error so far, as a shorter run would keep). Every
snapshot is applied to all crops through the serving path (``cellbench.serving.extract_features``:
raw crops in, the method's own preprocessing inside) and scored with the benchmark's protocol
(``cellbench.benchmark.evaluate_features``): kNN (k = 11) and L1 logistic regression on
Training-standardised features, 5-fold Training CV to choose the layer and classifier of each
method at each budget, class-balanced error per split (the random forest is left out: its search
costs more than the training it would score). Texture (budget
free) is scored the same way. No test split chooses anything.

x axes: samples seen (steps x batch), training FLOPs (FlopCounterMode, the loops' own count,
including DeepLoc's validation passes) and process CPU seconds (threads pinned with ``--threads``;
CPU time, so another process on the host slows the wall clock more than this axis).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("CELLBENCH_MODEL_CACHE", "off")  # every budget trains: the snapshots are the point
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _host import host_line, pin_threads  # noqa: E402

COOS_METHODS = {"deeploc": ("DeepLoc", {"end_to_end": "Prob_", "fc2": "DeepLoc_fc2_"}),
                "pci": ("PCI", {f"conv{i}": f"PCI_conv{i}_" for i in range(1, 6)}),
                "autoencoder": ("Autoencoder", {f"conv{i}": f"AE_conv{i}_" for i in range(1, 6)})}


def _layer_tables(artefact: dict, crops, prefixes: dict) -> dict:
    import pandas as pd

    from cellbench.serving import extract_features

    feats = extract_features(artefact, crops.images)
    meta = crops.metadata.reset_index(drop=True)
    return {layer: pd.concat([meta, feats[[c for c in feats.columns if c.startswith(p)]]], axis=1)
            for layer, p in prefixes.items()}


def _score(table, method: str, layer: str, classifiers: dict):
    from cellbench.benchmark import evaluate_features

    res, _ = evaluate_features(table, method, layer, classifiers)
    return res


def coos(args) -> None:
    import numpy as np
    import pandas as pd
    from _conf import base_params

    from cellbench.datasets import CropStoreDataset
    from cellbench.representations import run
    from cellbench.training.loops import capture_snapshots

    crops = CropStoreDataset(args.crops).load()
    budgets = sorted(int(b) for b in args.budgets.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    classifiers = {k: base_params("evaluation")["classifiers"][k] for k in ("knn", "l1_logreg")}
    classifiers_e2e = {**classifiers, "end_to_end": {}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [pd.read_csv(out)] if out.is_file() and args.resume else []
    done = set() if not rows else set(map(tuple, rows[0][["method", "seed"]].drop_duplicates().to_numpy()))
    print(host_line(), flush=True)
    if ("texture", 0) not in done:
        t = time.process_time()
        texture = run("texture", crops, base_params("representation")["texture"], "representation.texture")
        rows.append(_score(texture.layers["haralick"], "texture", "haralick", classifiers).assign(
            method="texture", seed=0, steps=0, samples=0, flops=0.0, cpu_seconds=time.process_time() - t,
            wall_seconds=np.nan))
        pd.concat(rows).to_csv(out, index=False)
    for seed in seeds:
        for method in args.methods.split(","):
            if (method, seed) in done:
                continue
            _, prefixes = COOS_METHODS[method]
            params = {**base_params("representation")[method], "steps": budgets[-1], "seed": seed, "device": "cpu"}
            start = time.perf_counter()
            with capture_snapshots(budgets) as snaps:
                result = run(method, crops, params, f"representation.{method}")
            print(f"{method} seed {seed}: {budgets[-1]} steps in {time.perf_counter() - start:.0f} s, "
                  f"{result.history['flops'][-1][1] / 1e12:.2f} TFLOP", flush=True)
            batch = int(params["batch_size"])
            for snap in snaps:
                artefact = {**result.artefact, "state_dict": snap["state_dict"]}
                tables = _layer_tables(artefact, crops, prefixes)
                if snap["step"] == budgets[-1] and method != "deeploc":  # the serving path = the pipeline's layers
                    ref = result.layers["conv3"].filter(like="_conv3_").to_numpy()
                    got = tables["conv3"].filter(like="_conv3_").to_numpy()
                    assert np.allclose(ref, got, atol=1e-4), f"{method}: served features differ from represent's"
                for layer, table in tables.items():
                    res = _score(table, method, layer, classifiers_e2e if layer == "end_to_end" else classifiers)
                    rows.append(res.assign(method=method, seed=seed, steps=snap["step"], samples=snap["step"] * batch,
                                           flops=snap["flops"], cpu_seconds=snap["cpu_seconds"],
                                           wall_seconds=snap["wall_seconds"]))
                print(f"  {method} seed {seed} step {snap['step']}: scored", flush=True)
            pd.concat(rows).to_csv(out, index=False)  # after every network: a killed run keeps what it has
    print(f"wrote {out}")


def best_rows(df, split: str):
    """Per method / seed / budget, the layer and classifier of lowest Training CV error (DeepLoc's
    end-to-end and fc2 kept apart, as the benchmark reports both), with its ``split`` error."""
    import pandas as pd

    df = df.copy()
    df["curve"] = df["method"]
    df.loc[(df.method == "deeploc") & (df.layer == "end_to_end"), "curve"] = "deeploc end-to-end"
    df.loc[(df.method == "deeploc") & (df.layer == "fc2"), "curve"] = "deeploc fc2"
    picked = []
    for _, g in df.groupby(["curve", "seed", "steps"]):
        cv = g.drop_duplicates(["layer", "classifier"])
        best = cv.loc[cv["cv_balanced_error"].fillna(-1).idxmin()]  # end-to-end: one row, no CV
        picked.append(g[(g.layer == best.layer) & (g.classifier == best.classifier) & (g.split == split)])
    return pd.concat(picked)


FIT_POINTS = 3  # the power law is fitted to the largest budgets only


def fit_crossing(x, y, target: float):
    """Least-squares power law ``error = c x^-a`` (a line in log-log) through the points ``(x, y)``
    and the ``x`` at which it reaches ``target`` (``inf`` when it does not fall)."""
    import numpy as np

    lx, ly = np.log10(np.asarray(x, float)), np.log10(np.asarray(y, float))
    slope, intercept = np.polyfit(lx, ly, 1)
    cross = 10 ** ((np.log10(target) - intercept) / slope) if slope < 0 else float("inf")
    return slope, intercept, cross


def plot_coos(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np
    import pandas as pd

    df = pd.read_csv(args.out)
    texture = df[df.method == "texture"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), sharey="row")
    summary = []
    for r, split in enumerate(("test1", "test4")):
        tex_row = texture.loc[texture["cv_balanced_error"].idxmin()]  # Texture's classifier chosen by Training CV
        tex = float(texture[(texture.split == split) & (texture.classifier == tex_row.classifier)]["balanced_error"].iloc[0]) * 100
        picked = best_rows(df[df.method != "texture"], split)
        for c, (axis, label) in enumerate((("samples", "samples seen"), ("flops", "training FLOPs"),
                                           ("cpu_seconds", "CPU seconds (process)"))):
            ax = axes[r, c]
            for curve, g in picked.groupby("curve"):
                agg = g.groupby("steps").agg(x=(axis, "mean"), m=("balanced_error", "mean"),
                                             s=("balanced_error", "std"), n=("seed", "nunique")).reset_index()
                line = ax.errorbar(agg.x, agg.m * 100, yerr=agg.s.fillna(0) * 100, marker="o", capsize=3, label=curve)
                if c == 1:
                    above = (agg.m * 100 > tex).all()
                    tail = agg.tail(FIT_POINTS)  # past the first steps' plateau / noise
                    slope, icpt, cross = fit_crossing(tail.x, tail.m * 100, tex)
                    if above and slope < 0:  # a rising curve never crosses: nothing to extend
                        xs = np.logspace(np.log10(tail.x.min()), np.log10(max(agg.x.max(), min(cross, agg.x.max() * 100))), 50)
                        ax.plot(xs, 10 ** (icpt + slope * np.log10(xs)), ls=":", color=line[0].get_color())
                    summary.append({"split": split, "curve": curve, "texture": tex,
                                    **{f"{int(s)} steps": f"{m * 100:.1f} ± {0 if np.isnan(sd) else sd * 100:.1f}"
                                       for s, m, sd in zip(agg.steps, agg.m, agg.s)},
                                    "crossed": not above, "fit slope": slope,
                                    "predicted crossing (FLOPs)": "crossed" if not above else cross})
            ax.axhline(tex, color="k", ls="--", label=f"Texture ({tex_row.classifier}, no training)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.set_xlabel(label)
            if c == 0:
                ax.set_ylabel(f"{split} class-balanced error (%)")
            ax.grid(alpha=0.3, which="both")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("COOS budget curves (simulated default design; mean ± SD over seeds; dotted: power-law fit to "
                 f"the {FIT_POINTS} largest budgets, extended to where it would cross Texture)")
    fig.tight_layout()
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=110)
    table = pd.DataFrame(summary)
    table.to_csv(Path(args.out).with_suffix(".summary.csv"), index=False)
    from cellbench.reporting.tables import frame_markdown

    shown = table.assign(**{"fit slope": table["fit slope"].round(3),
                            "predicted crossing (FLOPs)": [c if isinstance(c, str) else f"{c:.3g}"
                                                           for c in table["predicted crossing (FLOPs)"]]})
    Path(args.out).with_suffix(".summary.md").write_text(frame_markdown(shown, index=False) + "\n")
    print(frame_markdown(shown, index=False))
    print(f"wrote {args.figure}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", choices=["coos", "plot-coos"])
    ap.add_argument("--crops", default="data/02_intermediate/coos_crops")
    ap.add_argument("--budgets", default="30,100,300,1000")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--methods", default="deeploc,pci,autoencoder")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    ap.add_argument("--resume", action="store_true", help="keep the networks already in --out")
    ap.add_argument("--out", default="benchmarks/results/budget_coos.csv")
    ap.add_argument("--figure", default="docs/figures/budget_coos.png")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")  # training progress lines
    if args.threads:
        pin_threads(args.threads)
    {"coos": coos, "plot-coos": plot_coos}[args.study](args)


if __name__ == "__main__":
    main()
