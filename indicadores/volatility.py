"""Volatility: bollinger bands and Wilder's atr."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from indicadores.core import as_series, check_period, nan_like, recursive_mean, rolling
from indicadores.trend import sma


class Bollinger(NamedTuple):
    upper: np.ndarray
    middle: np.ndarray
    lower: np.ndarray


def bollinger(x: np.ndarray, period: int = 20, k: float = 2.0) -> Bollinger:
    """SMA ± k population standard deviations of the last `period` values (TA-Lib BBANDS)."""
    (x,) = as_series(x)
    n = check_period(period)
    middle = sma(x, n)
    width = k * np.sqrt(rolling(x, n, "var"))
    return Bollinger(middle + width, middle, middle - width)


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """max(high - low, |high - previous close|, |low - previous close|); NaN for the first bar."""
    out = nan_like(close)
    previous = close[:-1]
    out[1:] = np.maximum(
        high[1:] - low[1:], np.maximum(np.abs(high[1:] - previous), np.abs(low[1:] - previous))
    )
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's average true range as TA-Lib: the mean of the first `period` true ranges at index
    `period`, then smoothing with alpha = 1 / period; NaN for the first `period` values."""
    high, low, close = as_series(high, low, close)
    n = check_period(period)
    tr = true_range(high, low, close)
    if n >= len(close):
        return nan_like(close)
    out = nan_like(close)
    out[1:] = recursive_mean(tr[1:], 1.0 / n, n - 1, float(tr[1 : n + 1].mean()))
    return out
