"""Candle repository speed: upsert one year of 1m candles, then read it back into numpy arrays.

Targets (issue #3, SQLite on a 2-core machine): upsert >= 200,000 rows/s, read-back <= 0.5 s.
PostgreSQL is measured too when a server URL is given (--postgres or TEST_DATABASE_URL).

    python benchmarks/bench_repository.py [--rows 525600] [--runs 3] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.repository import Database  # noqa: E402

T0 = 1_704_067_200_000


def year_of_candles(rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, rows)))
    return {
        "open_time": T0 + np.arange(rows, dtype=np.int64) * 60_000,
        "open": np.roll(close, 1),
        "high": close * 1.001,
        "low": close * 0.999,
        "close": close,
        "volume": rng.uniform(1, 500, rows),
        "quote_volume": rng.uniform(1e4, 1e7, rows),
        "trades": rng.integers(10, 5000, rows),
        "taker_buy_base": rng.uniform(0, 250, rows),
        "taker_buy_quote": rng.uniform(0, 5e6, rows),
    }


def measure(
    db: Database, candles: dict[str, np.ndarray], symbol: str
) -> tuple[float, float, float]:
    rows = len(candles["open_time"])
    start = time.perf_counter()
    written = db.candles.upsert(symbol, "1m", candles)
    upsert_s = time.perf_counter() - start
    assert written == rows, (written, rows)
    start = time.perf_counter()
    assert db.candles.upsert(symbol, "1m", candles) == 0
    again_s = time.perf_counter() - start
    reads = []
    for _ in range(3):
        start = time.perf_counter()
        arrays = db.candles.read_arrays(symbol, "1m")
        reads.append(time.perf_counter() - start)
    assert np.array_equal(arrays.close, candles["close"])
    return rows / upsert_s, rows / again_s, min(reads)


def report(name: str, results: list[tuple[float, float, float]]) -> None:
    upsert, again, read = (statistics.median(col) for col in zip(*results, strict=True))
    print(
        f"{name:<11} upsert {upsert:>10,.0f} rows/s   re-upsert (no change) {again:>10,.0f} "
        f"rows/s   read-back {read:.3f} s  (median of {len(results)} runs)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=525_600)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL", ""))
    args = parser.parse_args()
    candles = year_of_candles(args.rows)
    print(f"{args.rows:,} 1m candles, 10 data columns each")
    results = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            db = Database(Path(folder) / f"bench{run}.db")
            results.append(measure(db, candles, "BTCUSDT"))
            db.close()
    report("SQLite", results)
    if args.postgres:
        db = Database(args.postgres)
        results = []
        for _ in range(args.runs):
            results.append(measure(db, candles, f"B{uuid.uuid4().hex[:8]}"))
        report("PostgreSQL", results)
        db.close()
    else:
        print("PostgreSQL  skipped (pass --postgres URL or set TEST_DATABASE_URL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
