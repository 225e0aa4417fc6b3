"""The vectorised simulation core: target positions + OHLC arrays -> trades and an equity curve.

Every step is a numpy pass over the trades or over the bars, the per-bar equity and its
statistics one compiled loop (backtesting.kernels), so a year of 1m candles runs in milliseconds.
Decisions are taken at a bar's close and filled at the next bar's open; nothing in a bar's range
is used before the bar that contains it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from backtesting.kernels import EquityStats, equity_stats, fill_equity
from core.costs import funding_payment
from core.fills import (
    EXIT_END,
    EXIT_REASONS,
    EXIT_SIGNAL,
    EXIT_STOP,
    EXIT_TRAILING,
    NO_EXIT,
    Costs,
    bar_exit,
    entry_price,
    exit_price,
    levels,
    trade_fees,
    trade_return,
    trailing_stop,
)
from indicadores.cache import memoized

__all__ = ["EXIT_REASONS", "Costs", "Distance", "Simulation", "simulate"]
Distance = float | np.ndarray | None
EXTREME_BLOCK = 256


@dataclass(frozen=True, slots=True)
class Simulation:
    """Trades as parallel arrays (one entry per trade) plus the per-bar equity and exposure."""

    entry_bar: np.ndarray
    exit_bar: np.ndarray
    side: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    quantity: np.ndarray
    pnl: np.ndarray
    fees: np.ndarray
    funding: np.ndarray
    reason: np.ndarray
    trade_return: np.ndarray
    equity: np.ndarray  # at every bar's close, or at the bars `keep` when simulate had them
    stats: EquityStats  # of the equity from the `first` bar simulate was given
    last_held: np.ndarray
    ambiguous_bars: int

    def bars_held(self, first: int = 0) -> int:
        """Bars from `first` on that were held in a position (a trade holds entry..last_held)."""
        return int(np.maximum(self.last_held - np.maximum(self.entry_bar, first) + 1, 0).sum())


def _per_trade(distance: Distance, decided: np.ndarray) -> Distance:
    """Per-bar distances picked at each trade's decision bar; fractions pass through."""
    if distance is None or isinstance(distance, float):
        return distance
    return distance[decided]


