"""How much training compute does a learned representation need before it beats Texture?

    python benchmarks/budget_curves.py coos --budgets 30,100,300,1000 --seeds 0,1 \
        [--crops data/02_intermediate/coos_crops] [--threads 1]
    python benchmarks/budget_curves.py plot-coos      # docs/figures/budget_coos.png from the CSV
    python benchmarks/budget_curves.py coos-runs      # + finished coos_benchmark runs, from MLflow

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


def _resume(args, *keys: str):
    """``(out path, [rows already in it], {(*keys, seed): budgets done})``: with ``--resume`` the
    networks (or budgets) already in ``--out`` are kept and not run again; without it, an empty start.
    The budgets done are the ``steps`` of a network's rows (empty where the CSV has no such column)."""
    import pandas as pd

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [pd.read_csv(out)] if out.is_file() and args.resume else []
    done: dict = {}
    if rows:
        for key, group in rows[0].groupby([*keys, "seed"], sort=False):
            done[tuple(key)] = set(group["steps"].astype(int)) if "steps" in group else set()
    return out, rows, done


def _budgets_to_train(done: dict, key: tuple, wanted: list[int]) -> list[int]:
    """The snapshot budgets a network must be trained for: ``[]`` where ``--out`` already has every
    wanted budget of it; else the wanted ones together with those it has, so that extending a study
    (``--budgets 1000,3000,10000`` after ``100,...,3000``) trains the network once to the largest and
    re-scores the smaller budgets too: a snapshot at step k is the k-step run, bit for bit (the loops'
    schedules do not depend on the total number of steps; ``tests/test_budget_curves_screen.py``)."""
    had = done.get(key, set())
    return [] if set(wanted) <= had else sorted(set(wanted) | had)


def _drop_network(rows: list, method: str, seed: int) -> None:
    """Remove one network's rows from the resumed CSV (``rows[0]``) before its re-run's rows go in."""
    if rows and "method" in rows[0]:
        rows[0] = rows[0][~((rows[0]["method"] == method) & (rows[0]["seed"] == seed))]


