"""Exchange bots in the bot host, on the demo exchange's matching engine over real sockets
(TRADING_MODE=testnet, MARKET=demo): the same strategy enters and exits on the candles the
backtest does, every order is in the database before the exchange has it, and the kill switch
leaves the account with nothing open."""

from __future__ import annotations

import asyncio

import pytest
import requests

from backtesting.simulador import ejecutar_backtest
from config.settings import settings_from_mapping
from core.exchange.demo import DemoExchangeThread, DemoOptions
from core.exchange.trading import trading_client
from core.models import Bot, BotMode, BotStatus, OrderState
from core.repository import Database
from estrategias.factory import crear_estrategia
from tests.waiting import serve_until
from wsbridge.bots import WARMUP_CANDLES, BotHost
from wsbridge.exchange_bots import client_prefix

pytestmark = pytest.mark.timeout(240)
SPEED = 60  # a 1m candle a second (the speed): the 250 ms push and a step fit in one
LIVE = 50  # candles traded live: about 5 trades, within the CI time budget
PARAMS = {"rapida": 3, "lenta": 12}
SYMBOL = "BTCUSDT"


@pytest.fixture
def market():
    with DemoExchangeThread(DemoOptions(speed=SPEED, balance=10_000, faults=True)) as exchange:
        yield exchange


def _settings(market, tmp_path):
    return settings_from_mapping({
        "DATA_DIR": str(tmp_path), "DEMO_PORT": str(market.port), "TRADING_MODE": "testnet",
        "DEMO_SPEED": str(SPEED),
    })  # fmt: skip


def _bot(**extra) -> Bot:
    return Bot(
        name="en-exchange", strategy="sma_cruce", symbol=SYMBOL, interval="1m", params=PARAMS,
        mode=BotMode.TESTNET, capital=1_000, taker_fee=0.0005, maker_fee=0.0002, leverage=2,
        size=0.5, desired_running=True, **extra,
    )  # fmt: skip


def _bars(db: Database, bot_id: int) -> int:
    state = db.bots.load_broker_state(bot_id)
    return 0 if state is None else state["book"]["bar"] + 1


def test_an_exchange_bot_enters_and_exits_on_the_backtests_candles(market, tmp_path):
    settings = _settings(market, tmp_path)
    db = Database(tmp_path / "bots.db")
    stored = db.bots.create(_bot())
    host = BotHost(settings, db)
    asyncio.run(serve_until(host, lambda: _bars(db, stored.id) >= LIVE, 170))
    assert db.bots.get(stored.id).status is BotStatus.TRADING
    book = db.bots.load_broker_state(stored.id)["book"]
    first = book["last_open"] - book["bar"] * 60_000  # the first candle it traded
    frame = db.candles.read_frame(SYMBOL, "1m")
    at = int(frame.index[frame["open_time"] == first][0])
    assert at >= WARMUP_CANDLES - 10
    frame = frame.iloc[at - WARMUP_CANDLES : int(book["bar"]) + at + 1].reset_index(drop=True)
    assert (frame["open_time"].diff().dropna() == 60_000).all()  # no candle missing
    expected = ejecutar_backtest(
        frame, crear_estrategia("sma_cruce", **PARAMS), capital=1_000, comision=0.0005,
        comision_maker=0.0002, apalancamiento=2, tamano=0.5, desde=first,
    ).trades  # fmt: skip
    # Its decision on the last candle fills in the next one, which the backtest does not have.
    last = book["last_open"]
    trades = [t for t in db.bots.trades(stored.id) if t.entry_time <= last]
    assert len(trades) == len(expected) >= 3
    for trade, row in zip(trades, expected.itertuples(), strict=True):
        side = "compra" if row.side == "long" else "venta"
        assert (trade.entry_time, trade.side.value) == (row.entry_time, side)
        if trade.open or trade.exit_time > last:
            assert row.exit_reason == "fin"
        else:
            assert (trade.exit_time, trade.exit_reason) == (row.exit_time, "senal")
        # the exchange fills at its price just after the close, the backtest at the next open
        assert trade.entry_price == pytest.approx(row.entry_price, rel=0.01)

    client = trading_client(settings)
    fills = client.user_trades(SYMBOL)
    orders = db.orders.find(bot_id=stored.id, limit=1_000)
    prefix = client_prefix(db.bots.get(stored.id))
    assert all(o.client_order_id.startswith(prefix + "-") for o in orders)
    filled = {int(o.exchange_order_id) for o in orders if o.state is OrderState.FILLED}
    assert filled == {f.order_id for f in fills}  # the database equals the exchange
    assert not [o for o in orders if o.state is OrderState.PENDING]
    db.close()


def test_a_refusal_is_shown_and_the_kill_switch_leaves_nothing_open(market, tmp_path):
    settings = _settings(market, tmp_path)
    fault = {"mode": "reject", "code": "-2019"}  # the first entry: margin is insufficient
    requests.post(f"{market.rest_url}/_demo/fault/order", params=fault, timeout=5)
    db = Database(tmp_path / "bots.db")
    stored = db.bots.create(_bot(stop_loss="0.05", take_profit="0.05"))
    client = trading_client(settings)
    published: list[dict] = []
    host = BotHost(settings, db, publish=published.append)

    def protected() -> bool:
        return (
            any(p.amount for p in client.positions(SYMBOL))
            and len(client.open_algo_orders(SYMBOL)) == 2
        )

    asyncio.run(serve_until(host, protected, 120))
    db.bots.add_command(None, "matar", close=True)

    async def kill() -> None:
        await host.commands()
        if host.account is not None:
            await host.account.close()

    asyncio.run(kill())
    assert client.positions() == [] or not any(p.amount for p in client.positions())
    assert client.open_orders() == [] and client.open_algo_orders() == []
    bot = db.bots.get(stored.id)
    assert bot.status is BotStatus.STOPPED and not bot.desired_running
    [closed] = [t for t in db.bots.trades(stored.id) if not t.open][-1:]
    assert closed.exit_reason == "parada"
    reasons = [d.reason for d in db.bots.latest_decisions(stored.id, 100)]
    assert any(r.startswith("rechazada por el exchange") and "-2019" in r for r in reasons)
    # Every change of every order went to the browsers as the order's row, as /ordenes shows it.
    orders = [m["orden"] for m in published if m["tipo"] == "orden"]
    stored_orders = {o.client_order_id: o for o in db.orders.find(bot_id=stored.id, limit=100)}
    assert {o["id_cliente"] for o in orders} == set(stored_orders)
    last = {o["id_cliente"]: o for o in orders}  # the latest message of each order
    assert all(last[c]["estado"] == o.state.value for c, o in stored_orders.items())
    db.close()
