"""Optimiser speed: SMA-cross grids on a year of synthetic 1m candles, long and short, 0.04 % fees.

For the issue's 10 x 10 grid (fast 5..50, slow 20..200) and 50 x 50 grid (fast 5..250, slow
20..1,000), in this process and on a local Dask cluster of two workers, prints: seconds,
combinations per second, peak memory (this process and its workers), the time the deflated
Sharpe and PBO took, and the ratio of the sweep's time to (valid combinations x the numpy
reference's single run of bench_backtest.py), measured here in the same process.
Targets (issue #16): ratio <= 0.3 on two cores, the 50 x 50 grid in <= 10 s, peak memory < 1 GB,
DSR and PBO < 2 s. vectorbt 1.2 measured on this machine: 10 x 10 in 16.6 s (7.4 GB peak), 50 x 50
in 349 s (6.2 GB).

    python benchmarks/bench_optimizer.py [--grids 10,50] [--workers 2]
"""

from __future__ import annotations

import argparse
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
VECTORBT = {"10": (16.6, 7.4), "50": (349.0, 6.2)}  # seconds, peak GB, measured for the issue


class PeakMemory:
    """The highest resident memory of this process plus its children, sampled every 20 ms."""

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
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            self._stop.wait(0.02)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(velas, grid: str, cluster: str | None, single: float) -> None:  # type: ignore[no-untyped-def]
    with PeakMemory() as memory:
        start = time.perf_counter()
        result = optimizar(velas, "sma_cruce", GRIDS[grid], comision=0.0004, cluster=cluster)
        seconds = time.perf_counter() - start
    where = "2 Dask workers" if cluster else "this process   "
    ratio = seconds / (result.probadas * single)
    print(
        f"  {grid}x{grid} {where}  {seconds:7.2f} s  {result.probadas / seconds:6.0f} comb/s  "
        f"peak {memory.peak / 2**30:5.2f} GB  DSR+PBO {result.segundos_sobreajuste:5.2f} s  "
        f"ratio {ratio:.2f}  ({result.probadas} valid, {result.omitidas} refused; "
        f"vectorbt {VECTORBT[grid][0]:.0f} s, {VECTORBT[grid][1]} GB)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", default="10,50")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tune_allocator()  # as the sweep does: the reference runs under the same allocator
    velas = synthetic(YEAR)
    o, c = velas["open"].to_numpy(), velas["close"].to_numpy()
    single, _, _ = best_of(7, reference, o, c, 10, 30, 10_000.0)
    print(f"{YEAR:,} synthetic 1m candles; numpy reference single run {single * 1e3:.1f} ms")
    from distributed import Client, LocalCluster

    started = time.perf_counter()
    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    print(f"  local Dask cluster of {args.workers} workers started in "
          f"{time.perf_counter() - started:.1f} s (not counted below)")  # fmt: skip
    try:
        for grid in args.grids.split(","):
            run(velas, grid, None, single)
            run(velas, grid, cluster.scheduler_address, single)
    finally:
        client.close()
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