def coos(args) -> None:
    import numpy as np
    import pandas as pd
    from _conf import base_params

    from cellbench.datasets import CropStoreDataset
    from cellbench.representations import run
    from cellbench.training.loops import capture_snapshots

    crops = CropStoreDataset(args.crops).load()
    wanted = sorted(int(b) for b in args.budgets.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    classifiers = {k: base_params("evaluation")["classifiers"][k] for k in ("knn", "l1_logreg")}
    classifiers_e2e = {**classifiers, "end_to_end": {}}
    out, rows, done = _resume(args, "method")
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
            budgets = _budgets_to_train(done, (method, seed), wanted)
            if not budgets:
                continue
            _drop_network(rows, method, seed)
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


COOS_CLASSIFIERS = ("knn", "l1_logreg", "end_to_end")  # the study's: the random forest is left out


def coos_runs(args) -> None:
    """``coos-runs``: the points of finished ``kedro run --pipelines=coos_benchmark`` runs (e.g.
    ``--env workstation`` at a budget past the study's), read back from MLflow, in the study's columns:
    per method the report's rows (``coos_benchmark_results.csv`` artefact) for the study's classifiers,
    the run's step count, seed and batch size (``representation.<method>.*`` parameters), and its
    training FLOPs and CPU seconds (``training/<method>/*`` metrics). ``--runs``: run ids; default every
    finished ``coos_benchmark`` run of the store. Rows of a run already in ``--out`` are replaced."""
    import tempfile

    import mlflow
    import numpy as np
    import pandas as pd

    client = mlflow.MlflowClient(tracking_uri=args.tracking_uri)
    if args.runs:
        runs = []
        for r in args.runs.split(","):
            try:
                runs.append(client.get_run(r))
            except mlflow.exceptions.MlflowException as err:
                raise SystemExit(f"coos-runs: --runs: no run {r!r} in {args.tracking_uri} ({err.error_code})") from err
    else:
        runs = [r for e in client.search_experiments() for r in client.search_runs(
            [e.experiment_id], "attributes.status = 'FINISHED' and tags.`mlflow.runName` = 'coos_benchmark'")]
    if not runs:
        raise SystemExit(f"coos-runs: no finished coos_benchmark run in {args.tracking_uri}")
    rows = []
    for run in runs:
        rid, params, metrics = run.info.run_id, run.data.params, run.data.metrics
        if run.info.status != "FINISHED":
            raise SystemExit(f"coos-runs: run {rid} is {run.info.status}, not FINISHED")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = client.download_artifacts(rid, "coos_benchmark_results.csv", tmp)
            except Exception as err:  # noqa: BLE001 - any store error: name the run and the artefact
                raise SystemExit(f"coos-runs: run {rid} has no artefact coos_benchmark_results.csv ({err})") from err
            report = pd.read_csv(path)
        report = report[report.classifier.isin(COOS_CLASSIFIERS)].drop(columns="selected_by_training_cv",
                                                                      errors="ignore")
        for method in ("texture", *COOS_METHODS):
            part = report[report.representation == method]
            if part.empty:
                raise SystemExit(f"coos-runs: run {rid}'s coos_benchmark_results.csv has no {method!r} rows")
            if method == "texture":
                info = dict(seed=0, steps=0, samples=0, flops=0.0, cpu_seconds=np.nan)
            else:
                keys = [f"representation.{method}.{k}" for k in ("steps", "seed", "batch_size")]
                missing = [k for k in keys if k not in params] + [
                    k for k in (f"training/{method}/flops", f"training/{method}/cpu_seconds") if k not in metrics]
                if missing:
                    raise SystemExit(f"coos-runs: run {rid} lacks {missing}")
                steps = int(params[keys[0]])
                info = dict(seed=int(params[keys[1]]), steps=steps, samples=steps * int(params[keys[2]]),
                            flops=metrics[f"training/{method}/flops"],
                            cpu_seconds=metrics[f"training/{method}/cpu_seconds"])
            rows.append(part.assign(method=method, **info, wall_seconds=np.nan, run_id=rid,
                                    env=run.data.tags.get("env", "")))
    new = pd.concat(rows)
    out = Path(args.out)
    if out.exists():
        old = pd.read_csv(out)
        new = pd.concat([old[~old.run_id.isin(new.run_id)], new])
    out.parent.mkdir(parents=True, exist_ok=True)
    new.to_csv(out, index=False)
    print(f"wrote {out}: {new.run_id.nunique()} runs", flush=True)


TREATMENT_METHODS = {"resnet_plain": "weak", "resnet_mixup": "weak", "resnet_gru": "weak",
                     "ae": "vae", "vae": "vae", "vaeplus": "vae"}
TREATMENT_VARIANTS = ("plate_dmso_zscore_median", "plate_dmso_zscore_tvn")  # seed 003/004: Mean, Mean +Whitened


def _moa_matching(table, name: str):
    """Seed 003 / 004's protocol as ``treatment_profiling`` runs it (``conf/base``
    ``treatments.wells`` / ``treatments.profiling``): cells -> well means -> per-plate DMSO
    z-score -> (TVN) -> treatment medians -> NSC / NSCB 1-NN MoA matching, for the two variants of
    the seeds' comparison; the batch-integration scores are left out (not the seeds' metric)."""
    from _conf import base_params

    from cellbench.profiling.summarize import SummaryConfig, WellsConfig, well_profiles
    from cellbench.profiling.variants import ProfilingConfig, profile_variants

    params = base_params("treatments")
    wells = well_profiles({"cells": table}, WellsConfig.from_params(params["wells"], "treatments.wells"),
                          SummaryConfig(sd=False))
    prof = {**params["profiling"], "variants": {v: params["profiling"]["variants"][v] for v in TREATMENT_VARIANTS},
            "integration": {**params["profiling"]["integration"], "batches": []}}
    res = profile_variants(wells, ProfilingConfig.from_params(prof, "treatments.profiling"))
    return res.table[["variant", "nsc", "nscb", "nsc_n", "nscb_n", "map_moa"]].assign(features=name)


SCREEN_KEYS = ("cells", "sources", "batches", "plates")  # the columns screen_of adds to every study row


def screen_of(meta) -> dict:
    """What a treatment crop store holds (the study's rows carry it: the store is whatever the last
    ``treatment_profiling`` run wrote, conf/base's BBBC021-like design or ``--env jump``'s)."""
    counts = [len(meta), *(int(meta[c].nunique()) for c in ("Metadata_Source", "Metadata_Batch", "Metadata_Plate"))]
    return dict(zip(SCREEN_KEYS, counts))


def screen_label(screen: dict) -> str:
    kind = "JUMP-like, several sources" if screen["sources"] > 1 else "BBBC021-like, one source"
    return (f"simulated {kind}: {screen['cells']:,} cells, {screen['sources']} source(s), "
            f"{screen['batches']} batches, {screen['plates']} plates")


def treatment(args) -> None:
    """The treatment-screen study (seeds 003 / 004): ResNet18 plain / mixup / GRU and AE / VAE /
    VAE+ on the simulated BBBC021-like screen of ``conf/base`` (the pipeline's crops), each trained
    once per seed for its largest budget with snapshots at the smaller ones, features of every cell
    served from each snapshot, NSC / NSCB of the treatment profiles. Texture is the budget-free line."""
    import numpy as np
    import pandas as pd
    from _conf import base_params

    from cellbench.datasets import CropStoreDataset
    from cellbench.representations import run
    from cellbench.serving import extract_features
    from cellbench.training.loops import capture_snapshots

    crops = CropStoreDataset(args.crops).load()
    meta = crops.metadata.reset_index(drop=True)
    params = base_params("treatments")
    seeds = [int(s) for s in args.seeds.split(",")]
    screen = screen_of(meta)
    out, rows, done = _resume(args, "method")
    if rows:
        had = {k: sorted(rows[0][k].unique().tolist()) if k in rows[0] else None for k in screen}
        if any(v != [screen[k]] for k, v in had.items()):
            raise SystemExit(f"--resume: {out} was scored on another screen ({had}) than {args.crops} ({screen}); "
                             "give another --out")
    print(host_line(), screen_label(screen), flush=True)
    if ("texture", 0) not in done:
        t = time.process_time()
        layers = run("treatment_texture", crops, params["texture"], "treatments.texture").layers
        table = next(iter(layers.values()))
        rows.append(_moa_matching(table, "texture").assign(method="texture", seed=0, steps=0, samples=0, flops=0.0,
                                                            cpu_seconds=time.process_time() - t, wall_seconds=np.nan,
                                                            **screen))
        pd.concat(rows).to_csv(out, index=False)
    for seed in seeds:
        for method in args.methods.split(","):
            group = TREATMENT_METHODS[method]
            wanted = sorted(int(b) for b in (args.budgets_vae if group == "vae" else args.budgets).split(","))
            budgets = _budgets_to_train(done, (method, seed), wanted)
            if not budgets:
                continue
            _drop_network(rows, method, seed)
            p = {**params[group][method], "steps": budgets[-1], "seed": seed, "device": "cpu"}
            start = time.perf_counter()
            with capture_snapshots(budgets) as snaps:
                result = run(group, crops, p, f"treatments.{group}.{method}")
            print(f"{method} seed {seed}: {budgets[-1]} steps in {time.perf_counter() - start:.0f} s, "
                  f"{result.history['flops'][-1][1] / 1e12:.2f} TFLOP", flush=True)
            layer, ref = next(iter(result.layers.items()))
            cols = [c for c in ref.columns if not c.startswith("Metadata_")]
            for snap in snaps:
                served = extract_features({**result.artefact, "state_dict": snap["state_dict"]}, crops.images)
                feats = served[[c for c in served.columns if f"_{layer}_" in c]]
                if snap["step"] == budgets[-1]:  # the serving path = the pipeline's features
                    assert feats.shape[1] == len(cols) and np.allclose(feats.to_numpy(), ref[cols].to_numpy(),
                                                                       atol=1e-4), f"{method}: served features differ"
                table = pd.concat([meta, feats.set_axis(cols, axis=1)], axis=1)
                rows.append(_moa_matching(table, method).assign(
                    method=method, seed=seed, steps=snap["step"], samples=snap["step"] * int(p["batch_size"]),
                    flops=snap["flops"], cpu_seconds=snap["cpu_seconds"], wall_seconds=snap["wall_seconds"], **screen))
                print(f"  {method} seed {seed} step {snap['step']}: " + ", ".join(
                    f"{r.variant} NSC {100 * r.nsc:.1f} NSCB {100 * r.nscb:.1f}" for r in rows[-1].itertuples()), flush=True)
            pd.concat(rows).to_csv(out, index=False)  # after every network: a killed run keeps what it has
    print(f"wrote {out}")


DA_COMPUTE = {"supervised": ["supervised"], "dual_dino": ["dino_pretrain", "dual_dino"],
              "dual_cb": ["cb_pretrain", "dual_cb"], "ttt": ["mae_pretrain", "dual_mae"],
              "oda": ["dino_pretrain", "dual_dino", "@oda"], "coda": ["cb_pretrain", "dual_cb", "@coda"]}


def adaptation(args) -> None:
    """The domain-adaptation study (seed 001) on the simulated multi-source screen of ``conf/base``:
    every training step count of the experiment (DINO / DINO-CB / MAE pre-training, the dual and
    supervised classifiers, ODA / CODA adaptation) multiplied by one budget factor, one training
    source, every target, the seeds given; per method, in-source and out-of-source accuracy, the
    target linear probe, and the training compute that method used (its own loops: e.g. ODA = DINO
    + its dual model + the adaptation, the adaptation's FLOPs averaged over targets).

    ``--start pool``: every foundation (and the supervised ViT) starts from the generic pre-training
    pool's foundation of ``conf/workstation`` (pre-trained once, model cache), as the seed's start
    from ImageNet; its pre-training compute is reported apart (``pool_flops``), not in each method's.

    ``--methods`` (e.g. ``supervised,dual_dino,oda``): only the models those methods need are
    trained, each exactly as in the full run (``run_experiment(methods=...)``, tested), so a larger
    factor can be measured for one comparison at a fraction of the cost; ``run_methods`` records
    which ran (``run_wall_seconds`` is that subset's). ``accuracy_<target>``: each out-of-source
    target's own accuracy (the mean hides which target a seed lost on; rows before session 18 lack it)."""
    import numpy as np
    import pandas as pd
    import torch
    from _conf import base_params, env_params

    from cellbench.adaptation.experiment import chosen_methods, run_experiment
    from cellbench.adaptation.pool import pool_foundation
    from cellbench.ingest.sources import IngestionConfig, ingest
    from cellbench.representations.coda import CodaConfig

    params = base_params("domain_adaptation")
    methods = chosen_methods(args.methods.split(",") if args.methods else None)  # checked before any work
    crops = ingest(IngestionConfig.from_params(params["ingestion"], "domain_adaptation.ingestion")).materialize()
    factors = sorted(float(f) for f in args.factors.split(","))
    out, rows, done = _resume(args, "start", "factor")
    print(host_line(), f"{len(crops)} cells", flush=True)
    foundation, pool_flops = None, 0.0
    if args.start == "pool":
        pooled = CodaConfig.from_params({**params, "pool": env_params("domain_adaptation", "workstation")["pool"]},
                                        "domain_adaptation")
        before = os.environ["CELLBENCH_MODEL_CACHE"]
        os.environ["CELLBENCH_MODEL_CACHE"] = str(ROOT / "data/06_models/cache")  # the pool: once, across runs
        try:
            artefact, history = pool_foundation(pooled, torch.device("cpu"))
        finally:
            os.environ["CELLBENCH_MODEL_CACHE"] = before
        foundation = artefact["state_dict"]
        pool_flops = float(history["flops"][-1][1]) if history.get("flops") else np.nan
        print(f"pool foundation: {artefact['pool']}, {pool_flops:.3g} FLOPs", flush=True)
    scaled = lambda n, f: max(1, int(round(n * f)))  # noqa: E731
    for seed in [int(s) for s in args.seeds.split(",")]:
        for f in factors:
            if (args.start, f, seed) in done:
                continue
            dino, cls = params["dino"], params["classifier"]
            p = {**params, "seeds": [seed], "train_sources": [args.source], "targets": None,
                 "dino": {**dino, "steps": scaled(dino["steps"], f), "mae": {**dino["mae"], "steps": scaled(dino["mae"]["steps"], f)}},
                 "classifier": {**cls, "steps": scaled(cls["steps"], f), "eval_every": scaled(cls["eval_every"], f)},
                 "adapt": {**params["adapt"], "steps": scaled(params["adapt"]["steps"], f)},
                 "granularity": {**params["granularity"], "levels": []}}
            start, cpu = time.perf_counter(), time.process_time()
            results, *_, hist = run_experiment(crops, CodaConfig.from_params(p, "domain_adaptation"), torch.device("cpu"),
                                               foundation, methods)
            wall = time.perf_counter() - start
            prefix = f"seed{seed}/{args.source}"

            def compute(method: str, key: str) -> float:
                parts = []
                for name in DA_COMPUTE[method]:
                    if name.startswith("@"):  # the adaptation, per target: its mean
                        parts.append(np.mean([h[key][-1][1] for k, h in hist.items()
                                              if k.startswith(f"{prefix}-to-") and k.endswith(f"/{name[1:]}")]))
                    else:
                        parts.append(hist[f"{prefix}/{name}"][key][-1][1])
                return float(sum(parts))

            for method, g in results.groupby("method"):
                ins = g[g.target == g.source]
                outs = g[g.target != g.source]
                rows.append(pd.DataFrame([{
                    "method": method, "start": args.start, "factor": f, "seed": seed, "source": args.source,
                    "dino_steps": p["dino"]["steps"], "samples": p["dino"]["steps"] * int(dino["batch_size"]),
                    "in_source_accuracy": float(ins.accuracy.mean()) if len(ins) else np.nan,
                    "out_of_source_accuracy": float(outs.accuracy.mean()),
                    "out_of_source_macro_f1": float(outs.macro_f1.mean()),
                    "out_of_source_probe_accuracy": float(outs.probe_accuracy.mean()),
                    **{f"accuracy_{t}": float(a) for t, a in outs.groupby("target").accuracy.mean().items()},
                    "pool_flops": pool_flops,
                    "flops": compute(method, "flops"), "cpu_seconds": compute(method, "cpu_seconds"),
                    "run_wall_seconds": wall, "run_cpu_seconds": time.process_time() - cpu,
                    "run_methods": ",".join(methods)}]))
            last = pd.concat(rows[-len(results.method.unique()):])
            print(f"{args.start} factor {f} seed {seed}: {wall:.0f} s; out-of-source accuracy " + ", ".join(
                f"{r.method} {100 * r.out_of_source_accuracy:.1f}" for r in last.itertuples()), flush=True)
            pd.concat(rows).to_csv(out, index=False)
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


def texture_error(texture, split: str) -> float:
    """Texture's ``split`` error with its classifier chosen by Training CV (the budget-free line)."""
    chosen = texture.loc[texture["cv_balanced_error"].idxmin()]
    return float(texture[(texture.split == split) & (texture.classifier == chosen.classifier)]["balanced_error"].iloc[0])


FIT_POINTS = 3  # the power law is fitted to the largest budgets only
EXTRAPOLATION = 100  # a crossing further than this factor past the largest budget is not predicted


def fit_crossing(x, y, target: float):
    """Least-squares power law ``error = c x^-a`` (a line in log-log) through the points ``(x, y)``
    and the ``x`` at which it reaches ``target`` (``inf`` when it does not fall)."""
    import numpy as np

    lx, ly = np.log10(np.asarray(x, float)), np.log10(np.asarray(y, float))
    slope, intercept = np.polyfit(lx, ly, 1)
    cross = 10 ** ((np.log10(target) - intercept) / slope) if slope < 0 else float("inf")
    return slope, intercept, cross


def fit_points(args) -> None:
    """``fit``: the power-law crossing (:func:`fit_crossing`) through points measured outside one
    study's CSV (e.g. PCI's Test1 error at the study's budgets and in the workstation runs):
    ``--points steps:error,...``, ``--target`` (Texture's error), ``--flops-per-step`` to print the
    crossing in FLOPs too."""
    import math

    pts = [tuple(float(v) for v in p.split(":")) for p in args.points.split(",")]
    if len(pts) < 2 or any(len(p) != 2 for p in pts):
        raise SystemExit(f"--points: expected two or more steps:error pairs, got {args.points!r}")
    x, y = zip(*pts)
    slope, _, cross = fit_crossing(x, y, args.target)
    flops = f" = {cross * args.flops_per_step:.2e} FLOPs" if args.flops_per_step and math.isfinite(cross) else ""
    print(f"power law through {pts}: slope {slope:.3f}; reaches {args.target} at {cross:,.0f} steps{flops}")


def _panel(ax, curves, tex: float, axis: str, fit: bool, higher_better: bool, summary: list, info: dict) -> None:
    """One panel: per curve (``{name: frame with steps, seed, <axis>, value}``) the mean ± SD over
    seeds against ``axis``; Texture's line; with ``fit``, the power law through the largest budgets
    of the error (``value``, or ``100 - value`` for a score), extended to where it would reach Texture,
    and one row per curve in ``summary``."""
    import numpy as np

    for curve, g in curves.items():
        agg = g.groupby("steps").agg(x=(axis, "mean"), m=("value", "mean"), s=("value", "std")).reset_index()
        line = ax.errorbar(agg.x, agg.m, yerr=agg.s.fillna(0), marker="o", capsize=3, label=curve)
        if not fit:
            continue
        err, target = (100 - agg.m, 100 - tex) if higher_better else (agg.m, tex)
        behind = not err.iloc[-1] < target  # crossed: better than Texture at the largest budget
        tail = agg.index[-FIT_POINTS:]  # past the first steps' plateau / noise
        slope, icpt, cross = fit_crossing(agg.x[tail], err[tail], target)
        if behind and slope < 0:  # a curve getting worse never crosses: nothing to extend
            xs = np.logspace(np.log10(agg.x[tail].min()), np.log10(max(agg.x.max(), min(cross, agg.x.max() * 100))), 50)
            fitted = 10 ** (icpt + slope * np.log10(xs))
            ax.plot(xs, 100 - fitted if higher_better else fitted, ls=":", color=line[0].get_color())
        summary.append({**info, "curve": curve, "texture": round(tex, 1),
                        **{f"{int(s)} steps": f"{m:.1f} ± {0 if np.isnan(sd) else sd:.1f}"
                           for s, m, sd in zip(agg.steps, agg.m, agg.s)},
                        "crossed": not behind, "fit slope": slope,
                        "predicted crossing (FLOPs)": "crossed" if not behind else
                        (cross if cross <= EXTRAPOLATION * agg.x.max() else f"none within {EXTRAPOLATION}x")})
    ax.axhline(tex, color="k", ls="--", label="Texture (no training)")
    ax.set_xscale("log")
    ax.grid(alpha=0.3, which="both")


AXES = (("samples", "samples seen"), ("flops", "training FLOPs"), ("cpu_seconds", "CPU seconds (process)"))


def _save(fig, table, args) -> None:
    import pandas as pd

    from cellbench.reporting.tables import frame_markdown

    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=110)
    table = pd.DataFrame(table)
    steps = sorted((c for c in table.columns if c.endswith(" steps")), key=lambda c: int(c.split()[0]))
    rest = [c for c in table.columns if c not in steps]
    table = table[rest[:rest.index("texture") + 1] + steps + rest[rest.index("texture") + 1:]].fillna("-")
    table.to_csv(Path(args.out).with_suffix(".summary.csv"), index=False)
    shown = table.assign(**{"fit slope": table["fit slope"].round(3),
                            "predicted crossing (FLOPs)": [c if isinstance(c, str) else f"{c:.3g}"
                                                           for c in table["predicted crossing (FLOPs)"]]})
    Path(args.out).with_suffix(".summary.md").write_text(frame_markdown(shown, index=False) + "\n")
    print(frame_markdown(shown, index=False))
    print(f"wrote {args.figure}")


