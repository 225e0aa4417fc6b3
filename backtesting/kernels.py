"""The per-bar loops of a backtest, compiled by numba: the equity curve and its statistics.

Everything else in the simulation is a numpy pass over trades or over the bars; these loops
would take a dozen numpy passes over every bar, and in a sweep over thousands of combinations
those passes are most of the time. The equity is written and its statistics gathered block by
block, while each block is in the CPU cache. Compiled once per machine (`cache=True`, in
`__pycache__` or NUMBA_CACHE_DIR) and released from the GIL, so a worker's threads run them at
once. No fast-math: every operation is the IEEE one numpy would do, in a fixed order, so results
do not depend on the machine or on how a sweep was split.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

# Bars per block of the return statistics: a block's returns stay in the CPU cache for the
# second pass that gives its variance exactly (two passes per block, Chan-merged across blocks).
STATS_BLOCK = 4096


# Independent partial sums, so that the additions do not wait for one another (and the compiler
# may run them in one vector register); a fixed split, so the result is the same everywhere.
LANES = 4
# Bars per drawdown sub-block: one whose highest equity is below the running peak lies inside an
# episode, and only its lowest equity matters (most bars of most curves are under water).
PEAK_BLOCK = 64


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _lane_sum(values):  # type: ignore[no-untyped-def]
    """Sum of values as LANES partial sums (the tail in the first)."""
    s0 = s1 = s2 = s3 = 0.0
    whole = len(values) - len(values) % LANES
    for j in range(0, whole, LANES):
        s0 += values[j]
        s1 += values[j + 1]
        s2 += values[j + 2]
        s3 += values[j + 3]
    for j in range(whole, len(values)):
        s0 += values[j]
    return (s0 + s1) + (s2 + s3)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _lane_squares(values, centre):  # type: ignore[no-untyped-def]
    """Sum of squared deviations from `centre` and sum of squares of the negative values, as
    LANES partial sums each."""
    q0 = q1 = q2 = q3 = d0 = d1 = d2 = d3 = 0.0
    whole = len(values) - len(values) % LANES
    for j in range(0, whole, LANES):
        a, b, c, d = values[j], values[j + 1], values[j + 2], values[j + 3]
        q0 += (a - centre) * (a - centre)
        q1 += (b - centre) * (b - centre)
        q2 += (c - centre) * (c - centre)
        q3 += (d - centre) * (d - centre)
        d0 += min(a, 0.0) * min(a, 0.0)
        d1 += min(b, 0.0) * min(b, 0.0)
        d2 += min(c, 0.0) * min(c, 0.0)
        d3 += min(d, 0.0) * min(d, 0.0)
    for j in range(whole, len(values)):
        q0 += (values[j] - centre) * (values[j] - centre)
        d0 += min(values[j], 0.0) * min(values[j], 0.0)
    return (q0 + q1) + (q2 + q3), (d0 + d1) + (d2 + d3)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _extremes(values):  # type: ignore[no-untyped-def]
    """Lowest and highest of values."""
    l0 = l1 = l2 = l3 = np.inf
    h0 = h1 = h2 = h3 = -np.inf
    whole = len(values) - len(values) % LANES
    for j in range(0, whole, LANES):
        a, b, c, d = values[j], values[j + 1], values[j + 2], values[j + 3]
        l0, l1, l2, l3 = min(l0, a), min(l1, b), min(l2, c), min(l3, d)
        h0, h1, h2, h3 = max(h0, a), max(h1, b), max(h2, c), max(h3, d)
    for j in range(whole, len(values)):
        l0, h0 = min(l0, values[j]), max(h0, values[j])
    return min(min(l0, l1), min(l2, l3)), max(max(h0, h1), max(h2, h3))


# The statistics' running state between blocks, one float64 array (counts and bar indices are
# exact as floats far beyond any series).
(_PREVIOUS, _TOTAL, _MEAN, _M2, _DOWN, _COUNT, _PEAK, _START, _LOWEST, _BASE, _EPISODES, _WORST,
 _WORST_SUM, _LONGEST, _LENGTH_SUM, _STATE) = range(16)  # fmt: skip


@njit(cache=True, nogil=True, error_model="numpy")
def _new_state(capital):  # type: ignore[no-untyped-def]
    state = np.zeros(_STATE)
    state[_PREVIOUS] = capital
    state[_PEAK] = -np.inf
    state[_START] = -1.0
    return state


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _end_episode(state, start, end, lowest, base):  # type: ignore[no-untyped-def]
    depth = lowest / base - 1.0
    state[_EPISODES] += 1.0
    state[_WORST] = min(state[_WORST], depth)
    state[_WORST_SUM] += depth
    state[_LONGEST] = max(state[_LONGEST], end - start)
    state[_LENGTH_SUM] += end - start


# Every loop below runs over a slice from index 0: numba wraps negative indices, and only there
# can the compiler prove there are none, drop the wrap and vectorise (about twice as fast).


@njit(cache=True, nogil=True, error_model="numpy")
def _accumulate(equity, returns, state, shift):  # type: ignore[no-untyped-def]
    """Add equity (at most STATS_BLOCK bars, from bar `shift` on) to the running statistics."""
    k = len(equity)
    r = returns[:k]
    r[0] = equity[0] / state[_PREVIOUS] - 1.0
    for j in range(1, k):
        r[j] = equity[j] / equity[j - 1] - 1.0
    state[_PREVIOUS] = equity[k - 1]
    block_sum = _lane_sum(r)
    block_mean = block_sum / k
    block_m2, block_down = _lane_squares(r, block_mean)
    count, mean = state[_COUNT], state[_MEAN]
    delta = block_mean - mean
    state[_M2] += block_m2 + delta * delta * count * k / (count + k)
    state[_MEAN] = mean + delta * k / (count + k)
    state[_COUNT] = count + k
    state[_TOTAL] += block_sum
    state[_DOWN] += block_down
    # Drawdown episodes: from the first bar under the running peak to the bar that regains it;
    # within one the peak is the equity of the bar before it.
    peak, start = state[_PEAK], int(state[_START])
    lowest, base = state[_LOWEST], state[_BASE]
    for sub in range(0, k, PEAK_BLOCK):
        part = equity[sub : sub + PEAK_BLOCK]
        bottom, top = _extremes(part)
        if top < peak:
            if start < 0:
                start, base, lowest = sub + shift, peak, bottom
            else:
                lowest = min(lowest, bottom)
            continue
        for i in range(len(part)):
            e = part[i]
            if e >= peak:
                if start >= 0:
                    _end_episode(state, start, sub + i + shift, lowest, base)
                    start = -1
                peak = e
            elif start < 0:
                start, base, lowest = sub + i + shift, peak, e
            else:
                lowest = min(lowest, e)
    state[_PEAK], state[_START] = peak, start
    state[_LOWEST], state[_BASE] = lowest, base


@njit(cache=True, nogil=True, error_model="numpy")
def _finish(state, n):  # type: ignore[no-untyped-def]
    """Close an episode still open at bar n (the end of the series)."""
    start = int(state[_START])
    if start >= 0:
        _end_episode(state, start, n, state[_LOWEST], state[_BASE])
        state[_START] = -1.0


@njit(cache=True, nogil=True, error_model="numpy")
def _equity_stats(equity, capital):  # type: ignore[no-untyped-def]
    n = len(equity)
    returns = np.empty(STATS_BLOCK)
    state = _new_state(capital)
    for first in range(0, n, STATS_BLOCK):
        _accumulate(equity[first : first + STATS_BLOCK], returns, state, first)
    _finish(state, n)
    return state


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _linear(out, close, g, base):  # type: ignore[no-untyped-def]
    for i in range(len(out)):
        out[i] = g * close[i] + base


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _linear_funded(out, close, paid, g, base, since):  # type: ignore[no-untyped-def]
    for i in range(len(out)):
        out[i] = g * close[i] + base - g * (paid[i] - since)


@njit(cache=True, nogil=True, error_model="numpy")
def _fill(out, a, b, cursor, lengths, level, gain, close, paid, paid_at_entry, closing):  # type: ignore[no-untyped-def]
    """Write bars [a, b) of the regions' equity to out (out[0] is bar a); cursor = [region, bar
    where it ends]."""
    funded = len(paid) > 0
    k, end = cursor[0], cursor[1]
    j = a
    while j < b:
        while end <= j:
            k += 1
            end += lengths[k]
        stop = min(b, end)
        part = out[j - a : stop - a]
        if funded:
            _linear_funded(part, close[j:stop], paid[j:stop], gain[k], level[k], paid_at_entry[k])
        else:
            _linear(part, close[j:stop], gain[k], level[k])
        if stop == end and not math.isnan(closing[k]):
            part[-1] = closing[k]
        j = stop
    cursor[0], cursor[1] = k, end


@njit(cache=True, nogil=True, error_model="numpy")
def _fill_equity(out, lengths, level, gain, close, paid, paid_at_entry, closing, capital, first):  # type: ignore[no-untyped-def]
    n = len(out)
    cursor = np.array([0, lengths[0]])
    _fill(out[:first], 0, first, cursor, lengths, level, gain, close, paid, paid_at_entry, closing)
    returns = np.empty(STATS_BLOCK)
    state = _new_state(capital)
    for start in range(first, n, STATS_BLOCK):
        stop = min(n, start + STATS_BLOCK)
        block = out[start:stop]
        _fill(block, start, stop, cursor, lengths, level, gain, close, paid, paid_at_entry, closing)
        _accumulate(block, returns, state, start)
    _finish(state, n)
    return state


@njit(cache=True, nogil=True, error_model="numpy")
def _fill_kept(  # type: ignore[no-untyped-def]
    kept, keep, lengths, level, gain, close, paid, paid_at_entry, closing, capital, first
):
    """_fill_equity through one block's buffer, keeping only the bars `keep` (sorted, >= first):
    a sweep reads each block while it is in cache and never writes the whole curve."""
    n = len(close)
    buffer = np.empty(STATS_BLOCK)
    cursor = np.array([0, lengths[0]])
    while cursor[1] <= first and cursor[0] + 1 < len(lengths):
        cursor[0] += 1
        cursor[1] += lengths[cursor[0]]
    returns = np.empty(STATS_BLOCK)
    state = _new_state(capital)
    p = 0
    for start in range(first, n, STATS_BLOCK):
        stop = min(n, start + STATS_BLOCK)
        block = buffer[: stop - start]
        _fill(block, start, stop, cursor, lengths, level, gain, close, paid, paid_at_entry, closing)
        _accumulate(block, returns, state, start)
        while p < len(keep) and keep[p] < stop:
            kept[p] = block[keep[p] - start]
            p += 1
    _finish(state, n)
    return state


class EquityStats(NamedTuple):
    """What the metrics need from the per-bar equity, gathered in one pass over it."""

    bars: int
    final: float  # the last bar's equity (the capital without bars)
    mean: float  # of the per-bar returns, the first against the capital
    std: float  # sample standard deviation of the returns
    downside: float  # root mean square of the negative returns
    drawdowns: int  # episodes under water
    max_drawdown: float  # deepest episode (a negative fraction), 0 without any
    avg_drawdown: float
    longest: int  # bars of the longest episode
    length_sum: int  # bars under water in all


def _summary(state: np.ndarray, n: int) -> EquityStats:
    final = float(state[_PREVIOUS])
    if n == 0:
        return EquityStats(0, final, 0.0, 0.0, 0.0, 0, 0.0, 0.0, 0, 0)
    episodes = int(state[_EPISODES])
    return EquityStats(
        bars=n,
        final=final,
        mean=float(state[_TOTAL]) / n,
        std=math.sqrt(state[_M2] / (n - 1)) if n > 1 else 0.0,
        downside=math.sqrt(state[_DOWN] / n),
        drawdowns=episodes,
        max_drawdown=float(state[_WORST]),
        avg_drawdown=float(state[_WORST_SUM]) / episodes if episodes else 0.0,
        longest=int(state[_LONGEST]),
        length_sum=int(state[_LENGTH_SUM]),
    )


def equity_stats(equity: np.ndarray, capital: float) -> EquityStats:
    """Return statistics (variance merged across blocks as Chan, Golub & LeVeque 1979, as exact
    as two passes) and drawdown episodes of an equity curve, in one compiled pass."""
    equity = np.ascontiguousarray(equity, dtype=np.float64)
    if len(equity) == 0:
        return _summary(_new_state(float(capital)), 0)
    return _summary(_equity_stats(equity, float(capital)), len(equity))


def fill_equity(
    regions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    close: np.ndarray,
    paid: np.ndarray | None,
    paid_at_entry: np.ndarray | None,
    capital: float,
    first: int,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, EquityStats]:
    """The equity of consecutive regions of bars, and `equity_stats` of its bars from `first`.

    regions = (lengths, level, gain, closing): region k spans lengths[k] bars, its equity is
    level[k] + gain[k] * close less gain[k] times the funding paid per unit since the region
    began (paid - paid_at_entry[k], when funding is given), and its last bar is closing[k]
    unless that is NaN (an exit realised at that bar's close). With `keep` (sorted bar indices
    from `first` on) only those bars' equity is returned, and the whole curve is never built.
    """
    lengths, level, gain, closing = regions
    n = len(close)
    if paid is None or paid_at_entry is None:
        paid = paid_at_entry = np.empty(0)
    if keep is None:
        out = np.empty(n)
        state = _fill_equity(out, lengths, level, gain, close, paid, paid_at_entry, closing,
                             float(capital), first)  # fmt: skip
        return out, _summary(state, n - first)
    keep = np.asarray(keep, dtype=np.int64)
    if len(keep) and (keep[0] < first or keep[-1] >= n or np.any(np.diff(keep) < 0)):
        raise ValueError("keep: sorted bars from first to the last bar")
    kept = np.empty(len(keep))
    state = _fill_kept(kept, keep, lengths, level, gain, close, paid, paid_at_entry, closing,
                       float(capital), first)  # fmt: skip
    return kept, _summary(state, n - first)
