"""Indicator speed: milliseconds per call on one year of 1m candles, and the ratio to TA-Lib.

Each indicator runs on 525,600 synthetic candles; the figure is the median of --runs calls. When
TA-Lib (a dev dependency) is importable, its same function runs on the same arrays in the same
process, and the ratio ours / TA-Lib is printed (ichimoku and vwap have no TA-Lib counterpart).

    python benchmarks/bench_indicators.py [--size 525600] [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import indicadores as ind  # noqa: E402
from benchmarks.synthetic import synthetic  # noqa: E402

try:
    import talib
except ImportError:  # TA-Lib is only in requirements-dev.txt
    talib = None  # type: ignore[assignment]

YEAR = 525_600


def median_ms(runs: int, function: Callable[..., Any], *args: Any) -> float:
    function(*args)  # warm caches and allocator once
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def reference(name: str, *args: Any) -> Callable[[], Any] | None:
    """A call of TA-Lib's function `name` on `args`, or None without TA-Lib."""
    if talib is None:
        return None
    function = getattr(talib, name)
    return lambda: function(*args)


def cases(
    t: Any, h: Any, lo: Any, c: Any, v: Any
) -> list[tuple[str, Callable[[], Any], Callable[[], Any] | None]]:
    """(label, our call, the same TA-Lib call or None)."""
    return [
        ("sma(close, 30)", lambda: ind.sma(c, 30), reference("SMA", c, 30)),
        ("ema(close, 30)", lambda: ind.ema(c, 30), reference("EMA", c, 30)),
        ("ema(close, 200)", lambda: ind.ema(c, 200), reference("EMA", c, 200)),
        ("wma(close, 30)", lambda: ind.wma(c, 30), reference("WMA", c, 30)),
        ("rsi(close, 14)", lambda: ind.rsi(c, 14), reference("RSI", c, 14)),
        ("macd(close, 12, 26, 9)", lambda: ind.macd(c), reference("MACD", c, 12, 26, 9)),
        (
            "bollinger(close, 20, 2)",
            lambda: ind.bollinger(c, 20, 2.0),
            reference("BBANDS", c, 20, 2.0, 2.0, 0),
        ),
        ("atr(h, l, c, 14)", lambda: ind.atr(h, lo, c, 14), reference("ATR", h, lo, c, 14)),
        (
            "estocastico(h, l, c, 14, 3, 3)",
            lambda: ind.estocastico(h, lo, c, 14, 3, 3),
            reference("STOCH", h, lo, c, 14, 3, 0, 3, 0),
        ),
        ("ichimoku(h, l, c)", lambda: ind.ichimoku(h, lo, c), None),
        ("vwap(t, h, l, c, v)", lambda: ind.vwap(t, h, lo, c, v), None),
        ("obv(close, volume)", lambda: ind.obv(c, v), reference("OBV", c, v)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=YEAR)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    velas = synthetic(args.size)
    columns = [velas[name].to_numpy() for name in ("open_time", "high", "low", "close", "volume")]
    reference = f"TA-Lib {talib.__version__}" if talib else "TA-Lib not installed"
    print(f"{args.size:,} 1m candles, median of {args.runs} calls; {reference}")
    print(f"  {'indicator':32} {'ours ms':>9} {'TA-Lib ms':>10} {'ratio':>7}")
    for label, call, talib_call in cases(*columns):
        ours = median_ms(args.runs, call)
        if talib_call:
            theirs = median_ms(args.runs, talib_call)
            print(f"  {label:32} {ours:9.2f} {theirs:10.2f} {ours / theirs:6.1f}x")
        else:
            print(f"  {label:32} {ours:9.2f} {'-':>10} {'-':>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
