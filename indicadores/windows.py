"""Window reductions: means, deviations, weighted means, segment sums in O(n); extremes in
O(n log period)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from indicadores.cache import memoized
from indicadores.core import Series, fill_missing, first_valid, nan_like

# Row lengths are fixed by the window alone, never by the input length, so a series and its
# prefixes go through identical arithmetic and f(x)[:k] == f(x[:k]) holds exactly.
# Plain sums: prefix sums of raw values restarting every max(_BLOCK, n) values, so rounding
# stays below ~eps * _BLOCK / n of the level, in the fewest passes.
_BLOCK = 4096
# Sums of squares and weighted sums: rows of max(_MIN_ROW, _ROW_WINDOWS * n) deviations from
# the row's first value. Short rows keep the deviations, and so the rounding, at the scale of
# the moves within a few windows rather than of the price level.
_MIN_ROW = 32
_ROW_WINDOWS = 4
# Running sums that restart at segment boundaries (vwap sessions).
_SEGMENT_ROW = 512


def _rows(x: Series, n: int, block: int) -> np.ndarray:
    """Overlapping read-only rows, row b = x[b*block - n + 1 : (b+1)*block] (padded at both
    ends), so every window of n values ending in block b lies inside row b."""
    count = -(-len(x) // block)
    padded = np.empty(count * block + n - 1)
    padded[: n - 1] = x[0]
    padded[n - 1 : n - 1 + len(x)] = x
    padded[n - 1 + len(x) :] = x[-1]
    return sliding_window_view(padded, block + n - 1)[::block]


def _centred_rows(x: Series, n: int) -> tuple[Series, Series]:
    """Short rows (a writable copy) minus their level, the row's first own value x[b*block]."""
    rows = _rows(x, n, max(_MIN_ROW, _ROW_WINDOWS * n))
    level = rows[:, n - 1].copy()
    return rows - level[:, None], level


def _totals(sums: Series, n: int) -> Series:
    """Window sums from the prefix sums along each row: one per own position of the row."""
    out = np.empty((sums.shape[0], sums.shape[1] - n + 1))
    out[:, 0] = sums[:, n - 1]
    np.subtract(sums[:, n:], sums[:, : sums.shape[1] - n], out=out[:, 1:])
    return out


Kernel = Callable[[Series, int], Series]


def _windowed(x: Series, n: int, kernel: Kernel) -> Series:
    """Run `kernel` (a flat result, possibly padded) on x past its leading NaNs; NaN for the
    warm-up and for every window that holds a NaN.

    Leading NaNs (another indicator's warm-up) are cut off rather than filled, so chaining
    indicators costs no extra pass; a NaN further on is filled for the running sums and its
    windows are blanked afterwards, so it cannot spread past them.
    """
    start, filled, missing = _prepared(x)
    if start + n > len(x):
        return nan_like(x)
    line = kernel(filled, n)[: len(filled)]
    line[: n - 1] = np.nan
    if missing is not None:
        counts = np.cumsum(missing, dtype=np.int64)
        touched = counts[n - 1 :].copy()
        touched[1:] -= counts[: len(filled) - n]
        line[n - 1 :][touched > 0] = np.nan
    if start:
        line = np.concatenate((np.full(start, np.nan), line))
    return line


@memoized
def _prepared(x: Series) -> tuple[int, Series, np.ndarray | None]:
    """Where x's numbers start, and x from there with its NaNs filled and their mask
    (fill_missing): what every window of x is computed from, once per series in a sweep."""
    start = first_valid(x)
    filled, missing = fill_missing(x[start:])
    return start, filled, missing


