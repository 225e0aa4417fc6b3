"""Input checks and the shared conventions: float64 series, missing values, periods, shifts."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

Series = NDArray[np.float64]


def _finite(series: np.ndarray) -> Series:
    """A 1-D float64 array with ±inf as NaN (the same object when it has none)."""
    if series.ndim != 1:
        raise ValueError(f"indicators take 1-D arrays, got shape {series.shape}")
    # One cheap reduction tells whether the slower scan for infinities is needed at all.
    if not np.isfinite(np.add.reduce(series)):
        series = np.where(np.isinf(series), np.nan, series)
    return series


def as_series(*arrays: ArrayLike) -> tuple[Series, ...]:
    """Equally long 1-D float64 versions of the inputs, ±inf turned into NaN; ValueError otherwise.

    An input that already is float64 without infinities comes back as the same object, so callers
    must never write into what this returns.
    """
    out = []
    for array in arrays:
        # An equal but distinct dtype object (an unpickled array's, on a Dask worker) would
        # make asarray return a view: a new object to the indicator memo at every call.
        if not (isinstance(array, np.ndarray) and array.dtype == np.float64):
            try:
                array = np.asarray(array, dtype=np.float64)
            except (TypeError, ValueError) as error:
                raise ValueError(f"indicators take arrays of numbers: {error}") from None
        out.append(_finite(array))
    if len({len(s) for s in out}) > 1:
        raise ValueError(f"input arrays differ in length: {[len(s) for s in out]}")
    return tuple(out)


def check_period(period: object, name: str = "period") -> int:
    """`period` as an int >= 1; ValueError otherwise."""
    if isinstance(period, bool) or not isinstance(period, int | np.integer) or period < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {period!r}")
    return int(period)


def nan_like(x: Series) -> Series:
    return np.full(len(x), np.nan)


def first_valid(*arrays: Series) -> int:
    """Index of the first position where every array holds a number (len if there is none)."""
    if not len(arrays[0]):
        return 0
    if not any(np.isnan(a[0]) for a in arrays):
        return 0
    valid = ~np.isnan(arrays[0])
    for array in arrays[1:]:
        valid &= ~np.isnan(array)
    return int(np.argmax(valid)) if valid.any() else len(valid)


def fill_missing(x: Series) -> tuple[Series, NDArray[np.bool_] | None]:
    """x with each NaN replaced by the last number before it (the first number for leading ones),
    and the NaN mask; (x, None) when nothing is missing.

    Windowed sums run on the filled copy (so NaNs cannot spread through running totals) and the
    mask then blanks exactly the windows that held a NaN.
    """
    if not np.isnan(np.add.reduce(x)):
        return x, None
    missing = np.isnan(x)
    if missing.all():
        return np.zeros(len(x)), missing
    positions = np.where(missing, 0, np.arange(len(x)))
    np.maximum.accumulate(positions, out=positions)
    filled = x[positions]
    filled[: np.argmin(missing)] = x[np.argmin(missing)]
    return filled, missing


def shift(x: Series, by: int) -> Series:
    """Values moved `by` places later (by > 0) or earlier (by < 0), NaN where nothing moved in."""
    out = nan_like(x)
    if abs(by) >= len(x):
        return out
    if by >= 0:
        out[by:] = x[: len(x) - by]
    else:
        out[:by] = x[-by:]
    return out
