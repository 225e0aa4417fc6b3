"""Backtest metrics: one pure function from an equity curve's statistics and its trades to a flat
dict."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from backtesting.kernels import EquityStats
from core.fills import EXIT_REASONS

YEAR_MS = 365 * 86_400_000  # crypto trades every day of the year


def _drawdowns(stats: EquityStats, bar_ms: int) -> dict[str, float]:
    """Drawdown episodes: each runs from the first bar under water to the bar that regains the
    peak; its depth is its lowest equity over that peak."""
    episodes = stats.drawdowns
    return {
        "max_drawdown": stats.max_drawdown,
        "avg_drawdown": stats.avg_drawdown,
        "max_drawdown_duration_ms": stats.longest * bar_ms,
        "avg_drawdown_duration_ms": stats.length_sum * bar_ms // episodes if episodes else 0,
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
    stats: EquityStats,
    close: np.ndarray,
    exposure: float,
    bar_ms: int,
    capital: float,
    trades: dict[str, np.ndarray],
) -> dict[str, Any]:
    """Every metric of a run; returns are fractions (0.1 = 10 %), durations milliseconds.

    `stats` are its equity's (kernels.equity_stats, or gathered by the simulation as it built the
    curve, bit for bit the same); `exposure` is the share of bars in a position; `trades` holds
    per-trade arrays (pnl, return, fees, funding, duration_ms, and reason as EXIT_REASONS codes).
    Sharpe and Sortino use per-bar returns of the equity, zero risk-free rate, annualised with
    365 days a year; CAGR uses the calendar span of the candles.
    """
    mean, std, downside = stats.mean, stats.std, stats.downside
    periods = YEAR_MS / bar_ms
    years = stats.bars * bar_ms / YEAR_MS
    final = stats.final
    total = final / capital - 1
    cagr = _cagr(final / capital, years)
    drawdown = _drawdowns(stats, bar_ms)
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