@memoized
def _block_sums(x: Series, block: int) -> Series:
    """Prefix sums of x restarting every `block` values, padded to whole blocks: shared by
    every window up to `block` long, so a sweep's averages of one series cost one pass each."""
    length = len(x)
    count = -(-length // block)
    whole = length - length % block
    sums = np.empty(count * block)
    np.cumsum(x[:whole].reshape(-1, block), axis=1, out=sums[:whole].reshape(-1, block))
    np.cumsum(x[whole:], out=sums[whole:length])
    sums[length:] = 0.0
    return sums


def _mean(x: Series, n: int) -> Series:
    if n == 1:
        return x.copy()
    length = len(x)
    block = max(_BLOCK, n)
    count = -(-length // block)
    sums = _block_sums(x, block)
    out = np.empty(count * block)
    out[: n - 1] = np.nan
    out[length:] = 0.0
    out[n - 1] = sums[n - 1]
    np.subtract(sums[n:length], sums[: length - n], out=out[n:length])
    # The n windows after each block start subtracted a prefix of the previous block: add its
    # total back (cells past `length` are scratch).
    out.reshape(count, block)[1:, :n] += sums[block - 1 : (count - 1) * block : block, None]
    means = out[:length]
    means /= n
    return means


def _std(x: Series, n: int) -> Series:
    rows, _ = _centred_rows(x, n)
    # Moves (changes between neighbours) seen so far along each row, to spot flat windows.
    moves = np.zeros_like(rows, dtype=np.int32)
    np.cumsum(rows[:, 1:] != rows[:, :-1], axis=1, out=moves[:, 1:])
    variance = _totals(np.cumsum(rows * rows, axis=1), n)
    means = _totals(np.cumsum(rows, axis=1, out=rows), n)
    means /= n
    variance /= n
    variance -= means * means
    # Rounding leaves a residue of about eps * (deviation from the row level)**2 where the
    # true variance is 0, and the square root would magnify it to ~1e-8 of the level: a window
    # without a single move is flat, exactly, and a negative residue is flat as well.
    variance[moves[:, n - 1 :] == moves[:, : moves.shape[1] - n + 1]] = 0.0
    np.maximum(variance, 0.0, out=variance)
    return np.sqrt(variance, out=variance).reshape(-1)


def _weighted_mean(x: Series, n: int) -> Series:
    rows, level = _centred_rows(x, n)
    positions = np.arange(rows.shape[1], dtype=np.float64)
    weighted = _totals(np.cumsum(rows * positions, axis=1), n)
    plain = _totals(np.cumsum(rows, axis=1, out=rows), n)
    # A window starting at row position q weighs position p by p - q + 1.
    plain *= np.arange(-1.0, plain.shape[1] - 1.0)
    weighted -= plain
    weighted /= n * (n + 1) / 2
    weighted += level[:, None]
    return weighted.reshape(-1)


def window_mean(x: Series, n: int) -> Series:
    """Mean of each window of n values ending at i (NaN as _windowed)."""
    return _windowed(x, n, _mean)


def window_std(x: Series, n: int) -> Series:
    """Population standard deviation of each window of n values (NaN as _windowed)."""
    return _windowed(x, n, _std)


def window_weighted_mean(x: Series, n: int) -> Series:
    """Mean of each window of n values weighted 1, 2, ..., n from oldest to newest."""
    return _windowed(x, n, _weighted_mean)


def rolling_extremes(x: Series, periods: Sequence[int], op: np.ufunc) -> list[Series]:
    """op (np.maximum or np.minimum) over each window of each period, sharing one sparse table.

    Level w holds op over the w values ending at i (w = 1, 2, 4, ...); a window of n is op of
    two overlapping level-w windows with w the largest power of two <= n. Exact, and a NaN
    reaches precisely the windows that contain it.
    """
    length = len(x)
    levels = {1: x}
    width = 1
    while 2 * width <= min(max(periods), length):
        previous = levels[width]
        current = np.empty(length)
        current[:width] = previous[:width]
        op(previous[width:], previous[:-width], out=current[width:])
        width *= 2
        levels[width] = current
    out = []
    for n in periods:
        values = nan_like(x)
        if n <= length:
            w = 1 << (n.bit_length() - 1)
            level = levels[w]
            op(level[n - 1 :], level[w - 1 : length - n + w], out=values[n - 1 :])
        out.append(values)
    return out


def segment_cumsum(x: Series, starts: np.ndarray) -> Series:
    """Running sum of x that restarts wherever `starts` (a bool mask, True at 0) is True.

    Prefix sums also restart every _SEGMENT_ROW values, so their rounding stays at the scale of
    a row rather than of the whole history; each piece between restarts then gets one offset:
    minus the row's sum before the piece, or, where a segment runs on into a new row, its total
    so far.
    """
    length = len(x)
    count = -(-length // _SEGMENT_ROW)
    padded = np.zeros(count * _SEGMENT_ROW)
    padded[:length] = x
    prefix = np.cumsum(padded.reshape(count, _SEGMENT_ROW), axis=1).reshape(-1)[:length]
    cuts = starts.copy()
    cuts[::_SEGMENT_ROW] = True
    pieces = np.flatnonzero(cuts)
    at_row = pieces % _SEGMENT_ROW == 0
    offsets = np.where(at_row, 0.0, -prefix[np.maximum(pieces - 1, 0)])
    for piece in np.flatnonzero(at_row & ~starts[pieces]).tolist():
        offsets[piece] = prefix[pieces[piece] - 1] + offsets[piece - 1]
    prefix += np.repeat(offsets, np.diff(pieces, append=length))
    return prefix
