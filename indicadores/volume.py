"""Volume indicators: session vwap and obv."""

from __future__ import annotations

import numpy as np

from indicadores.core import as_series

DAY_MS = 86_400_000


def vwap(
    open_time: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray
) -> np.ndarray:
    """Volume-weighted average of the typical price (h + l + c) / 3 since the start of each UTC
    day (00:00); NaN while the day has traded no volume yet."""
    times = np.asarray(open_time, dtype=np.int64)
    high, low, close, volume = as_series(high, low, close, volume)
    if len(times) != len(close):
        raise ValueError("open_time and prices differ in length")
    weighted = (high + low + close) / 3 * volume
    session = times // DAY_MS
    starts = np.flatnonzero(np.diff(session, prepend=session[:1] - 1) != 0)
    lengths = np.diff(np.append(starts, len(times)))
    cum_weighted = np.cumsum(weighted)
    cum_volume = np.cumsum(volume)
    # Subtract what earlier sessions accumulated (the cumulative value before each session).
    base_weighted = np.repeat(cum_weighted[starts] - weighted[starts], lengths)
    base_volume = np.repeat(cum_volume[starts] - volume[starts], lengths)
    traded = cum_volume - base_volume
    return np.divide(
        cum_weighted - base_weighted, traded, out=np.full(len(close), np.nan), where=traded > 0
    )


def obv(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """On-balance volume as TA-Lib: starts at the first volume, then adds the volume on up closes
    and subtracts it on down closes."""
    close, volume = as_series(close, volume)
    if not len(close):
        return close.copy()
    direction = np.sign(np.diff(close))
    return volume[0] + np.concatenate(([0.0], np.cumsum(direction * volume[1:])))
