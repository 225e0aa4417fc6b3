"""Oscillators: rsi (Wilder) and estocastico (TA-Lib STOCH)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from indicadores.core import as_series, check_period, nan_like, recursive_mean, rolling
from indicadores.trend import sma


class Estocastico(NamedTuple):
    k: np.ndarray
    d: np.ndarray


def rsi(x: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's RSI as TA-Lib: averages seeded with the plain mean of the first `period` gains and
    losses, then smoothed with alpha = 1 / period; NaN for the first `period` values; 0 when a
    window has neither gains nor losses (TA-Lib's convention)."""
    (x,) = as_series(x)
    n = check_period(period)
    out = nan_like(x)
    if n >= len(x):
        return out
    change = np.diff(x)
    gains, losses = np.maximum(change, 0.0), np.maximum(-change, 0.0)
    avg_gain = recursive_mean(gains, 1.0 / n, n - 1, float(gains[:n].mean()))
    avg_loss = recursive_mean(losses, 1.0 / n, n - 1, float(losses[:n].mean()))
    total = avg_gain + avg_loss
    value = np.divide(100.0 * avg_gain, total, out=np.zeros_like(total), where=total != 0)
    out[1:] = np.where(np.isnan(total), np.nan, value)
    return out


def estocastico(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    k_period: int = 5,
    k_smooth: int = 3,
    d_period: int = 3,
) -> Estocastico:
    """Slow stochastic as TA-Lib STOCH with SMA smoothing: %K = SMA(fast %K, k_smooth),
    %D = SMA(%K, d_period); fast %K = 100 (close - lowest low) / (highest high - lowest low),
    0 when the range is empty. Both lines are NaN before TA-Lib's lookback
    (k_period + k_smooth + d_period - 3)."""
    high, low, close = as_series(high, low, close)
    k_period = check_period(k_period, "k_period")
    k_smooth = check_period(k_smooth, "k_smooth")
    d_period = check_period(d_period, "d_period")
    highest, lowest = rolling(high, k_period, "max"), rolling(low, k_period, "min")
    span = highest - lowest
    fast = np.divide(100.0 * (close - lowest), span, out=np.zeros_like(span), where=span != 0)
    fast[np.isnan(span)] = np.nan
    k = nan_like(close)
    d = nan_like(close)
    start = k_period - 1
    if start < len(close):
        k[start:] = sma(fast[start:], k_smooth)
        smooth_start = start + k_smooth - 1
        if smooth_start < len(close):
            d[smooth_start:] = sma(k[smooth_start:], d_period)
    lookback = k_period + k_smooth + d_period - 3
    k[:lookback] = np.nan
    d[:lookback] = np.nan
    return Estocastico(k, d)
