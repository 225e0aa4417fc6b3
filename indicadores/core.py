"""Numerical building blocks: input checks, drift-free window sums, exact-order EMA recursion."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Prefix sums restart every block so their magnitude (and rounding error) stays bounded.
_BLOCK = 4096
# A block of the EMA recursion may scale its terms by at most this before re-anchoring.
_MAX_GROWTH_LOG = 300.0


def as_series(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Float64 1-D copies-if-needed of equally long inputs; ValueError otherwise."""
    out = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
    for array in out:
        if array.ndim != 1:
            raise ValueError(f"indicators take 1-D arrays, got shape {array.shape}")
    if len({len(a) for a in out}) > 1:
        raise ValueError(f"input arrays differ in length: {[len(a) for a in out]}")
    return out


def check_period(period: int, name: str = "period") -> int:
    """`period` as an int >= 1; ValueError otherwise."""
    if isinstance(period, bool) or not isinstance(period, int | np.integer) or period < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {period!r}")
    return int(period)


def nan_like(x: np.ndarray) -> np.ndarray:
    return np.full(len(x), np.nan)


def window_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum of each window of `n` values ending at i (NaN for i < n - 1), without prefix drift.

    Prefix sums restart every block, so a window is either a difference inside one block or,
    for the first n - 1 positions of a block, that difference plus the previous block's total.
    """
    length = len(x)
    if n > length:
        return nan_like(x)
    block = max(_BLOCK, n)
    count = -(-length // block)
    padded = np.empty(count * block)
    padded[:length] = x
    padded[length:] = 0.0
    prefix = np.cumsum(padded.reshape(count, block), axis=1)
    flat = prefix.ravel()
    sums = np.empty_like(flat)
    sums[: n - 1] = np.nan
    sums[n - 1] = flat[n - 1]
    np.subtract(flat[n:], flat[: len(flat) - n], out=sums[n:])
    sums.reshape(count, block)[1:, :n] += prefix[:-1, -1:]
    return sums[:length]


def rolling(x: np.ndarray, n: int, reducer: str) -> np.ndarray:
    """max / min / var (population) of each window of `n`, NaN before the first full window."""
    out = nan_like(x)
    if n <= len(x):
        out[n - 1 :] = getattr(sliding_window_view(x, n), reducer)(axis=1)
    return out


def recursive_mean(x: np.ndarray, alpha: float, start: int, seed: float) -> np.ndarray:
    """y[start] = seed; y[i] = y[i-1] + alpha * (x[i] - y[i-1]) after it; NaN before `start`.

    The recursion is solved in closed form block by block (geometric weights, re-anchored before
    they overflow), so it costs a few numpy passes instead of a Python loop.
    """
    out = nan_like(x)
    if start >= len(x):
        return out
    out[start] = seed
    rest = x[start + 1 :]
    if not len(rest):
        return out
    decay = 1.0 - alpha
    if decay <= 0.0:
        out[start + 1 :] = rest
        return out
    block = int(min(_BLOCK, max(1.0, _MAX_GROWTH_LOG / -np.log(decay))))
    count = -(-len(rest) // block)
    padded = np.zeros(count * block)
    padded[: len(rest)] = rest
    steps = np.arange(block)
    growth = decay ** -(steps.astype(np.float64))  # decay^-m
    # Zero-seed response of each block, then carry each block's last value into the next.
    partial = alpha * np.cumsum(padded.reshape(count, block) * growth, axis=1) / growth
    carry_weight = decay ** (steps + 1.0)
    carried = np.empty(count)
    previous = seed
    last_weight = carry_weight[-1]
    for b in range(count):
        carried[b] = previous
        previous = partial[b, -1] + last_weight * previous
    values = partial + carried[:, None] * carry_weight
    out[start + 1 :] = values.ravel()[: len(rest)]
    return out
