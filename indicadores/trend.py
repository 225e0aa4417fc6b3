"""Moving averages and trend indicators: sma, ema, wma, macd, ichimoku."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from indicadores.core import as_series, check_period, nan_like, recursive_mean, rolling, window_sum


class Macd(NamedTuple):
    macd: np.ndarray
    signal: np.ndarray
    hist: np.ndarray


class Ichimoku(NamedTuple):
    tenkan: np.ndarray
    kijun: np.ndarray
    senkou_a: np.ndarray
    senkou_b: np.ndarray
    chikou: np.ndarray


def sma(x: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average; NaN for the first period - 1 values (TA-Lib SMA)."""
    (x,) = as_series(x)
    n = check_period(period)
    sums = window_sum(x, n)
    sums /= n
    return sums


def _ema_from(x: np.ndarray, n: int, first: int) -> np.ndarray:
    """EMA seeded with the SMA of x[first : first + n] at index first + n - 1 (TA-Lib's seed)."""
    seed_at = first + n - 1
    if seed_at >= len(x):
        return nan_like(x)
    return recursive_mean(x, 2.0 / (n + 1), seed_at, float(np.mean(x[first : seed_at + 1])))


def ema(x: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average, k = 2 / (period + 1), seeded with the SMA of the first
    `period` values as TA-Lib does; NaN for the first period - 1 values."""
    (x,) = as_series(x)
    return _ema_from(x, check_period(period), 0)


def wma(x: np.ndarray, period: int) -> np.ndarray:
    """Linearly weighted moving average (weights 1..period, newest heaviest), TA-Lib WMA."""
    (x,) = as_series(x)
    n = check_period(period)
    out = nan_like(x)
    if n <= len(x):
        weights = np.arange(n, 0, -1, dtype=np.float64)  # convolve flips: newest gets n
        out[n - 1 :] = np.convolve(x, weights, mode="valid") / (n * (n + 1) / 2)
    return out


def macd(x: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9) -> Macd:
    """MACD as TA-Lib computes it: both EMAs start at index slow - 1 (the fast one seeded with
    the SMA of the `fast` values ending there), the signal is an EMA of the MACD line, and all
    three outputs are NaN before index slow + signal - 2 (TA-Lib's lookback)."""
    (x,) = as_series(x)
    fast = check_period(fast, "fast")
    slow = check_period(slow, "slow")
    signal = check_period(signal, "signal")
    if fast >= slow:
        raise ValueError(f"fast ({fast}) must be smaller than slow ({slow})")
    line = _ema_from(x, fast, slow - fast) - _ema_from(x, slow, 0)
    sig = nan_like(x)
    if slow - 1 < len(x):
        sig[slow - 1 :] = _ema_from(line[slow - 1 :], signal, 0)
    line[: slow + signal - 2] = np.nan
    return Macd(line, sig, line - sig)


def _midpoint(high: np.ndarray, low: np.ndarray, n: int) -> np.ndarray:
    return (rolling(high, n, "max") + rolling(low, n, "min")) / 2


def _shift(x: np.ndarray, by: int) -> np.ndarray:
    """Values moved `by` places later (by > 0) or earlier (by < 0), NaN where nothing moved in."""
    out = nan_like(x)
    if by >= 0:
        out[by:] = x[: len(x) - by] if by < len(x) else out[by:]
    else:
        out[:by] = x[-by:]
    return out


def ichimoku(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    tenkan: int = 9,
    kijun: int = 26,
    senkou: int = 52,
) -> Ichimoku:
    """Ichimoku Kinko Hyo, every line aligned with the bar it is drawn at.

    tenkan/kijun: midpoints of the last 9/26 bars. senkou_a = (tenkan + kijun) / 2 and
    senkou_b = the 52-bar midpoint, both displaced `kijun` bars forward, so their value at bar i
    was known at bar i - kijun (no look-ahead). chikou is the close displaced `kijun` bars back:
    chikou[i] = close[i + kijun] — it shows the future by design (NaN for the last `kijun` bars)
    and must never feed a decision; compare close[i] with close[i - kijun] instead.
    """
    high, low, close = as_series(high, low, close)
    tenkan = check_period(tenkan, "tenkan")
    kijun = check_period(kijun, "kijun")
    senkou = check_period(senkou, "senkou")
    conversion = _midpoint(high, low, tenkan)
    base = _midpoint(high, low, kijun)
    return Ichimoku(
        tenkan=conversion,
        kijun=base,
        senkou_a=_shift((conversion + base) / 2, kijun),
        senkou_b=_shift(_midpoint(high, low, senkou), kijun),
        chikou=_shift(close, -kijun),
    )