def plot_coos(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import pandas as pd

    df = pd.read_csv(args.out)
    runs = pd.read_csv(args.runs_csv) if args.runs_csv and Path(args.runs_csv).exists() else None
    texture = df[df.method == "texture"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), sharey="row")
    summary = []
    for r, split in enumerate(("test1", "test4")):
        tex = texture_error(texture, split) * 100
        picked = best_rows(df[df.method != "texture"], split).assign(value=lambda d: d.balanced_error * 100)
        curves = dict(tuple(picked.groupby("curve")))
        ran = {}
        if runs is not None:
            ran = dict(tuple(best_rows(runs[runs.method != "texture"], split).assign(
                value=lambda d: d.balanced_error * 100).groupby("curve")))
        for c, (axis, label) in enumerate(AXES):
            ax = axes[r, c]
            _panel(ax, curves, tex, axis, c == 1, False, summary, {"split": split})
            for curve, g in ran.items():  # pipeline runs: their own markers, outside the fit
                agg = g.groupby("steps").agg(x=(axis, "mean"), m=("value", "mean"), s=("value", "std"))
                ax.errorbar(agg.x, agg.m, yerr=agg.s.fillna(0), marker="s", mfc="none", ls="none", capsize=3,
                            color=f"C{list(curves).index(curve)}" if curve in curves else "k",
                            label=f"{curve}: pipeline runs ({g.seed.nunique()} seeds)")
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.set_xlabel(label)
            if c == 0:
                ax.set_ylabel(f"{split} class-balanced error (%)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("COOS budget curves (simulated default design; mean ± SD over seeds; dotted: power-law fit to "
                 f"the {FIT_POINTS} largest budgets, extended to where it would cross Texture;\nhollow squares: "
                 "`kedro run --pipelines=coos_benchmark` runs read back from MLflow (coos-runs), not in the fit)")
    fig.tight_layout()
    _save(fig, summary, args)


def plot_treatment(args) -> None:
    """NSCB and NSC (%) of each variant against budget; one row per metric and variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import pandas as pd

    df = pd.read_csv(args.out)
    rows = [(m, v) for v in TREATMENT_VARIANTS for m in ("nscb", "nsc")]
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, 4 * len(rows)), sharey="row")
    summary = []
    names = {"plate_dmso_zscore_median": "Mean", "plate_dmso_zscore_tvn": "Mean +Whitened (TVN)"}
    for r, (metric, variant) in enumerate(rows):
        d = df[df.variant == variant].assign(value=lambda t: t[metric] * 100)
        tex = float(d[d.method == "texture"]["value"].iloc[0])
        curves = dict(tuple(d[d.method != "texture"].groupby("method")))
        for c, (axis, label) in enumerate(AXES):
            ax = axes[r, c]
            _panel(ax, curves, tex, axis, c == 1, True, summary, {"metric": metric.upper(), "variant": names[variant]})
            ax.set_xlabel(label)
            if c == 0:
                ax.set_ylabel(f"{metric.upper()} (%), {names[variant]}")
    axes[0, 0].legend(fontsize=8)
    where = screen_label(df.iloc[0][list(SCREEN_KEYS)].to_dict()) if "cells" in df else "simulated screen"
    fig.suptitle(f"Treatment-screen budget curves ({where}; {int(df.nscb_n.max()) if 'nscb_n' in df else '?'} treatments; "
                 "1-NN MoA matching of treatment profiles;\nmean ± SD over seeds; dotted: power law of 100 - score "
                 f"through the {FIT_POINTS} largest budgets)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.975))  # room for the two-line title
    _save(fig, summary, args)


def plot_adaptation(args) -> None:
    """Per method and start (scratch / pool): mean out-of-source accuracy, the share of the
    supervised gap recovered (against the supervised ViT of the same start), and the target linear
    probe's accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    df = pd.read_csv(args.out)
    df["start"] = df["start"].fillna("scratch") if "start" in df else "scratch"
    keys = ["start", "factor", "seed"]
    sup = df[df.method == "supervised"].set_index(keys)
    gap = sup.in_source_accuracy - sup.out_of_source_accuracy
    key = pd.MultiIndex.from_frame(df[keys])
    df["gap_recovered"] = ((df.out_of_source_accuracy.to_numpy() - sup.out_of_source_accuracy.reindex(key).to_numpy())
                           / gap.reindex(key).to_numpy()) * 100
    df["accuracy_pct"] = df.out_of_source_accuracy * 100
    df["probe_pct"] = df.get("out_of_source_probe_accuracy", pd.Series(np.nan, index=df.index)) * 100
    df["steps"] = df.dino_steps
    metrics = [("accuracy_pct", "mean out-of-source accuracy (%)"), ("gap_recovered", "supervised gap recovered (%)"),
               ("probe_pct", "target linear probe accuracy (%)")]
    metrics = [m for m in metrics if df[m[0]].notna().any()]
    fig, axes = plt.subplots(len(metrics), 3, figsize=(15, 4.2 * len(metrics)), squeeze=False)
    colours = {m: f"C{i}" for i, m in enumerate(sorted(df.method.unique()))}
    summary = []
    for r, (col, label) in enumerate(metrics):
        d = df[df.method != "ttt"]
        for c, (axis, xlabel) in enumerate(AXES):
            ax = axes[r, c]
            for (method, start), g in d.groupby(["method", "start"]):
                g = g.dropna(subset=[col])
                if g.empty:
                    continue
                agg = g.groupby("steps").agg(x=(axis, "mean"), m=(col, "mean"), s=(col, "std")).reset_index()
                curve = method if start == "scratch" else f"{method} (pool)"
                ax.errorbar(agg.x, agg.m, yerr=agg.s.fillna(0), marker="o" if start == "scratch" else "s", capsize=3,
                            label=curve, color=colours[method], ls="-" if start == "scratch" else "--")
                if c == 1:
                    summary.append({"metric": label, "curve": curve, **{
                        f"{int(s)} DINO steps": f"{m:.1f} ± {0 if np.isnan(sd) else sd:.1f}"
                        for s, m, sd in zip(agg.steps, agg.m, agg.s)}})
            if col == "gap_recovered":
                ax.axhline(0, color="k", lw=0.8)
            ax.set_xscale("log")
            ax.grid(alpha=0.3, which="both")
            ax.set_xlabel(xlabel + (" (that method's training)" if axis != "samples" else " (DINO pre-training)"))
            if c == 0:
                ax.set_ylabel(label)
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.suptitle("Domain-adaptation budget curves (simulated multi-source screen; every step count x the budget "
                 "factor; mean ± SD over seeds; dashed: foundations from the pre-training pool, its pre-training "
                 "not counted)", fontsize=10)
    fig.tight_layout()
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=110)
    table = pd.DataFrame(summary)
    table.to_csv(Path(args.out).with_suffix(".summary.csv"), index=False)
    from cellbench.reporting.tables import frame_markdown

    Path(args.out).with_suffix(".summary.md").write_text(frame_markdown(table, index=False) + "\n")
    print(frame_markdown(table, index=False))
    print(f"wrote {args.figure}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", choices=["coos", "plot-coos", "coos-runs", "treatment", "plot-treatment", "adaptation",
                                      "plot-adaptation", "fit"])
    ap.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="coos-runs: the MLflow store")
    ap.add_argument("--runs", default=None, help="coos-runs: MLflow run ids (default: every finished coos_benchmark run)")
    ap.add_argument("--runs-csv", default="benchmarks/results/budget_coos_runs.csv",
                    help="coos-runs: where the runs' points go; plot-coos: drawn from there when it exists")
    ap.add_argument("--points", default=None, help="fit: steps:error pairs, e.g. 300:11.4,1000:9.5,4000:7.7")
    ap.add_argument("--target", type=float, default=None, help="fit: the error to reach (Texture's)")
    ap.add_argument("--flops-per-step", type=float, default=None, help="fit: training FLOPs per step")
    ap.add_argument("--crops", default=None, help="default: the pipeline's coos_crops / treatment_crops")
    ap.add_argument("--budgets", default=None, help="default: 30,100,300,1000 (coos), 100,300,1000,3000 (ResNet18)")
    ap.add_argument("--budgets-vae", default="30,100,300,1000", help="treatment study: AE / VAE / VAE+ steps")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--factors", default="0.333,1,3,10", help="adaptation study: budget factors on every step count")
    ap.add_argument("--source", default="source_1", help="adaptation study: the training source")
    ap.add_argument("--start", choices=["scratch", "pool"], default="scratch",
                    help="adaptation study: foundations from scratch or from the pre-training pool (conf/workstation)")
    ap.add_argument("--methods", default=None,
                    help="default: every method of the study; adaptation: e.g. supervised,dual_dino,oda trains only "
                         "the models those need, each as in the full run")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the networks already in --out; one that lacks some of --budgets is trained again, "
                         "once, to the largest of its old and new budgets, and its rows replaced")
    ap.add_argument("--out", default=None, help="default: benchmarks/results/budget_<study>.csv")
    ap.add_argument("--figure", default=None, help="default: docs/figures/budget_<study>.png")
    args = ap.parse_args()
    if args.study == "fit":
        if args.points is None or args.target is None:
            ap.error("fit needs --points and --target")
        return fit_points(args)
    if args.study == "coos-runs":
        args.out = args.out or args.runs_csv
        return coos_runs(args)
    study = args.study.removeprefix("plot-")
    coos_study = study == "coos"
    args.crops = args.crops or f"data/02_intermediate/{'coos' if coos_study else study}_crops"
    args.budgets = args.budgets or ("30,100,300,1000" if coos_study else "100,300,1000,3000")
    args.methods = args.methods or {"coos": "deeploc,pci,autoencoder", "treatment": ",".join(TREATMENT_METHODS)}.get(study)
    args.out = args.out or f"benchmarks/results/budget_{study}.csv"
    args.figure = args.figure or f"docs/figures/budget_{study}.png"
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")  # training progress lines
    if args.threads:
        pin_threads(args.threads)
    {"coos": coos, "plot-coos": plot_coos, "treatment": treatment, "plot-treatment": plot_treatment,
     "adaptation": adaptation, "plot-adaptation": plot_adaptation}[args.study](args)


if __name__ == "__main__":
    main()
