"""Harmony and the batch-removal / biology scores at scale: ``--profiles`` well profiles (default
100,000) in ``--features`` features, ``--batches`` batches with a known shift, ``--labels`` MoA-like
labels; wall time and peak RSS of ``harmony`` and of ``integration_scores``, each in its own process.

    python benchmarks/bench_integration.py [--profiles 100000] [--features 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _host import host, host_line, pin_threads, timed_peak  # noqa: E402



def make(n: int, d: int, batches: int, labels: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    label = rng.integers(0, labels, n)
    batch = rng.integers(0, batches, n)
    X = rng.standard_normal((n, d)) + rng.standard_normal((labels, d))[label] * 1.5 + rng.standard_normal((batches, d))[batch]
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(d)])
    df.insert(0, "Metadata_Batch", [f"B{b}" for b in batch])
    df.insert(0, "Metadata_MoA", [f"M{m}" for m in label])
    return df


def child(stage: str, n: int, d: int, batches: int, labels: int) -> dict:
    df = make(n, d, batches, labels)
    if stage == "harmony":
        from cellbench.profiling.harmony import harmony

        call = lambda: harmony(df, batch="Metadata_Batch", n_components=50)  # noqa: E731
    else:
        from cellbench.metrics.integration import integration_scores
        from cellbench.profiling.harmony import harmony

        X = harmony(df, batch="Metadata_Batch", n_components=50).filter(like="harmony_PC").to_numpy()
        call = lambda: integration_scores(X, df["Metadata_Batch"].to_numpy(), df["Metadata_MoA"].to_numpy())  # noqa: E731
    out, wall, before, peak_rss = timed_peak(call)
    extra = {k: round(float(v), 4) for k, v in out.items()} if isinstance(out, dict) else {}
    return {"stage": stage, "profiles": n, "features": d, "wall_s": round(wall, 2), "rss_before_gib": before / 2**30,
            "peak_rss_gib": peak_rss / 2**30, **extra}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=200)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--labels", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/integration.csv")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.profiles, args.features, args.batches, args.labels)))
        return
    pin_threads(args.threads)
    info = host()
    print(host_line(info), flush=True)
    import pandas as pd

    rows = []
    for stage in ("harmony", "scores"):
        res = subprocess.run([sys.executable, __file__, "--child", stage, "--profiles", str(args.profiles),
                              "--features", str(args.features), "--batches", str(args.batches), "--labels",
                              str(args.labels)], capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).assign(**info).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
