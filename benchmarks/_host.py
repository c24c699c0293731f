"""The host a benchmark ran on, measured in the same run: CPU model, cores, and a float64
matrix-multiply rate (hosts of one kind differ several-fold, so a table without it is unreadable).

``pin_threads(n)`` must run before numpy / numba are imported: it sets the thread count of every
pool (OpenMP, OpenBLAS, MKL, numba) so that cellbench and its reference run on the same cores.
"""

from __future__ import annotations

import os
import platform
import time

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def pin_threads(n: int) -> dict:
    """Set every thread-pool variable to ``n`` (for this process and the children it starts)."""
    for var in THREAD_VARIABLES:
        os.environ[var] = str(int(n))
    return {var: os.environ[var] for var in THREAD_VARIABLES}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def matmul_gflops(n: int = 1024, reps: int = 5) -> float:
    """Best float64 ``n x n`` matrix-multiply rate over ``reps`` tries, in GFLOP/s (2 n^3 per product)."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n))
    a @ a  # warm-up (BLAS threads start)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def host() -> dict:
    """``{cpu, cores, threads, matmul_gflops}`` of this process's host, measured now."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": os.environ.get("OMP_NUM_THREADS", "unpinned"),
            "matmul_gflops": round(matmul_gflops(), 1)}


def host_line(info: dict | None = None) -> str:
    """One Markdown line heading a results table."""
    info = info or host()
    return (f"Host: {info['cpu']}, {info['cores']} cores, threads pinned to {info['threads']}, "
            f"float64 matmul {info['matmul_gflops']} GFLOP/s (measured in the same run).")


def rss_bytes() -> int:
    """This process's resident set size (``VmRSS`` of /proc/self/status), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def timed_peak(call, interval_s: float = 0.005):
    """``(result, wall seconds, RSS before, peak RSS during)`` of ``call()``; the RSS is sampled every
    ``interval_s`` by a thread."""
    import threading

    before = rss_bytes()
    peak = [before]
    done = threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(interval_s)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    start = time.perf_counter()
    try:
        out = call()
    finally:
        wall = time.perf_counter() - start
        done.set()
        t.join()
    return out, wall, before, max(peak[0], rss_bytes())
