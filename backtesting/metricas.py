"""Backtest metrics: one pure function from an equity curve and its trades to a flat dict."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

YEAR_MS = 365 * 86_400_000  # crypto trades every day of the year


def _drawdowns(equity: np.ndarray, bar_ms: int) -> dict[str, float]:
    peak = np.maximum.accumulate(equity)
    depth = equity / peak - 1
    under = np.zeros(len(equity) + 2, dtype=np.int8)
    np.less(depth, 0, out=under[1:-1].view(bool))
    # Each episode runs from the first bar under water to the bar that regains the peak.
    edges = np.flatnonzero(np.diff(under))
    starts, ends = edges[::2], edges[1::2]
    if len(starts) == 0:
        return {"max_drawdown": 0.0, "avg_drawdown": 0.0, "max_drawdown_duration_ms": 0,
                "avg_drawdown_duration_ms": 0}  # fmt: skip
    worst = np.minimum.reduceat(depth, starts)
    durations = (ends - starts) * bar_ms
    return {
        "max_drawdown": float(depth.min()),
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
    in_position: np.ndarray,
    bar_ms: int,
    capital: float,
    trades: dict[str, np.ndarray],
) -> dict[str, Any]:
    """Every metric of a run; returns are fractions (0.1 = 10 %), durations milliseconds.

    Sharpe and Sortino use per-bar returns of the equity, zero risk-free rate, annualised with
    365 days a year; CAGR uses the calendar span of the candles.
    """
    previous = np.concatenate(([capital], equity[:-1]))
    returns = equity / previous - 1
    periods = YEAR_MS / bar_ms
    years = len(equity) * bar_ms / YEAR_MS
    final = float(equity[-1]) if len(equity) else capital
    total = final / capital - 1
    std = returns.std(ddof=1) if len(returns) > 1 else 0.0
    losses = np.minimum(returns, 0.0)
    downside = math.sqrt(np.dot(losses, losses) / len(losses)) if len(returns) else 0.0
    cagr = _cagr(final / capital, years)
    drawdown = _drawdowns(equity, bar_ms) if len(equity) else _drawdowns(np.ones(1), bar_ms)
    reasons = trades["reason"]
    metrics: dict[str, Any] = {
        "start_equity": capital,
        "final_equity": final,
        "total_return": total,
        "annualized_return": float(returns.mean() * periods) if len(returns) else 0.0,
        "cagr": cagr,
        "buy_hold_return": float(close[-1] / close[0] - 1) if len(close) else 0.0,
        "volatility": float(std * math.sqrt(periods)),
        "sharpe": float(returns.mean() / std * math.sqrt(periods)) if std > 0 else None,
        "sortino": float(returns.mean() / downside * math.sqrt(periods)) if downside > 0 else None,
        **drawdown,
        "exposure": float(in_position.mean()) if len(in_position) else 0.0,
        **_trade_stats(trades["pnl"], trades["return"], trades["duration_ms"]),
        "total_fees": float(trades["fees"].sum()),
        "total_funding": float(trades["funding"].sum()),
        "liquidations": int(np.count_nonzero(reasons == "liquidacion")),
        "open_at_end": bool(np.any(reasons == "fin")),
    }
    metrics["calmar"] = cagr / abs(metrics["max_drawdown"]) if metrics["max_drawdown"] < 0 else None
    return metrics
