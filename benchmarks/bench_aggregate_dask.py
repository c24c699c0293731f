"""Peak memory of plate-partitioned aggregation: ``aggregate_partitions`` (one plate loaded at a
time) against ``aggregate_dask`` (a ``dask.dataframe`` read from the same Parquet files, one
partition per plate, threaded scheduler), each in its own process.

    python benchmarks/bench_aggregate_dask.py [--plates 40] [--cells 25000] [--features 200] [--threads 2]

Writes the plates once under ``--dir`` (default: a temporary folder), then reports, per engine, the
wall time, the process RSS before the call and its peak during it (sampled every 5 ms), and the
peak over one plate's bytes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _host import host, host_line, pin_threads, timed_peak  # noqa: E402



def write_plates(folder: Path, plates: int, cells: int, features: int) -> int:
    import numpy as np
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for p in range(plates):
        df = pd.DataFrame(rng.standard_normal((cells, features)), columns=[f"Cells_f{j}" for j in range(features)])
        df.insert(0, "Metadata_Well", rng.choice([f"W{w:03d}" for w in range(384)], cells))
        df.insert(0, "Metadata_Plate", f"Plate_{p:03d}")
        df.to_parquet(folder / f"plate_{p:03d}.parquet", index=False)
    return cells * features * 8


def child(engine: str, folder: Path, operation: str) -> dict:
    import pandas as pd

    from cellbench.profiling import aggregate

    files = sorted(folder.glob("*.parquet"))
    if engine == "aggregate_partitions":
        from cellbench.profiling import aggregate_partitions

        parts = {f.stem: (lambda f=f: pd.read_parquet(f)) for f in files}
        call = lambda: aggregate_partitions(parts, operation=operation)  # noqa: E731
    else:
        import dask
        import dask.dataframe as dd

        from cellbench.profiling import aggregate_dask

        dask.config.set(scheduler="threads")
        ddf = dd.read_parquet([str(f) for f in files])
        if engine == "aggregate_dask":
            call = lambda: aggregate_dask(ddf, operation=operation)  # noqa: E731
        else:  # the implementation before issue 22: one delayed aggregate per partition, all computed at once
            def call():
                parts = ddf.to_delayed()
                return pd.concat(dask.compute(*[dask.delayed(aggregate)(q, operation=operation) for q in parts]))

    aggregate(pd.read_parquet(files[0]).head(500), operation=operation)  # compile outside the timing
    out, wall, before, peak_rss = timed_peak(call)
    return {"engine": engine, "operation": operation, "plates": len(files), "wells": len(out), "wall_s": wall,
            "rss_before_gib": before / 2**30, "peak_rss_gib": peak_rss / 2**30,
            "added_gib": (peak_rss - before) / 2**30}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plates", type=int, default=40)
    ap.add_argument("--cells", type=int, default=25_000)
    ap.add_argument("--features", type=int, default=200)
    ap.add_argument("--operation", default="median")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--out", default="benchmarks/results/aggregate_dask.csv")
    ap.add_argument("--child", nargs=2, metavar=("ENGINE", "DIR"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.operation)))
        return
    pin_threads(args.threads)
    info = host()
    print(host_line(info), flush=True)
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir or tmp)
        plate_bytes = write_plates(folder, args.plates, args.cells, args.features)
        rows = []
        for engine in ("aggregate_partitions", "aggregate_dask", "delayed_before", "aggregate_partitions",
                       "aggregate_dask", "delayed_before"):
            res = subprocess.run([sys.executable, __file__, "--child", engine, str(folder), "--operation",
                                  args.operation], capture_output=True, text=True, check=True)
            row = json.loads(res.stdout.strip().splitlines()[-1])
            row["added_over_plate"] = row["added_gib"] * 2**30 / plate_bytes
            rows.append(row)
            print(row, flush=True)
    table = pd.DataFrame(rows).assign(plate_gib=plate_bytes / 2**30, **info)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
