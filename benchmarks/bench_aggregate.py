"""Median / mean aggregation of single cells to wells: cellbench vs pycytominer, same run.

Each engine runs in its own child process on the same table, built in place (no second copy):
1,000,000 cells x 500 float64 features (3.7 GiB), 2,000 wells over 6 plates, string strata, rows in
random order. Reported: wall time of the call, the process RSS before it, its peak during the call
(sampled every 5 ms from /proc/self/status) and the peak as a multiple of the input's bytes.

    python benchmarks/bench_aggregate.py [--cells 1000000] [--features 500] [--out benchmarks/results/aggregate.csv]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def make_table(n: int, d: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = np.empty((d, n))  # column-major block, as pandas stores a float frame
    for j in range(d):
        rng.standard_normal(n, out=X[j])
    df = pd.DataFrame(X.T, columns=[f"Cells_Feature_{j}" for j in range(d)], copy=False)
    wells = rng.integers(0, 2000, size=n)
    df.insert(0, "Metadata_Well", pd.Series([f"W{w % 334:03d}" for w in range(2000)], dtype=object).to_numpy()[wells])
    df.insert(0, "Metadata_Plate", np.array([f"Plate_{w // 334}" for w in range(2000)], dtype=object)[wells])
    return df


def child(engine: str, operation: str, n: int, d: int) -> dict:
    warnings.simplefilter("ignore")
    df = make_table(n, d)
    feats = [c for c in df.columns if not c.startswith("Metadata_")]
    input_bytes = int(df[feats].memory_usage(index=False).sum())
    if engine == "cellbench":
        from cellbench.profiling import aggregate

        aggregate(df.iloc[:1000], features=feats, operation=operation)  # compile outside the timing
        call = lambda: aggregate(df, features=feats, operation=operation)  # noqa: E731
    else:
        from pycytominer import aggregate

        call = lambda: aggregate(df, features=feats, operation=operation)  # noqa: E731
    before = rss_bytes()
    peak = [before]
    done = threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.005)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    start = time.perf_counter()
    out = call()
    wall = time.perf_counter() - start
    done.set()
    t.join()
    checksum = float(np.nansum(out[feats].to_numpy()))
    return {"engine": engine, "operation": operation, "cells": n, "features": d, "wells": len(out),
            "wall_s": wall, "input_gib": input_bytes / 2**30, "rss_before_gib": before / 2**30,
            "peak_rss_gib": peak[0] / 2**30, "peak_over_input": peak[0] / input_bytes, "checksum": checksum}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=500)
    ap.add_argument("--operations", default="median,mean")
    ap.add_argument("--out", default="benchmarks/results/aggregate.csv")
    ap.add_argument("--child", nargs=2, metavar=("ENGINE", "OPERATION"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.cells, args.features)))
        return
    rows = []
    for operation in args.operations.split(","):
        for engine in ("pycytominer", "cellbench"):
            res = subprocess.run([sys.executable, __file__, "--child", engine, operation, "--cells", str(args.cells),
                                  "--features", str(args.features)], capture_output=True, text=True, check=True)
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    for op, grp in table.groupby("operation"):
        g = grp.set_index("engine")
        print(f"{op}: cellbench {g.loc['pycytominer', 'wall_s'] / g.loc['cellbench', 'wall_s']:.1f}x faster; "
              f"peak RSS {g.loc['cellbench', 'peak_over_input']:.2f}x input (pycytominer "
              f"{g.loc['pycytominer', 'peak_over_input']:.2f}x); checksums equal: "
              f"{np.isclose(g.loc['cellbench', 'checksum'], g.loc['pycytominer', 'checksum'], rtol=1e-9)}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
