"""Crossovers and backtest runs, against SQLite and PostgreSQL."""

import math

import pytest

from core.errors import NotFoundError
from core.models import BacktestRun, CrossKind, Crossover, Side, Trade


def _cross(symbol, interval, t, kind=CrossKind.GOLDEN):
    return Crossover(symbol, interval, t, kind, price=100.0 + t, fast=1.0, slow=2.0)


def test_crossovers_deduplicate_filter_and_latest_per_stream(db):
    batch = [_cross("BTCUSDT", "1m", t) for t in (1, 2, 3)] + [_cross("ETHUSDT", "5m", 2)]
    assert db.crossovers.add(batch) == 4
    assert db.crossovers.add(batch[:2] + [_cross("BTCUSDT", "1m", 4, CrossKind.DEATH)]) == 1
    assert [c.open_time for c in db.crossovers.find(symbol="BTCUSDT")] == [4, 3, 2, 1]
    assert [c.open_time for c in db.crossovers.find(interval="1m", since=3)] == [4, 3]
    assert len(db.crossovers.find(limit=2)) == 2
    latest = {(c.symbol, c.interval): c for c in db.crossovers.latest_per_stream()}
    assert (
        latest["BTCUSDT", "1m"].open_time == 4 and latest["BTCUSDT", "1m"].kind is CrossKind.DEATH
    )
    assert latest["ETHUSDT", "5m"].price == 102.0
    assert len(latest) == 2


def test_backtest_run_round_trip_with_trades(db):
    trades = tuple(
        Trade(
            Side.BUY if i % 2 else Side.SELL,
            1000 * i,
            100.0 + i,
            1000 * i + 500,
            101.0 + i,
            0.5,
            pnl=0.5 - i,
            fees=0.04,
            funding=-0.01,
            exit_reason="senal",
            return_pct=0.01,
        )
        for i in range(3)
    )
    run = BacktestRun(
        "BTCUSDT",
        "1h",
        "sma_cruce",
        {"rapida": 10, "lenta": 30},
        0,
        10_000,
        1000.0,
        {"sharpe": 1.25, "profit_factor": math.inf, "trades": 3},
        trades=trades,
        equity=((0, 1000.0), (5000, 1010.5)),
    )
    saved = db.backtests.save(run)
    loaded = db.backtests.get(saved.id)
    assert loaded.trades == trades and loaded.equity == run.equity
    assert loaded.params == {"rapida": 10, "lenta": 30}
    assert loaded.metrics == {"sharpe": 1.25, "profit_factor": None, "trades": 3}
    db.backtests.save(run)
    listed = db.backtests.find()
    assert [r.id for r in listed] == [saved.id + 1, saved.id] and listed[0].trades == ()
    assert db.backtests.count() == 2
    with pytest.raises(NotFoundError):
        db.backtests.get(12345)
