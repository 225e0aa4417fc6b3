"""sma_cruce on hand-made closes: no position before the first cross, per mode, live and batch."""

import numpy as np
import pandas as pd
import pytest

from backtesting.simulador import ejecutar_backtest
from core.models import Candle, CrossKind
from estrategias.factory import crear_estrategia

MINUTE = 60_000
T0 = 1_704_067_200_000

# SMA 2 / SMA 3 of these closes: fast above slow from bar 2 on (no cross: both just appeared),
# a death cross at bar 6 (103.5 < 104), a golden cross at bar 10 (102.5 > 102).
CLOSES = [101, 102, 103, 104, 105, 104, 103, 102, 101, 102, 103, 104, 105]
EXPECTED = {
    "ambos": [0] * 6 + [-1] * 4 + [1] * 3,
    "solo_largo": [0] * 10 + [1] * 3,
    "solo_corto": [0] * 6 + [-1] * 4 + [0] * 3,
}


def _velas(closes) -> pd.DataFrame:
    close = np.asarray(closes, dtype=float)
    return pd.DataFrame({
        "open_time": T0 + np.arange(len(close), dtype=np.int64) * MINUTE,
        "open": close, "high": close, "low": close, "close": close, "volume": 1.0,
    })  # fmt: skip


def _live(strategy, velas: pd.DataFrame, history: int | None = None) -> list[float]:
    live = strategy.live(history)
    return [
        live.update(Candle("BTCUSDT", "1m", int(r.open_time), r.open, r.high, r.low, r.close, 1))
        for r in velas.itertuples()
    ]


@pytest.mark.parametrize("modo", sorted(EXPECTED))
def test_no_position_before_the_first_cross(modo):
    velas = _velas(CLOSES)
    strategy = crear_estrategia("sma_cruce", rapida=2, lenta=3, modo=modo)
    positions = strategy.target_positions(velas)
    assert positions.tolist() == EXPECTED[modo]
    assert _live(strategy, velas) == EXPECTED[modo]


def test_the_first_trade_opens_after_the_first_cross():
    velas = _velas(CLOSES)
    strategy = crear_estrategia("sma_cruce", rapida=2, lenta=3)
    crosses = strategy.cruces(velas, "BTCUSDT", "1m")
    assert [(c.open_time, c.kind) for c in crosses] == [
        (T0 + 6 * MINUTE, CrossKind.DEATH),
        (T0 + 10 * MINUTE, CrossKind.GOLDEN),
    ]
    trades = ejecutar_backtest(velas, strategy, comision=0).trades
    assert trades[["entry_time", "side", "entry_price", "exit_reason"]].values.tolist() == [
        [T0 + 7 * MINUTE, "short", 102.0, "senal"],
        [T0 + 11 * MINUTE, "long", 104.0, "fin"],
    ]


def test_averages_that_never_cross_never_trade():
    velas = _velas(np.arange(101.0, 130.0))
    strategy = crear_estrategia("sma_cruce", rapida=2, lenta=3)
    assert not strategy.target_positions(velas).any()
    assert ejecutar_backtest(velas, strategy).trades.empty


@pytest.mark.parametrize(("modo", "last"), [("ambos", -1), ("solo_corto", -1), ("solo_largo", 0)])
def test_live_keeps_the_side_after_its_history_scrolled_past_the_cross(modo, last):
    # Up, then down for good: a single (death) cross at bar 6, long gone from a 10-candle history.
    velas = _velas([101, 102, 103, 104, 105, 106, *range(105, 65, -1)])
    strategy = crear_estrategia("sma_cruce", rapida=2, lenta=3, modo=modo)
    assert strategy.cruces(velas.iloc[-10:], "BTCUSDT", "1m") == []
    batch = strategy.target_positions(velas)
    assert _live(strategy, velas, history=10) == batch.tolist()
    assert batch[-1] == last and batch[:6].tolist() == [0] * 6
