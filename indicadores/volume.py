"""Volume indicators: session vwap and obv."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from indicadores.cache import memoized
from indicadores.core import Series, as_series, first_valid, nan_like
from indicadores.windows import segment_cumsum

DAY_MS = 86_400_000


def _utc_days(open_time: ArrayLike) -> NDArray[np.int64]:
    """UTC day number of each open time (integer epoch milliseconds or datetime64)."""
    times = np.asarray(open_time)
    if times.ndim != 1:
        raise ValueError(f"open_time must be a 1-D array, got shape {times.shape}")
    if times.dtype.kind == "M":
        if np.isnat(times).any():
            raise ValueError("open_time holds NaT")
        millis = times.astype("datetime64[ms]").view(np.int64)
    elif times.dtype.kind in "iu" or (
        times.dtype.kind == "f" and np.isfinite(times).all() and (times == np.round(times)).all()
    ):
        millis = times.astype(np.int64)
    else:
        raise ValueError("open_time must be integer epoch milliseconds or datetime64")
    if (np.diff(millis) < 0).any():
        raise ValueError("open_time must not decrease")
    return millis // DAY_MS


@memoized
def vwap(
    open_time: ArrayLike, high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike
) -> Series:
    """Volume-weighted average of the typical price (high + low + close) / 3 since 00:00 UTC of
    each bar's day: the session restarts with the first bar whose open_time is on a new UTC day.

    `open_time` is epoch milliseconds (or datetime64) and must not decrease. Float64; NaN while
    the session has traded no volume yet, and from a NaN in any input to the end of its
    session. Raises ValueError for inputs of different lengths, bad times or non-numbers.
    """
    days = _utc_days(open_time)
    high_s, low_s, close_s, volume_s = as_series(high, low, close, volume)
    if len(days) != len(close_s):
        raise ValueError(f"input arrays differ in length: open_time {len(days)}, {len(close_s)}")
    if not len(days):
        return nan_like(close_s)
    starts = np.empty(len(days), dtype=bool)
    starts[0] = True
    np.not_equal(days[1:], days[:-1], out=starts[1:])
    weighted = (high_s + low_s + close_s) / 3 * volume_s
    traded = volume_s
    missing = np.isnan(weighted) if np.isnan(np.add.reduce(weighted)) else None
    if missing is not None:
        # Zeros keep the running sums finite; the mask below blanks the rest of the session.
        weighted = np.where(missing, 0.0, weighted)
        traded = np.where(missing, 0.0, volume_s)
    total = segment_cumsum(traded, starts)
    out = np.divide(segment_cumsum(weighted, starts), total, out=nan_like(close_s), where=total > 0)
    if missing is not None:
        out[segment_cumsum(missing.astype(np.float64), starts) > 0] = np.nan
    return out


@memoized
def obv(close: ArrayLike, volume: ArrayLike) -> Series:
    """On-balance volume exactly as TA-Lib OBV: the first volume, then plus the volume of each
    bar that closes higher and minus that of each that closes lower.

    Float64; leading NaNs are skipped (it starts at the first bar where both inputs are numbers)
    and a NaN after that makes every later value NaN. Raises ValueError for bad inputs.
    """
    close_s, volume_s = as_series(close, volume)
    out = nan_like(close_s)
    start = first_valid(close_s, volume_s)
    if start >= len(close_s):
        return out
    steps = np.empty(len(close_s) - start)
    steps[0] = volume_s[start]
    np.multiply(np.sign(np.diff(close_s[start:])), volume_s[start + 1 :], out=steps[1:])
    # One sequential sum in TA-Lib's order, so the totals agree to the last bit.
    np.cumsum(steps, out=out[start:])
    return out
