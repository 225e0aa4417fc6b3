"""Oscillators: rsi (Wilder) and estocastico (TA-Lib STOCH)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from indicadores.cache import memoized
from indicadores.core import Series, as_series, check_period, first_valid, nan_like
from indicadores.recursion import smooth
from indicadores.windows import rolling_extremes, window_mean


class Estocastico(NamedTuple):
    k: Series
    d: Series


@memoized
def rsi(x: ArrayLike, period: int = 14) -> Series:
    """Wilder's RSI exactly as TA-Lib RSI: the average gain and loss start as the plain means of
    the first `period` changes, then are smoothed with alpha = 1 / period;
    rsi = 100 * gain / (gain + loss), and 0 when both are 0 (TA-Lib's convention).

    Float64, NaN for the first `period` values. Leading NaNs are skipped; a NaN after that makes
    every later value NaN. Raises ValueError for a bad period or input.
    """
    (series,) = as_series(x)
    n = check_period(period)
    out = nan_like(series)
    start = first_valid(series)
    if start + n >= len(series):
        return out
    change = np.diff(series[start:])
    gains, losses = np.maximum(change, 0.0), np.maximum(-change, 0.0)
    avg_gain = smooth(gains, 1.0 / n, n - 1, float(gains[:n].mean()))
    avg_loss = smooth(losses, 1.0 / n, n - 1, float(losses[:n].mean()))
    total = avg_gain + avg_loss
    # total != 0 also holds for NaN, so a missing average stays NaN rather than becoming 0.
    np.divide(100.0 * avg_gain, total, out=out[start + 1 :], where=total != 0)
    out[start + 1 :][total == 0] = 0.0
    return out


@memoized
def estocastico(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    k_period: int = 5,
    k_smooth: int = 3,
    d_period: int = 3,
) -> Estocastico:
    """Slow stochastic exactly as TA-Lib STOCH with SMA smoothing (slowk_matype = slowd_matype
    = 0): fast %K = 100 * (close - lowest low) / (highest high - lowest low) over `k_period`
    bars (0 when that range is empty), k = SMA(fast %K, k_smooth), d = SMA(k, d_period).

    As TA-Lib, both lines are NaN for the first k_period + k_smooth + d_period - 3 bars (k is
    hidden until d exists, counted from the first bar where every input is a number); later, a
    NaN gives NaN in every window that holds it. Raises ValueError for bad periods or inputs.
    """
    high_s, low_s, close_s = as_series(high, low, close)
    k_period = check_period(k_period, "k_period")
    k_smooth = check_period(k_smooth, "k_smooth")
    d_period = check_period(d_period, "d_period")
    (highest,) = rolling_extremes(high_s, [k_period], np.maximum)
    (lowest,) = rolling_extremes(low_s, [k_period], np.minimum)
    span = highest - lowest
    fast = np.divide(100.0 * (close_s - lowest), span, out=np.zeros_like(span), where=span != 0)
    fast[np.isnan(span) | np.isnan(close_s)] = np.nan
    k = window_mean(fast, k_smooth)
    d = window_mean(k, d_period)
    hidden = first_valid(high_s, low_s, close_s) + k_period + k_smooth + d_period - 3
    k[:hidden] = np.nan
    d[:hidden] = np.nan
    return Estocastico(k, d)