def _segments(target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of constant held position: start bar, end bar (exclusive) and side of each non-flat run.

    The position held during bar j is the target decided at the close of bar j - 1.
    """
    # held[j] = target[j - 1] changes at j exactly where target changes between j - 2 and j - 1.
    changes = np.flatnonzero(target[1:-1] != target[:-2]) + 2
    starts = np.concatenate(([1], changes)) if len(target) > 1 and target[0] != 0 else changes
    ends = np.append(starts[1:], len(target))
    sides = target[starts - 1].astype(np.float64)  # int8 decisions simulate as float ones do
    keep = sides != 0
    return starts[keep], ends[keep], sides[keep]


def _segment_reduce(ufunc: np.ufunc, values: np.ndarray, starts, ends) -> np.ndarray:  # type: ignore[no-untyped-def]
    """`ufunc` (max or min) over every [start, end) segment in one pass over the bars."""
    bounds = np.column_stack((starts, ends)).ravel()
    if bounds[-1] == len(values):
        bounds = bounds[:-1]
    return ufunc.reduceat(values, bounds)[::2]


def _first_hits(
    starts: np.ndarray,
    ends: np.ndarray,
    side: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    levels: tuple[np.ndarray, np.ndarray, np.ndarray],
    entry: np.ndarray,
    trailing: float | None = None,
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """First bar of each segment touching stop, take-profit or liquidation, and which one.

    Returns (exit bar or -1, exit kind, ambiguous count, the stop each trade had at its exit
    bar). A bar touching an adverse level and the take-profit is resolved pessimistically and
    counted as ambiguous. Without a trailing stop only segments whose range reaches a level are
    scanned bar by bar; with one, every trade's bars are (its stop moves).
    """
    stop, take, liquidation = levels
    exit_bar = np.full(len(starts), -1)
    kind = np.full(len(starts), EXIT_SIGNAL)
    if len(starts) == 0:
        return exit_bar, kind, 0, stop
    if trailing is not None:
        return _trailing_hits(starts, ends, side, high, low, levels, entry, trailing)
    nearest_adverse = np.maximum(side * stop, side * liquidation)
    # Cheap bounds first: a segment can only touch a level inside the range of the blocks of
    # bars it spans, so only the segments whose blocks reach a level are scanned bar by bar.
    lows, highs = _block_extremes(low, high)
    first, last = starts // EXTREME_BLOCK, (ends - 1) // EXTREME_BLOCK + 1
    long, short = side > 0, side < 0
    lowest, highest = lows[first[0] :].min(), highs[first[0] :].max()
    need_low = (long & (nearest_adverse >= lowest)) | (short & (take >= lowest))
    need_high = (short & (-nearest_adverse <= highest)) | (long & (take <= highest))
    if not need_low.any() and not need_high.any():
        return exit_bar, kind, 0, stop
    bottom = _segment_reduce(np.minimum, lows, first, last) if need_low.any() else np.inf
    top = _segment_reduce(np.maximum, highs, first, last) if need_high.any() else -np.inf
    adverse_extreme = np.where(long, bottom, -top)
    favourable_extreme = np.where(long, top, -bottom)
    touched = np.flatnonzero(
        (adverse_extreme <= nearest_adverse) | (favourable_extreme >= side * take)
    )
    if len(touched) == 0:
        return exit_bar, kind, 0, stop
    seg, bars = _layout(starts[touched], ends[touched])
    found = _scan(seg, bars, side[touched], high, low, stop[touched][seg], take[touched],
                  liquidation[touched])  # fmt: skip
    at, first, first_kind, ambiguous = found
    exit_bar[touched[first]] = bars[at]
    kind[touched[first]] = first_kind
    return exit_bar, kind, ambiguous, stop


@memoized
def _block_extremes(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lowest low and the highest high of each block of EXTREME_BLOCK bars (the last one
    may be shorter), the last block repeated once so that a segment ending with the bars can
    be reduced up to it; a sweep over many combinations computes them once."""
    edges = np.arange(0, len(low), EXTREME_BLOCK)
    lows, highs = np.minimum.reduceat(low, edges), np.maximum.reduceat(high, edges)
    return np.append(lows, lows[-1]), np.append(highs, highs[-1])


def _layout(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every bar of the given segments, in order: (segment index, bar index) per element."""
    lengths = ends - starts
    seg = np.repeat(np.arange(len(starts)), lengths)
    offsets = np.arange(len(seg)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return seg, np.repeat(starts, lengths) + offsets


def _scan(seg, bars, side, high, low, stop, take, liquidation):  # type: ignore[no-untyped-def]
    """Bar-by-bar (vectorised) search of the first touch within the laid-out segments; `stop`
    is per element (bar), the other levels per segment. Returns (element of each first touch,
    its segment, its kind, ambiguous count)."""
    kinds, ambiguous = bar_exit(side[seg], high[bars], low[bars], stop, take[seg], liquidation[seg])
    where = np.flatnonzero(kinds != NO_EXIT)
    first_seg, first_pos = np.unique(seg[where], return_index=True)
    at = where[first_pos]
    return at, first_seg, kinds[at], int(np.count_nonzero(ambiguous[at]))


def _trailing_hits(starts, ends, side, high, low, levels, entry, trailing):  # type: ignore[no-untyped-def]
    """_first_hits with a trailing stop: each bar's stop from the best price of the trade's
    completed bars (core.fills.trailing_stop), the same floats the paper broker computes."""
    stop, take, liquidation = levels
    seg, bars = _layout(starts, ends)
    s = side[seg]
    # The best price before each bar, signed so that higher is better: the entry on the entry
    # bar, then the running best of the previous bars' highs (longs) or lows (shorts).
    best = np.where(s > 0, high[bars - 1], -low[bars - 1])
    first = np.r_[True, seg[1:] != seg[:-1]]
    best[first] = (side * entry)[seg[first]]
    extreme = s * pd.Series(best).groupby(seg).cummax().to_numpy()
    bar_stop, trails = trailing_stop(s, stop[seg], extreme, trailing)
    at, hit, hit_kind, ambiguous = _scan(seg, bars, side, high, low, bar_stop, take, liquidation)
    exit_bar = np.full(len(starts), -1)
    kind = np.full(len(starts), EXIT_SIGNAL)
    exit_bar[hit] = bars[at]
    kind[hit] = np.where((hit_kind == EXIT_STOP) & trails[at], EXIT_TRAILING, hit_kind)
    exit_stop = stop.copy()
    exit_stop[hit] = bar_stop[at]
    return exit_bar, kind, ambiguous, exit_stop


def simulate(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    target: np.ndarray,
    capital: float,
    costs: Costs,
    stop_distance: Distance = None,
    take_distance: Distance = None,
    funding_rate: np.ndarray | None = None,
    trailing: float | None = None,
    first: int = 0,
    keep: np.ndarray | None = None,
) -> Simulation:
    """Run the positions through the market with costs; see README "Backtesting semantics".

    `stop_distance` / `take_distance` are a fraction of the entry price, or per-bar price distances
    decided at that bar's close (used by a trade entered at the next open); `funding_rate` gives
    per bar the summed rate of the funding instants inside it (charged when the position was held
    at the bar's open); `trailing` a trailing stop's callback fraction (core.fills.trailing_stop);
    `first` the bar the equity statistics start at (Simulation.stats); `keep` sorted bars (from
    `first` on) whose equity is all a caller needs (a sweep keeps each day's last).
    """
    n = len(close)
    starts, ends, side = _segments(target)
    entry = entry_price(open_[starts], side, costs)
    decided = starts - 1
    stop, take, liquidation = levels(
        entry, side, _per_trade(stop_distance, decided), _per_trade(take_distance, decided), costs
    )
    stop = np.broadcast_to(stop, side.shape).astype(float)
    exit_bar, kind, ambiguous, stop = _first_hits(
        starts, ends, side, high, low, (stop, take, liquidation), entry, trailing
    )
    intrabar = exit_bar >= 0
    at_end = ~intrabar & (ends == n)
    kind = np.where(at_end, EXIT_END, kind)
    exit_bar = np.where(intrabar, exit_bar, np.where(at_end, n - 1, ends))
    last_held = np.where(intrabar | at_end, exit_bar, ends - 1)

    exit_fill = exit_price(
        open_[exit_bar], close[exit_bar], side, kind, stop, take, liquidation, costs
    )
    funding_frac = _funding(funding_rate, open_, starts, last_held, side, entry) * costs.exposure
    returns = trade_return(entry, exit_fill, side, kind, funding_frac, costs)
    equity_before = capital * np.concatenate(([1.0], np.cumprod(1 + returns)[:-1]))
    quantity = equity_before * costs.exposure / entry
    fees = trade_fees(quantity, entry, exit_fill, kind, costs)
    equity, stats = _equity_curve(n, close, capital, starts, last_held, side, entry, equity_before,
                                  returns, costs, funding_rate, open_, kind, first,
                                  keep)  # fmt: skip
    return Simulation(
        entry_bar=starts, exit_bar=exit_bar, side=side, entry_price=entry, exit_price=exit_fill,
        quantity=quantity, pnl=equity_before * returns, fees=fees,
        funding=funding_frac * equity_before, reason=kind, trade_return=returns,
        equity=equity, stats=stats, last_held=last_held, ambiguous_bars=ambiguous,
    )  # fmt: skip


def _segment_sums(values: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Sum of values[first:last+1] per segment (empty when last < first) via one cumsum."""
    csum = np.concatenate(([0.0], np.cumsum(values)))
    return np.where(last >= first, csum[np.maximum(last + 1, first)] - csum[first], 0.0)


def _unit_funding(rate: np.ndarray, open_: np.ndarray) -> np.ndarray:
    """Funding paid per unit of a long at each bar: the summed rate of its instants x its open."""
    return funding_payment(1.0, 1.0, open_, rate)


def _funding(rate, open_, starts, last_held, side, entry):  # type: ignore[no-untyped-def]
    """Funding paid per unit of exposure, as a fraction of the entry notional."""
    if rate is None:
        return np.zeros(len(starts))
    # Bars after the entry bar up to the last bar held; the entry-bar open is the fill instant.
    flows = _unit_funding(rate, open_)
    return side * _segment_sums(flows, starts + 1, last_held) / entry


def _equity_curve(n, close, capital, starts, last_held, side, entry, equity_before, trade_return,
                  costs, rate, open_, kind, first, keep):  # type: ignore[no-untyped-def]  # fmt: skip
    """Equity at each bar's close (realised between trades, marked to market inside them), or at
    the bars `keep`, and its statistics from bar `first` on.

    Inside trade k equity is linear in the close, A[k] + B[k] * close, so the curve is one
    compiled pass over alternating in-trade / flat regions (kernels.fill_equity).
    """
    if len(starts) == 0:
        flat = np.full(n if keep is None else len(keep), float(capital))
        return flat, equity_stats(np.full(n - first, float(capital)), capital)
    exposure = costs.size * costs.leverage
    equity_after = equity_before * (1 + trade_return)
    slope = equity_before * exposure * side / entry
    intercept = equity_before * (1 - exposure * (side + costs.taker_fee))
    # Regions: [flat before trade 0], then per trade its held bars and the flat bars after it.
    held = last_held - starts + 1
    flat_after = np.append(starts[1:], n) - (last_held + 1)
    lengths = np.concatenate(([starts[0]], np.column_stack((held, flat_after)).ravel()))
    zero = np.zeros(len(starts))
    level = np.concatenate(([capital], np.column_stack((intercept, equity_after)).ravel()))
    gain = np.concatenate(([0.0], np.column_stack((slope, zero)).ravel()))
    # Exits inside a bar (stops, liquidation) or at the last close are realised at that close; a
    # signal exit happens at the next open, so its last bar stays marked to market.
    closing = np.full(len(lengths), np.nan)
    closing[1::2] = np.where(kind != EXIT_SIGNAL, equity_after, np.nan)
    paid = paid_at_entry = None
    if rate is not None:
        paid = np.cumsum(_unit_funding(rate, open_))
        paid_at_entry = np.concatenate(([0.0], np.column_stack((paid[starts], zero)).ravel()))
    regions = (lengths, level, gain, closing)
    return fill_equity(regions, close, paid, paid_at_entry, capital, first, keep)
