"""The bot host end to end: a stored paper bot fed by the demo exchange's live stream makes
exactly the trades the backtest makes on the same stored candles (issue #15's first must-hold)."""

from __future__ import annotations

import asyncio

import pytest

from backtesting.simulador import ejecutar_backtest
from config.settings import settings_from_mapping
from core.exchange.demo import DemoExchangeThread, DemoOptions
from core.models import Bot, BotStatus
from core.repository import Database
from estrategias.factory import crear_estrategia
from tests.waiting import serve_until
from wsbridge.bots import WARMUP_CANDLES, BotHost

pytestmark = pytest.mark.timeout(120)
LIVE = 200
SPEED = 600
PARAMS = {"rapida": 5, "lenta": 20}


@pytest.fixture
def market():
    with DemoExchangeThread(DemoOptions(speed=SPEED)) as exchange:
        yield exchange


@pytest.mark.parametrize("stops", [{}, {"stop_loss": "0.002", "take_profit": "2atr"}])
def test_a_paper_bot_on_the_live_stream_equals_the_backtest_of_its_candles(market, tmp_path, stops):
    settings = settings_from_mapping({
        "DATA_DIR": str(tmp_path), "DEMO_PORT": str(market.port), "DEMO_SPEED": str(SPEED),
    })  # fmt: skip
    db = Database(tmp_path / "bots.db")  # empty: the host stores the warm-up history itself
    stored = db.bots.create(
        Bot(
            name="live",
            strategy="sma_cruce",
            symbol="BTCUSDT",
            interval="1m",
            params=PARAMS,
            capital=10_000,
            taker_fee=0.0005,
            maker_fee=0.0002,
            slippage_bps=1.0,
            leverage=5,
            size=0.5,
            desired_running=True,
            **stops,
        )  # fmt: skip
    )
    host = BotHost(settings, db)

    def processed() -> int:
        state = db.bots.load_broker_state(stored.id)
        return 0 if state is None else state["bar"] + 1

    asyncio.run(serve_until(host, lambda: processed() >= LIVE, 100))
    assert db.bots.get(stored.id).status is BotStatus.TRADING
    state = db.bots.load_broker_state(stored.id)
    live, start = state["bar"] + 1, state["start_time"]
    day_start_ms, day_start_equity, peak = state["marks"]  # the loss limits survive a restart
    assert day_start_ms % 86_400_000 == 0 and peak >= day_start_equity > 0
    rebuilt = host._build(db.bots.get(stored.id))
    assert rebuilt.bot.marks is not None and rebuilt.bot.marks.peak_equity == peak
    frame = db.candles.read_frame("BTCUSDT", "1m")
    first = int(frame.index[frame["open_time"] == start][0])
    # The host stored its warm-up history from REST (the closed ones of its page: the demo's
    # clock runs on between its two calls) and warmed up on up to WARMUP_CANDLES of it.
    assert first >= WARMUP_CANDLES - 10
    frame = frame.iloc[max(0, first - WARMUP_CANDLES) : first + live].reset_index(drop=True)
    assert (frame["open_time"].diff().dropna() == 60_000).all()  # no candle missing
    expected = ejecutar_backtest(
        frame, crear_estrategia("sma_cruce", **PARAMS), capital=10_000, comision=0.0005,
        comision_maker=0.0002, slippage=1.0, apalancamiento=5, tamano=0.5,
        stop_loss=float(stops["stop_loss"]) if stops else None,
        take_profit=stops.get("take_profit"), desde=start,
    ).trades  # fmt: skip
    trades = db.bots.trades(stored.id)
    assert len(trades) == len(expected) >= 3
    for trade, row in zip(trades, expected.itertuples(), strict=True):
        assert (trade.entry_time, trade.side.value) == (
            row.entry_time, "compra" if row.side == "long" else "venta",
        )  # fmt: skip
        assert trade.entry_price == pytest.approx(row.entry_price, rel=1e-12)
        assert trade.quantity == pytest.approx(row.quantity, rel=1e-9)
        if trade.open:
            assert row.exit_reason == "fin"
            continue
        assert (trade.exit_time, trade.exit_reason) == (row.exit_time, row.exit_reason)
        assert trade.exit_price == pytest.approx(row.exit_price, rel=1e-12)
        assert trade.pnl == pytest.approx(row.pnl, rel=1e-9, abs=1e-9)
        assert trade.fees == pytest.approx(row.fees, rel=1e-9, abs=1e-9)
    assert db.bots.latest_decisions(stored.id, 1)
    db.close()
