"""Volatility: bollinger bands, true range and Wilder's atr."""

from __future__ import annotations

import math
from numbers import Real
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from indicadores.cache import memoized
from indicadores.core import Series, as_series, check_period, first_valid, nan_like
from indicadores.recursion import smooth
from indicadores.windows import window_mean, window_std


class Bollinger(NamedTuple):
    upper: Series
    middle: Series
    lower: Series


@memoized
def bollinger(x: ArrayLike, period: int = 20, k: float = 2.0) -> Bollinger:
    """Bollinger bands as TA-Lib BBANDS (SMA middle, matype 0): middle ± k population standard
    deviations of the last `period` values.

    Float64, NaN for the first period - 1 values and for every window holding a NaN. The
    deviation comes from sums of deviations from a local level, so it keeps its digits on
    low-volatility series where TA-Lib's sum of squares of raw prices loses some.
    Raises ValueError for a bad period, a negative or non-finite k, or a bad input.
    """
    (series,) = as_series(x)
    n = check_period(period)
    if isinstance(k, bool) or not isinstance(k, Real) or not 0 <= k < math.inf:
        raise ValueError(f"k must be a finite number >= 0, got {k!r}")
    middle = window_mean(series, n)
    deviation = window_std(series, n)
    deviation *= k
    return Bollinger(middle + deviation, middle, middle - deviation)


@memoized
def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> Series:
    """max(high - low, |high - previous close|, |low - previous close|) (TA-Lib TRANGE).

    Float64, NaN for the first bar and wherever an input it uses is NaN.
    """
    high_s, low_s, close_s = as_series(high, low, close)
    out = nan_like(close_s)
    previous = close_s[:-1]
    out[1:] = np.maximum(
        high_s[1:] - low_s[1:],
        np.maximum(np.abs(high_s[1:] - previous), np.abs(low_s[1:] - previous)),
    )
    return out


@memoized
def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> Series:
    """Wilder's average true range exactly as TA-Lib ATR: the plain mean of the first `period`
    true ranges, then smoothing with alpha = 1 / period.

    Float64, NaN for the first `period` values (counted from the first bar where every input
    is a number); a NaN after that makes every later value NaN. Raises ValueError for a bad
    period or inputs.
    """
    high_s, low_s, close_s = as_series(high, low, close)
    n = check_period(period)
    start = first_valid(high_s, low_s, close_s)
    if start + n >= len(close_s):
        return nan_like(close_s)
    ranges = true_range(high_s[start:], low_s[start:], close_s[start:])[1:]
    out = nan_like(close_s)
    out[start + 1 :] = smooth(ranges, 1.0 / n, n - 1, float(ranges[:n].mean()))
    return out
