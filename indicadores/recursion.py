"""The exponential smoothing recursion behind ema, macd, rsi and atr, solved in closed form."""

from __future__ import annotations

import numpy as np

from indicadores.core import Series, nan_like

# Longest stretch solved at once; a row is shorter when its geometric weights would grow past
# e**_MAX_GROWTH_LOG (far from overflow, even multiplied by a price).
_ROW = 4096
_MAX_GROWTH_LOG = 300.0


def smooth(x: Series, alpha: float, start: int, seed: float) -> Series:
    """y[start] = seed, then y[i] = y[i-1] + alpha * (x[i] - y[i-1]); NaN before `start`.

    Within a row of m values the recursion has the closed form
    y[k] = d**(k+1) * y0 + alpha * sum_{j<=k} d**(k-j) * x[j]   (d = 1 - alpha),
    i.e. a cumulative sum of x weighted by d**-j, rescaled by d**k: a few vectorised passes
    instead of a Python loop. Rows chain through their last value. A NaN (or a NaN seed)
    propagates to every later value, as it would through the loop.
    """
    length = len(x)
    if start >= length:
        return nan_like(x)
    rest = x[start + 1 :]
    decay = 1.0 - alpha
    row = int(min(_ROW, max(1.0, _MAX_GROWTH_LOG / -np.log(decay)))) if decay > 0 else 1
    count = -(-len(rest) // row)
    # The rows live in the output's own buffer (its tail past `length` is scratch).
    buffer = np.empty(start + 1 + count * row)
    buffer[:start] = np.nan
    buffer[start] = seed
    if decay <= 0.0:
        buffer[start + 1 :] = rest
        return buffer
    rows = buffer[start + 1 :].reshape(count, row)
    steps = np.arange(row, dtype=np.float64)
    growth = decay**-steps
    whole = len(rest) // row
    np.multiply(rest[: whole * row].reshape(whole, row), growth, out=rows[:whole])
    if whole < count:
        tail = len(rest) - whole * row
        np.multiply(rest[whole * row :], growth[:tail], out=rows[whole, :tail])
        rows[whole, tail:] = 0.0
    np.cumsum(rows, axis=1, out=rows)
    rows *= alpha * decay**steps
    # Each row's own response starts from zero; add the previous value decayed into the row.
    entering = np.empty(count)
    previous = seed
    last_weight = decay**row
    for index, last in enumerate(rows[:, -1].tolist()):
        entering[index] = previous
        previous = last + last_weight * previous
    rows += entering[:, None] * (decay * decay**steps)
    return buffer[:length]
