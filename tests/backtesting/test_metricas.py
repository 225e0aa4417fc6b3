"""compute_metrics on the statistics of small hand-computed equity curves and trade lists."""

import math

import numpy as np
import pytest

from backtesting.kernels import STATS_BLOCK, equity_stats
from backtesting.metricas import YEAR_MS, compute_metrics
from core.fills import EXIT_REASONS

DAY = 86_400_000


def _trades(pnl, returns=None, durations=None, reasons=None):
    pnl = np.asarray(pnl, dtype=float)
    return {
        "pnl": pnl,
        "return": np.asarray(returns if returns is not None else pnl / 100, dtype=float),
        "duration_ms": np.asarray(durations if durations is not None else [DAY] * len(pnl)),
        "fees": np.full(len(pnl), 0.5),
        "funding": np.full(len(pnl), -0.25),
        "reason": np.array(
            [EXIT_REASONS.index(r) for r in (reasons or ["senal"] * len(pnl))], dtype=np.int64
        ),
    }


def _of_curve(equity, close, exposure, bar_ms, capital, trades):
    return compute_metrics(equity_stats(equity, capital), close, exposure, bar_ms, capital, trades)


def test_drawdowns_returns_and_ratios_by_hand():
    equity = np.array([100.0, 90, 95, 100, 100, 80, 120, 110])
    close = np.array([10.0, 9, 9, 10, 10, 8, 12, 11])
    m = _of_curve(equity, close, 6 / 8, DAY, 100.0, _trades([10, -20, 30, -5]))
    assert m["total_return"] == pytest.approx(0.10)
    assert m["buy_hold_return"] == pytest.approx(0.10)
    # episodes: 90, 95 (worst -10 %, 2 days); 80 (-20 %, 1 day); 110 vs 120 (-1/12, 1 day)
    assert m["max_drawdown"] == pytest.approx(-0.20)
    assert m["avg_drawdown"] == pytest.approx((-0.10 - 0.20 - 1 / 12) / 3)
    assert m["max_drawdown_duration_ms"] == 2 * DAY
    assert m["exposure"] == pytest.approx(6 / 8)
    returns = equity / np.concatenate(([100.0], equity[:-1])) - 1
    assert m["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(365))
    downside = math.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert m["sortino"] == pytest.approx(returns.mean() / downside * math.sqrt(365))
    assert m["cagr"] == pytest.approx(1.10 ** (YEAR_MS / (8 * DAY)) - 1)
    assert m["calmar"] == pytest.approx(m["cagr"] / 0.20)


def test_trade_statistics_by_hand():
    m = _of_curve(
        np.array([100.0, 115]),
        np.array([1.0, 1.0]),
        1.0,
        DAY,
        100.0,
        _trades(
            [10, -20, 30, -5],
            durations=[1, 2, 3, 6],
            reasons=["senal", "stop_loss", "liquidacion", "fin"],
        ),
    )
    assert m["trades"] == 4 and m["win_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(40 / 25)
    assert m["expectancy"] == pytest.approx(15 / 4)
    assert m["best_trade"] == 0.30 and m["worst_trade"] == -0.20
    assert m["avg_trade_duration_ms"] == 3 and m["max_trade_duration_ms"] == 6
    assert m["sqn"] == pytest.approx(2 * 3.75 / np.std([10, -20, 30, -5], ddof=1))
    # Kelly = W - (1 - W) / R with R = average win / average loss = 20 / 12.5
    assert m["kelly"] == pytest.approx(0.5 - 0.5 / (20 / 12.5))
    assert (m["total_fees"], m["total_funding"]) == (2.0, -1.0)
    assert m["liquidations"] == 1 and m["open_at_end"] is True


def test_no_trades_and_no_losses_have_defined_values():
    flat = _of_curve(np.full(3, 50.0), np.ones(3), 0.0, DAY, 50.0, _trades([]))
    assert flat["trades"] == 0 and flat["win_rate"] is None and flat["sharpe"] is None
    assert flat["max_drawdown"] == 0.0 and flat["total_return"] == 0.0
    winners = _of_curve(np.array([1.0, 2.0]), np.ones(2), 1.0, DAY, 1.0, _trades([1.0, 2.0]))
    assert winners["profit_factor"] == math.inf and winners["kelly"] is None


@pytest.mark.parametrize("bars", [5_333, 3 * STATS_BLOCK + 77])
@pytest.mark.parametrize("drift", [-1e-4, 0.0, 1e-4])
def test_long_curves_match_plain_numpy(drift, bars):
    """The block-wise pass gives the drawdown episodes a plain running maximum gives, and the
    ratios of whole-array numpy (lengths that are not a multiple of the blocks, curves that
    set new highs all along or only at the start)."""
    rng = np.random.default_rng(7)
    equity = 100 * np.cumprod(1 + drift + 0.002 * rng.standard_normal(bars))
    peak = np.maximum.accumulate(equity)
    under = np.r_[False, equity < peak, False]
    edges = np.flatnonzero(np.diff(under.astype(np.int8)))
    worst = [
        equity[a:b].min() / equity[a - 1] - 1 for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]
    m = _of_curve(equity, equity, 1.0, DAY, 100.0, _trades([]))
    assert m["max_drawdown"] == pytest.approx(min(equity / peak - 1), rel=1e-12)
    assert m["avg_drawdown"] == pytest.approx(np.mean(worst), rel=1e-12)
    assert m["max_drawdown_duration_ms"] == max(np.diff(edges)[::2]) * DAY
    returns = equity / np.concatenate(([100.0], equity[:-1])) - 1
    assert m["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * 365**0.5, rel=1e-10)
    downside = np.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert m["sortino"] == pytest.approx(returns.mean() / downside * 365**0.5, rel=1e-10)
