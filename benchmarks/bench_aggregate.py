"""Median / mean aggregation of single cells to wells: cellbench vs pycytominer, same run.

Each call runs in its own child process on the same table, built in place (no second copy):
1,000,000 cells x 500 float64 features (3.7 GiB), 2,000 wells over 6 plates, string strata, rows in
random order. Threads are pinned for both engines (``--threads``, every pool). Reported per engine
and operation:

* steady state: ``--reps`` children per engine, interleaved (pycytominer, cellbench, pycytominer,
  ...), each timing one call after cellbench's kernels were compiled or loaded from their cache on
  a small slice; min and median wall seconds;
* first call: one more cellbench child per operation with an empty numba cache (compilation inside
  the timed call, as a user's very first call), and one with the cache just written (a user's
  later sessions);
* peak RSS during the call (sampled every 5 ms from /proc/self/status) as a multiple of the
  input's bytes, and the process RSS before it.

    python benchmarks/bench_aggregate.py [--cells 1000000] [--features 500] [--reps 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _host import host, host_line, pin_threads, timed_peak  # noqa: E402



def make_table(n: int, d: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = np.empty((d, n))  # column-major block, as pandas stores a float frame
    for j in range(d):
        rng.standard_normal(n, out=X[j])
    df = pd.DataFrame(X.T, columns=[f"Cells_Feature_{j}" for j in range(d)], copy=False)
    wells = rng.integers(0, 2000, size=n)
    df.insert(0, "Metadata_Well", pd.Series([f"W{w % 334:03d}" for w in range(2000)], dtype=object).to_numpy()[wells])
    df.insert(0, "Metadata_Plate", np.array([f"Plate_{w // 334}" for w in range(2000)], dtype=object)[wells])
    return df


def child(engine: str, operation: str, n: int, d: int, warm: bool) -> dict:
    import numpy as np

    warnings.simplefilter("ignore")
    df = make_table(n, d)
    feats = [c for c in df.columns if not c.startswith("Metadata_")]
    input_bytes = int(df[feats].memory_usage(index=False).sum())
    if engine == "cellbench":
        from cellbench.profiling import aggregate

        if warm:  # compile (or load from the cache) on a slice of the same layout, outside the timing
            aggregate(df.iloc[:1000], features=feats, operation=operation)
            aggregate(df, features=feats[:2], operation=operation)
    else:
        from pycytominer import aggregate
    call = lambda: aggregate(df, features=feats, operation=operation)  # noqa: E731
    out, wall, before, peak_rss = timed_peak(call)
    checksum = float(np.nansum(out[feats].to_numpy()))
    return {"engine": engine, "operation": operation, "cells": n, "features": d, "wells": len(out),
            "wall_s": wall, "input_gib": input_bytes / 2**30, "rss_before_gib": before / 2**30,
            "peak_rss_gib": peak_rss / 2**30, "peak_over_input": peak_rss / input_bytes, "checksum": checksum}


def run_child(args, engine: str, operation: str, kind: str, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, operation, "--cells", str(args.cells),
           "--features", str(args.features)] + (["--cold"] if kind != "steady" else [])
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    row = json.loads(res.stdout.strip().splitlines()[-1])
    row["kind"] = kind
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=500)
    ap.add_argument("--operations", default="median,mean")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/aggregate.csv")
    ap.add_argument("--child", nargs=2, metavar=("ENGINE", "OPERATION"))
    ap.add_argument("--cold", action="store_true", help="(child) time the first call, compilation included")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.cells, args.features, warm=not args.cold)))
        return
    pin_threads(args.threads)
    info = host()
    print(host_line(info), flush=True)
    import numpy as np
    import pandas as pd

    rows = []
    env = dict(os.environ)
    for operation in args.operations.split(","):
        for _ in range(args.reps):
            for engine in ("pycytominer", "cellbench"):
                rows.append(run_child(args, engine, operation, "steady", env))
        cache = tempfile.mkdtemp(prefix="numba-cache-")
        try:
            cold = dict(env, NUMBA_CACHE_DIR=cache)
            rows.append(run_child(args, "cellbench", operation, "first call, empty cache", cold))
            rows.append(run_child(args, "cellbench", operation, "first call, cache written", cold))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    table = pd.DataFrame(rows).assign(**{k: v for k, v in info.items()})
    steady = table[table["kind"] == "steady"]
    for op, grp in steady.groupby("operation"):
        py, cb = grp[grp["engine"] == "pycytominer"], grp[grp["engine"] == "cellbench"]
        print(f"{op}: pycytominer min {py['wall_s'].min():.2f} / median {py['wall_s'].median():.2f} s; cellbench min "
              f"{cb['wall_s'].min():.2f} / median {cb['wall_s'].median():.2f} s -> "
              f"{py['wall_s'].median() / cb['wall_s'].median():.1f}x faster (medians); peak RSS "
              f"{cb['peak_over_input'].max():.2f}x input (pycytominer {py['peak_over_input'].max():.2f}x); checksums "
              f"equal: {np.allclose(cb['checksum'], py['checksum'].iloc[0], rtol=1e-9)}")
    for _, r in table[table["kind"] != "steady"].iterrows():
        print(f"{r['operation']}: cellbench {r['kind']}: {r['wall_s']:.2f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
