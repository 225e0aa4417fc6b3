"""Backtest metrics: one pure function from an equity curve and its trades to a flat dict."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.fills import EXIT_REASONS

YEAR_MS = 365 * 86_400_000  # crypto trades every day of the year


# Bars per block of the running peak: a block holding no new high has one peak for all its bars.
PEAK_BLOCK = 1024
# Bars per pass of `_bar_stats`: a block's returns and deviations stay in the CPU cache, so the
# equity is read from memory once instead of once per statistic (memory, not arithmetic, is
# what a sweep over thousands of combinations waits for).
STATS_BLOCK = 32 * PEAK_BLOCK


def _under_water(equity: np.ndarray, peak: float, under: np.ndarray) -> float:
    """Write into `under` whether each bar's equity is below the highest equity so far (the
    bar's own and `peak`, the highest before these bars, included); return the new peak.

    np.maximum.accumulate is a scalar loop (about 5 ns a bar). Most sub-blocks of bars set no
    new high, and in those the peak is the highest equity before them: one vectorised
    comparison. Only sub-blocks that do set one are accumulated bar by bar.
    """
    n = len(equity)
    whole = n - n % PEAK_BLOCK
    if whole:
        blocks = equity[:whole].reshape(-1, PEAK_BLOCK)
        tops = blocks.max(axis=1)
        before = np.empty(len(tops))
        before[0] = peak
        np.maximum.accumulate(tops[:-1], out=before[1:])
        np.maximum(before, peak, out=before)
        flags = under[:whole].reshape(-1, PEAK_BLOCK)
        np.less(blocks, before[:, None], out=flags)
        rising = np.flatnonzero(tops > before)
        if len(rising):
            peaks = blocks[rising]
            peaks[:, 0] = np.maximum(peaks[:, 0], before[rising])
            np.maximum.accumulate(peaks, axis=1, out=peaks)
            flags[rising] = blocks[rising] < peaks
        peak = max(peak, float(tops.max()))
    if whole < n:
        tail = equity[whole:]
        running = np.maximum.accumulate(tail)
        np.maximum(running, peak, out=running)
        np.less(tail, running, out=under[whole:])
        peak = max(peak, float(running[-1]))
    return peak


@dataclass(frozen=True, slots=True)
class _BarStats:
    mean: float
    std: float
    downside: float
    under: np.ndarray


def _bar_stats(equity: np.ndarray, capital: float) -> _BarStats:
    """Mean, sample std and downside deviation of the per-bar returns (the first against the
    capital) and the under-water flags, in one pass over the equity by STATS_BLOCK bars.

    The variance merges the blocks' (Chan, Golub & LeVeque 1979), which is as accurate as two
    passes. Sums of squares go through einsum, not BLAS, whose threaded dot would make the last
    bits depend on the machine's thread count.
    """
    n = len(equity)
    under = np.empty(n, dtype=bool)
    returns, scratch = np.empty(min(n, STATS_BLOCK)), np.empty(min(n, STATS_BLOCK))
    total = mean = m2 = down = 0.0
    count, previous, peak = 0, capital, -math.inf
    for start in range(0, n, STATS_BLOCK):
        e = equity[start : start + STATS_BLOCK]
        k = len(e)
        r, d = returns[:k], scratch[:k]
        r[0] = e[0] / previous
        np.divide(e[1:], e[:-1], out=r[1:])
        r -= 1
        block_sum = float(r.sum())
        block_mean = block_sum / k
        np.subtract(r, block_mean, out=d)
        block_m2 = float(np.einsum("i,i->", d, d))
        np.minimum(r, 0.0, out=d)
        down += float(np.einsum("i,i->", d, d))
        delta = block_mean - mean
        m2 += block_m2 + delta * delta * count * k / (count + k)
        mean += delta * k / (count + k)
        count += k
        total += block_sum
        peak = _under_water(e, peak, under[start : start + k])
        previous = float(e[-1])
    if n == 0:
        return _BarStats(0.0, 0.0, 0.0, under)
    std = math.sqrt(m2 / (n - 1)) if n > 1 else 0.0
    return _BarStats(total / n, std, math.sqrt(down / n), under)


def _drawdowns(equity: np.ndarray, under: np.ndarray, bar_ms: int) -> dict[str, float]:
    """Drawdown episodes: each runs from the first bar under water to the bar that regains the
    peak. Within one the peak is constant (the equity of the bar before it), so each episode's
    depth is its lowest equity over that peak, and no per-bar depth array is needed."""
    flags = np.zeros(len(equity) + 2, dtype=np.int8)
    flags[1:-1] = under
    edges = np.flatnonzero(np.diff(flags))
    starts, ends = edges[::2], edges[1::2]
    if len(starts) == 0:
        return {"max_drawdown": 0.0, "avg_drawdown": 0.0, "max_drawdown_duration_ms": 0,
                "avg_drawdown_duration_ms": 0}  # fmt: skip
    bounds = edges if ends[-1] < len(equity) else edges[:-1]
    lowest = np.minimum.reduceat(equity, bounds)[::2]
    worst = lowest / equity[starts - 1] - 1
    durations = (ends - starts) * bar_ms
    return {
        "max_drawdown": float(worst.min()),
        "avg_drawdown": float(worst.mean()),
        "max_drawdown_duration_ms": int(durations.max()),
        "avg_drawdown_duration_ms": int(durations.mean()),
    }


def _ratio(numerator: float, denominator: float) -> float:
    if denominator == 0:
        return math.inf if numerator > 0 else (0.0 if numerator == 0 else -math.inf)
    return numerator / denominator


def _trade_stats(pnl: np.ndarray, returns: np.ndarray, durations: np.ndarray) -> dict[str, Any]:
    n = len(pnl)
    if n == 0:
        return {"trades": 0, "win_rate": None, "best_trade": None, "worst_trade": None,
                "avg_trade": None, "avg_trade_duration_ms": None, "max_trade_duration_ms": None,
                "profit_factor": None, "expectancy": None, "sqn": None, "kelly": None}  # fmt: skip
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    win_rate = len(wins) / n
    avg_win = wins.mean() if len(wins) else 0.0
    avg_loss = -losses.mean() if len(losses) else 0.0
    payoff = _ratio(avg_win, avg_loss)
    std = pnl.std(ddof=1) if n > 1 else 0.0
    return {
        "trades": n,
        "win_rate": win_rate,
        "best_trade": float(returns.max()),
        "worst_trade": float(returns.min()),
        "avg_trade": float(returns.mean()),
        "avg_trade_duration_ms": int(durations.mean()),
        "max_trade_duration_ms": int(durations.max()),
        "profit_factor": _ratio(float(wins.sum()), float(-losses.sum())),
        "expectancy": float(pnl.mean()),
        "sqn": float(math.sqrt(n) * pnl.mean() / std) if std > 0 else None,
        "kelly": float(win_rate - (1 - win_rate) / payoff)
        if payoff not in (0.0, math.inf)
        else None,
    }


def _cagr(growth: float, years: float) -> float:
    """Compound annual growth; over a few hours it explodes, so an overflow reads as infinite."""
    if growth <= 0:
        return -1.0
    try:
        return math.exp(math.log(growth) / years) - 1
    except OverflowError:
        return math.inf


def compute_metrics(
    equity: np.ndarray,
    close: np.ndarray,
    exposure: float,
    bar_ms: int,
    capital: float,
    trades: dict[str, np.ndarray],
) -> dict[str, Any]:
    """Every metric of a run; returns are fractions (0.1 = 10 %), durations milliseconds.

    `exposure` is the share of bars in a position; `trades` holds per-trade arrays (pnl,
    return, fees, funding, duration_ms, and reason as EXIT_REASONS codes). Sharpe and Sortino
    use per-bar returns of the equity, zero risk-free rate, annualised with 365 days a year;
    CAGR uses the calendar span of the candles.
    """
    n = len(equity)
    stats = _bar_stats(equity, capital)
    mean, std, downside = stats.mean, stats.std, stats.downside
    periods = YEAR_MS / bar_ms
    years = n * bar_ms / YEAR_MS
    final = float(equity[-1]) if n else capital
    total = final / capital - 1
    cagr = _cagr(final / capital, years)
    drawdown = _drawdowns(equity, stats.under, bar_ms)
    reasons = trades["reason"]
    metrics: dict[str, Any] = {
        "start_equity": capital,
        "final_equity": final,
        "total_return": total,
        "annualized_return": mean * periods,
        "cagr": cagr,
        "buy_hold_return": float(close[-1] / close[0] - 1) if len(close) else 0.0,
        "volatility": float(std * math.sqrt(periods)),
        "sharpe": float(mean / std * math.sqrt(periods)) if std > 0 else None,
        "sortino": float(mean / downside * math.sqrt(periods)) if downside > 0 else None,
        **drawdown,
        "exposure": exposure,
        **_trade_stats(trades["pnl"], trades["return"], trades["duration_ms"]),
        "total_fees": float(trades["fees"].sum()),
        "total_funding": float(trades["funding"].sum()),
        "liquidations": int(np.count_nonzero(reasons == EXIT_REASONS.index("liquidacion"))),
        "open_at_end": bool(np.any(reasons == EXIT_REASONS.index("fin"))),
    }
    metrics["calmar"] = cagr / abs(metrics["max_drawdown"]) if metrics["max_drawdown"] < 0 else None
    return metrics
