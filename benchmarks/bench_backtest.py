"""Backtest speed: sma_cruce 10/30 with reversals and 0.04 % fees on one year of 1m candles.

Prints seconds for indicators + simulation (+ metrics) through `ejecutar_backtest`, the ratio
against a minimal numpy reference of the same strategy written here (checked to produce the same
trades), growth up to 5M candles, and the first run in a fresh process, imports included.
Targets (issue #6): <= 2x the reference, linear growth, fresh first run < 1 s.

    python benchmarks/bench_backtest.py [--sizes 525600,1051200,2102400,5256000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backtesting.engine import Costs, simulate  # noqa: E402
from backtesting.simulador import ejecutar_backtest  # noqa: E402
from benchmarks.synthetic import synthetic  # noqa: E402
from estrategias.factory import crear_estrategia  # noqa: E402

FEE = 0.0004
YEAR = 525_600


def reference(open_: np.ndarray, close: np.ndarray, fast: int, slow: int, capital: float):
    """The same strategy in the fewest numpy lines: SMAs, flat until the first cross, side
    changes, next-open fills, fees."""
    csum = np.concatenate(([0.0], np.cumsum(close)))
    f = np.full(len(close), np.nan)
    s = np.full(len(close), np.nan)
    f[fast - 1 :] = (csum[fast:] - csum[:-fast]) / fast
    s[slow - 1 :] = (csum[slow:] - csum[:-slow]) / slow
    side = np.nan_to_num(np.sign(f - s))
    first = np.flatnonzero((side[1:] != side[:-1]) & (side[:-1] != 0))[:1] + 1
    side[: first[0] if len(first) else len(side)] = 0.0
    held = np.concatenate(([0.0], side[:-1]))
    starts = np.flatnonzero(np.diff(held, prepend=0.0) != 0)
    ends = np.append(starts[1:], len(close))
    sides = held[starts]
    keep = sides != 0
    starts, ends, sides = starts[keep], ends[keep], sides[keep]
    entry = open_[starts]
    exit_ = np.where(ends < len(close), open_[np.minimum(ends, len(close) - 1)], close[-1])
    returns = sides * (exit_ / entry - 1) - FEE - FEE * exit_ / entry
    return starts, exit_, returns, capital * np.prod(1 + returns)


def best_of(runs: int, function, *args):  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = function(*args)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def ours(velas: pd.DataFrame):  # type: ignore[no-untyped-def]
    strategy = crear_estrategia("sma_cruce", rapida=10, lenta=30)
    return ejecutar_backtest(velas, strategy, capital=10_000, comision=FEE)


def engine_only(velas: pd.DataFrame):  # type: ignore[no-untyped-def]
    """Indicators + simulation: what the reference does, without metrics or the trade table."""
    strategy = crear_estrategia("sma_cruce", rapida=10, lenta=30)
    positions = strategy.target_positions(velas)
    columns = [velas[name].to_numpy() for name in ("open", "high", "low", "close")]
    return simulate(*columns, positions, 10_000, Costs(taker_fee=FEE, maker_fee=FEE))


FRESH = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import pandas as pd
from backtesting.simulador import ejecutar_backtest
from estrategias.factory import crear_estrategia
velas = pd.DataFrame(dict(np.load(sys.argv[2])))
result = ejecutar_backtest(velas, crear_estrategia("sma_cruce", rapida=10, lenta=30), comision=4e-4)
print(result.metricas["trades"])
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=f"{YEAR},{2 * YEAR},{4 * YEAR},{10 * YEAR}")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    velas = synthetic(YEAR)
    o, c = velas["open"].to_numpy(), velas["close"].to_numpy()
    ref_best, ref_median, (starts, exits, returns, final) = best_of(
        args.runs, reference, o, c, 10, 30, 10_000.0
    )
    engine_best, engine_median, _ = best_of(args.runs, engine_only, velas)
    our_best, our_median, result = best_of(args.runs, ours, velas)
    trades = result.trades
    same = (
        len(trades) == len(starts)
        and np.array_equal(trades["entry_time"].to_numpy(), velas["open_time"].to_numpy()[starts])
        and np.allclose(trades["exit_price"].to_numpy(), exits, rtol=1e-12)
        and np.allclose(trades["return"].to_numpy(), returns, rtol=1e-9, atol=1e-15)
        and np.isclose(result.metricas["final_equity"], final, rtol=1e-9)
    )
    print(f"1 year of 1m candles ({YEAR:,}), sma_cruce 10/30 with reversals, fees {FEE:.2%}")
    print(
        f"  reference (numpy, in this file)   best {ref_best * 1e3:7.1f} ms  "
        f"median {ref_median * 1e3:7.1f} ms  trades {len(starts):,}"
    )
    print(
        f"  indicators + simulation           best {engine_best * 1e3:7.1f} ms  "
        f"median {engine_median * 1e3:7.1f} ms  ratio {engine_best / ref_best:.2f}x"
    )
    print(
        f"  ejecutar_backtest (+ metrics)     best {our_best * 1e3:7.1f} ms  "
        f"median {our_median * 1e3:7.1f} ms  ratio {our_best / ref_best:.2f}x"
    )
    print(f"  same trades as the reference: {same} ({len(trades):,} trades)")
    print("growth (best of 3):")
    for size in (int(s) for s in args.sizes.split(",")):
        best, _, _ = best_of(3, ours, synthetic(size))
        print(f"  {size:>10,} candles  {best * 1e3:8.1f} ms   {best / size * 1e9:6.1f} ns/candle")
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "velas.npz"
        np.savez(data, **{name: velas[name].to_numpy() for name in velas.columns})
        start = time.perf_counter()  # interpreter start-up and every import included
        fresh = subprocess.run(
            [sys.executable, "-c", FRESH, str(ROOT), str(data)],
            capture_output=True,
            text=True,
            check=True,
        )
        seconds = time.perf_counter() - start
    print(
        f"fresh process (Python start-up, imports, loading the candles, first run): "
        f"{seconds:.3f} s ({fresh.stdout.strip()} trades)"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
