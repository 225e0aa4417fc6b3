"""Optimiser speed: SMA-cross grids on a year of synthetic 1m candles, long and short, 0.04 % fees.

For the issue's 10 x 10 grid (fast 5..50, slow 20..200) and 50 x 50 grid (fast 5..250, slow
20..1,000), in one process and on a local Dask cluster of two workers, each configuration in a
fresh process (so that no memory is carried from one to the next), prints: seconds,
combinations per second, peak memory (the proportional set size of this process and its workers:
their shared libraries counted once, not once per process), the time the deflated
Sharpe and PBO took, and the ratio of the sweep's time to (valid combinations x the numpy
reference's single run of bench_backtest.py), measured here in the same process.
Targets (issue #16): ratio <= 0.3 on two cores, the 50 x 50 grid in <= 10 s, peak memory < 1 GB,
DSR and PBO < 2 s. vectorbt 1.2 measured on this machine: 10 x 10 in 16.6 s (7.4 GB peak), 50 x 50
in 349 s (6.2 GB).

    python benchmarks/bench_optimizer.py [--grids 10,50] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backtesting.optimizador import optimizar  # noqa: E402
from backtesting.sweep import tune_allocator  # noqa: E402
from benchmarks.bench_backtest import YEAR, best_of, reference  # noqa: E402
from benchmarks.synthetic import synthetic  # noqa: E402

GRIDS = {
    "10": {"rapida": range(5, 55, 5), "lenta": range(20, 220, 20)},
    "50": {"rapida": range(5, 255, 5), "lenta": range(20, 1020, 20)},
}
RUNS = 3  # timed sweeps per configuration; the best is printed (the reference: best of 7)
VECTORBT = {"10": (16.6, 7.4), "50": (349.0, 6.2)}  # seconds, peak GB, measured for the issue


# Reading a process's PSS walks its page tables (about 1.4 ms for 600 MB, under the lock its page
# faults need): sampled every 20 ms, the three processes' readings took a third off the sweep.
# Memory here rises to a plateau (the workers' memos, the results), which 0.1 s sampling finds.
SAMPLE_S = 0.1


class PeakMemory:
    """The highest memory of this process plus its children, sampled every SAMPLE_S: the sum of
    their PSS, which splits each shared page among the processes mapping it (summing RSS would
    count numpy's and LLVM's libraries once per worker)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_full_info().pss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            self._stop.wait(SAMPLE_S)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(grid: str, workers: int) -> None:
    """One configuration, measured from this (fresh) process: its own reference run, the
    cluster's start apart, then the sweep with its peak memory."""
    tune_allocator()  # as the sweep does: the reference runs under the same allocator
    velas = synthetic(YEAR)
    o, c = velas["open"].to_numpy(), velas["close"].to_numpy()
    single, _, _ = best_of(7, reference, o, c, 10, 30, 10_000.0)
    cluster = client = None
    started = time.perf_counter()
    if workers:
        import dask
        from distributed import Client, LocalCluster

        # As optimizar's own local cluster does (and the README advises for hand-started workers).
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
        client = Client(cluster)
        # A long-lived cluster's workers have imported Kryptelion and loaded its compiled loops
        # before any sweep; a first tiny sweep does that here.
        optimizar(velas[:2_000], "sma_cruce", GRIDS["10"], cluster=cluster.scheduler_address)
    setup = time.perf_counter() - started
    try:
        address = cluster.scheduler_address if cluster else None
        seconds, peak = math.inf, 0
        for _ in range(RUNS):  # the best of a few, as for the reference: this machine is shared
            with PeakMemory() as memory:
                start = time.perf_counter()
                result = optimizar(
                    velas, "sma_cruce", GRIDS[grid], comision=0.0004, cluster=address
                )
                seconds = min(seconds, time.perf_counter() - start)
            peak = max(peak, memory.peak)
    finally:
        if client is not None and cluster is not None:
            client.close()
            cluster.close()
    where = f"{workers} Dask workers" if workers else "this process  "
    ratio = seconds / (result.probadas * single)
    print(
        f"  {grid}x{grid} {where}  {seconds:7.2f} s  {result.probadas / seconds:6.0f} comb/s  "
        f"peak {peak / 2**30:5.2f} GB  DSR+PBO {result.segundos_sobreajuste:5.2f} s  "
        f"ratio {ratio:.2f}  (reference {single * 1e3:.1f} ms; {result.probadas} valid, "
        f"{result.omitidas} refused; cluster start {setup:.1f} s, not counted; "
        f"vectorbt {VECTORBT[grid][0]:.0f} s, {VECTORBT[grid][1]} GB)",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", default="10,50")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # "grid:workers", in a fresh process
    args = parser.parse_args()
    if args.one:
        grid, workers = args.one.split(":")
        run(grid, int(workers))
        return 0
    print(f"{YEAR:,} synthetic 1m candles; each line a fresh process")
    for grid in args.grids.split(","):
        for workers in (0, args.workers):
            command = [sys.executable, __file__, "--one", f"{grid}:{workers}"]
            subprocess.run(command, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
