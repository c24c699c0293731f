"""Simulator throughput: 64x64x2 COOS-7 crops per second on one core (numpy/scipy single-threaded).

    python benchmarks/bench_simulator.py --size 0.03
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: set before numpy is imported
import time
import resource

from cellbench.simulate import CoosDesign, simulate_coos7


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=float, default=0.03)
    args = ap.parse_args()
    chunked = simulate_coos7(CoosDesign(size=args.size, seed=0))
    t = time.perf_counter()
    n = 0
    for chunk in chunked:
        n += len(chunk)
    dt = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"crops": n, "seconds": round(dt, 2), "crops_per_s_one_core": round(n / dt, 1),
                      "peak_rss_MB": round(peak_mb, 1)}))


if __name__ == "__main__":
    main()
