"""Moving averages and trend indicators: sma, ema, wma, macd, ichimoku."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from indicadores.cache import memoized
from indicadores.core import Series, as_series, check_period, first_valid, nan_like, shift
from indicadores.recursion import smooth
from indicadores.windows import rolling_extremes, window_mean, window_weighted_mean


class Macd(NamedTuple):
    macd: Series
    signal: Series
    hist: Series


class Ichimoku(NamedTuple):
    tenkan: Series
    kijun: Series
    senkou_a: Series
    senkou_b: Series
    chikou: Series


@memoized
def sma(x: ArrayLike, period: int) -> Series:
    """Simple moving average of the last `period` values (TA-Lib SMA).

    Returns float64, NaN for the first period - 1 values and for every window holding a NaN.
    Raises ValueError for a bad period or an input that is not a 1-D array of numbers.
    """
    (series,) = as_series(x)
    return window_mean(series, check_period(period))


def _ema_from(x: Series, n: int, first: int) -> Series:
    """EMA seeded at index first + n - 1 with the mean of x[first : first + n] (TA-Lib's seed)."""
    seed_at = first + n - 1
    if seed_at >= len(x):
        return nan_like(x)
    return smooth(x, 2.0 / (n + 1), seed_at, float(np.mean(x[first : seed_at + 1])))


@memoized
def ema(x: ArrayLike, period: int) -> Series:
    """Exponential moving average with alpha = 2 / (period + 1), exactly as TA-Lib EMA: seeded
    with the SMA of the first `period` values, so NaN for the first period - 1 values.

    Leading NaNs are skipped (the warm-up counts from the first number, as TA-Lib's Python
    wrapper does); a NaN after that makes every later value NaN. Raises ValueError as sma.
    """
    (series,) = as_series(x)
    return _ema_from(series, check_period(period), first_valid(series))


@memoized
def wma(x: ArrayLike, period: int) -> Series:
    """Linearly weighted moving average, weights 1..period with the newest heaviest (TA-Lib WMA).

    NaN for the first period - 1 values and for every window holding a NaN; raises as sma.
    """
    (series,) = as_series(x)
    return window_weighted_mean(series, check_period(period))


@memoized
def macd(x: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> Macd:
    """MACD exactly as TA-Lib MACD: macd = EMA(fast) - EMA(slow), signal = EMA(signal) of macd,
    hist = macd - signal.

    TA-Lib starts both EMAs at index slow - 1, seeding the fast one with the mean of the `fast`
    values ending there (not at index fast - 1), and reports all three lines from index
    slow + signal - 2 on (NaN before). Leading NaNs are skipped and later NaNs propagate, as
    in ema. Raises ValueError for bad periods or fast >= slow.
    """
    (series,) = as_series(x)
    fast = check_period(fast, "fast")
    slow = check_period(slow, "slow")
    signal = check_period(signal, "signal")
    if fast >= slow:
        raise ValueError(f"fast ({fast}) must be smaller than slow ({slow})")
    start = first_valid(series)
    line = _ema_from(series, fast, start + slow - fast) - _ema_from(series, slow, start)
    line_start = start + slow - 1
    sig = nan_like(series)
    if line_start < len(series):
        sig[line_start:] = _ema_from(line[line_start:], signal, 0)
    line[: line_start + signal - 1] = np.nan
    return Macd(line, sig, line - sig)


@memoized
def ichimoku(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    tenkan: int = 9,
    kijun: int = 26,
    senkou: int = 52,
    displacement: int | None = None,
) -> Ichimoku:
    """Ichimoku Kinko Hyo, every line indexed by the bar it is drawn at (same length as input).

    With D = displacement (default: kijun, i.e. 26):
      tenkan[i]   = (highest high + lowest low) / 2 over the `tenkan` bars ending at i;
      kijun[i]    = the same over `kijun` bars;
      senkou_a[i] = (tenkan[i - D] + kijun[i - D]) / 2      -> first number at kijun - 1 + D;
      senkou_b[i] = 52-bar midpoint at bar i - D            -> first number at senkou - 1 + D;
      chikou[i]   = close[i + D]                            -> NaN for the last D bars.
    The spans at bar i were known at bar i - D, so they are safe to trade on; the cloud
    projected past the last bar is not in the arrays. chikou LOOKS AHEAD by design: its value
    at bar i is a close D bars in the future, so it must never feed a decision or a backtest
    (compare close[i] with close[i - D] instead). TradingView plots the spans D - 1 bars ahead
    and the chikou D - 1 back: pass displacement=25 to match its chart.
    NaN: a window holding a NaN gives NaN. Raises ValueError for bad periods or inputs.
    """
    high_s, low_s, close_s = as_series(high, low, close)
    periods = [check_period(p, name) for p, name in ((tenkan, "tenkan"), (kijun, "kijun"))]
    periods.append(check_period(senkou, "senkou"))
    moved = periods[1] if displacement is None else check_period(displacement, "displacement")
    highs = rolling_extremes(high_s, periods, np.maximum)
    lows = rolling_extremes(low_s, periods, np.minimum)
    conversion, base, span_b = ((h + lo) / 2 for h, lo in zip(highs, lows, strict=True))
    return Ichimoku(
        tenkan=conversion,
        kijun=base,
        senkou_a=shift((conversion + base) / 2, moved),
        senkou_b=shift(span_b, moved),
        chikou=shift(close_s, -moved),
    )
