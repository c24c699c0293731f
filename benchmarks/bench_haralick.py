"""Haralick throughput: cellbench (numba and numpy backends) vs mahotas, same crops, same run.

Crops are simulated COOS-7 cells, protein channel rescaled to the full 8-bit range (the COOS
Texture preprocessing); features at distances 1, 2, 4, 8, 16, averaged over 4 directions.

    python benchmarks/bench_haralick.py --n 4000 --n-mahotas 150

Threads are pinned before numpy is imported: BLAS / OpenMP pools to 1 (mahotas is single-threaded
C++, and an unpinned BLAS pool spinning beside it inflated its time several-fold under load);
cellbench's numba kernels run with 1 thread and with every core. mahotas and cellbench's numba
backend alternate over ``--reps`` rounds (best of each), and the table is headed by the host.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _host import host, host_line  # noqa: E402

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import mahotas  # noqa: E402
import numpy as np  # noqa: E402

from cellbench.features.texture import haralick, rescale_unit
from cellbench.simulate import CoosDesign, simulate_coos7

DIST = (1, 2, 4, 8, 16)


def timed(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--n-mahotas", type=int, default=150)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    info = host()
    print(host_line(dict(info, threads="1 (BLAS / OpenMP); numba as labelled")), flush=True)
    crops = simulate_coos7(CoosDesign(size=0.05, seed=1)).materialize()
    q = np.rint(rescale_unit(crops.images[: args.n, 0]) * 255).astype(np.uint8)
    n = len(q)
    haralick(q[:8], backend="numba")  # JIT warm-up (cached on disk after the first run)
    res = {"crops": n, "cpus": len(os.sched_getaffinity(0)), **info}
    for label, kw in [("numba_1_thread", dict(backend="numba", n_jobs=1)),
                      ("numba_all_threads", dict(backend="numba")),
                      ("numpy_1_thread", dict(backend="numpy", n_jobs=1)),
                      ("numpy_all_threads", dict(backend="numpy"))]:
        sub = q if label.startswith("numba") else q[: min(n, 1500)]
        dt, out = timed(lambda: haralick(sub, distances=DIST, **kw), repeat=2)
        res[label] = len(sub) / dt
        if label == "numba_all_threads":
            ours = out
    m = q[: args.n_mahotas]
    best_m, best_c = float("inf"), float("inf")
    for _ in range(args.reps):  # interleaved: mahotas, cellbench (all threads), mahotas, ...
        dt, ref = timed(lambda: np.array([[mahotas.features.haralick(x, distance=d, return_mean=True) for d in DIST]
                                          for x in m]), repeat=1)
        best_m = min(best_m, dt)
        best_c = min(best_c, timed(lambda: haralick(q, distances=DIST, backend="numba"), repeat=1)[0])
    res["mahotas_1_thread"] = len(m) / best_m
    res["numba_all_threads_interleaved"] = n / best_c
    res["max_rel_diff_vs_mahotas"] = float(np.max(np.abs(ours[: len(m)] - ref) / (np.abs(ref) + 1e-12)))
    res["speedup_numba_all_vs_mahotas"] = res["numba_all_threads_interleaved"] / res["mahotas_1_thread"]
    res["speedup_numba_1_vs_mahotas"] = res["numba_1_thread"] / res["mahotas_1_thread"]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}, indent=1))


if __name__ == "__main__":
    main()
