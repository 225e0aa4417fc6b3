"""The demo's state file: a restart is invisible to the accounts, orders and positions."""

import json

import pytest
from binance.client import Client

from config.settings import DEFAULT_DEMO_API_KEY, DEFAULT_DEMO_API_SECRET
from core.errors import ConfigError
from core.exchange.demo import DemoExchangeThread, DemoMarket, DemoOptions
from core.exchange.demo import state as demo_state
from core.exchange.demo.accounts import Accounts
from core.exchange.demo.matching import MatchingEngine
from core.exchange.demo.orders import AlgoOrder, Order
from core.intervals import to_ms

pytestmark = pytest.mark.timeout(60)

T0 = to_ms("2026-06-01T07:00:00")
HOUR = 3_600_000


def _engine(events):
    accounts = Accounts({"k": "s"}, 10_000)
    engine = MatchingEngine(DemoMarket(42), accounts, 42, sink=lambda _a, e: events.append(e))
    return engine, accounts


def _trade(engine, accounts):
    account = accounts.get("k", T0)
    price = engine.market.price_at("BTCUSDT", T0)

    def order(side, kind, qty, units=0):
        return Order(
            order_id=engine.new_order_id(), client_id=f"c{engine.next_sequence()}",
            symbol="BTCUSDT", side=side, type=kind, quantity=qty, price=units,
            time_in_force="GTC", reduce_only=False, time_ms=T0, sequence=engine.next_sequence(),
        )  # fmt: skip

    engine.submit(account, order("BUY", "MARKET", 50), T0)
    for k in range(1, 6):
        engine.submit(account, order("SELL", "LIMIT", 5, price + 30_000 * k), T0)
        engine.submit(account, order("BUY", "LIMIT", 5, price - 30_000 * k), T0)
    trail = AlgoOrder(
        algo_id=engine.new_algo_id(), client_algo_id="trail", symbol="BTCUSDT", side="SELL",
        order_type="TRAILING_STOP_MARKET", quantity=0, price=0, trigger_price=0,
        time_in_force="GTC", working_type="MARK_PRICE", reduce_only=False, close_position=True,
        create_ms=T0, callback_rate="0.5",
    )  # fmt: skip
    engine.submit_algo(account, trail, T0)


def test_a_restart_from_the_snapshot_gives_the_same_fills_as_never_stopping():
    steady_events: list[dict] = []
    steady, steady_accounts = _engine(steady_events)
    _trade(steady, steady_accounts)
    steady.advance(T0 + 12 * HOUR)

    first_events: list[dict] = []
    first, first_accounts = _engine(first_events)
    _trade(first, first_accounts)
    first.advance(T0 + 3 * HOUR)
    saved = json.loads(json.dumps(demo_state.snapshot(first_accounts, first, T0 + 3 * HOUR)))
    second_events: list[dict] = []
    second, second_accounts = _engine(second_events)
    demo_state.restore(saved, second_accounts, second)
    second.advance(T0 + 12 * HOUR)

    assert first_events + second_events == steady_events
    assert len([e for e in second_events if e["e"] == "ORDER_TRADE_UPDATE"]) > 0
    after = demo_state.snapshot(second_accounts, second, 0)
    assert after == demo_state.snapshot(steady_accounts, steady, 0)


def test_a_state_that_is_not_one_is_refused(tmp_path):
    bad = tmp_path / "state.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot be read"):
        demo_state.load(bad)
    with pytest.raises(ConfigError, match="version-1"):
        demo_state.restore({"version": 99}, Accounts({}, 1), None)
    with pytest.raises(ConfigError, match="--state"):
        DemoOptions(state_file=str(tmp_path / "missing" / "state.json"))


def _client(server) -> Client:
    client = Client(DEFAULT_DEMO_API_KEY, DEFAULT_DEMO_API_SECRET, ping=False)
    client.FUTURES_URL = server.rest_url + "/fapi"
    return client


def test_orders_positions_and_fills_survive_a_restart_of_the_server(tmp_path):
    path = str(tmp_path / "demo-state.json")
    with DemoExchangeThread(DemoOptions(state_file=path)) as server:
        client = _client(server)
        client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
        mark = float(client.futures_mark_price(symbol="BTCUSDT")["markPrice"])
        resting = client.futures_create_order(
            symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002",
            price=f"{mark * 0.96:.1f}",
        )  # fmt: skip
        before = (
            client.futures_position_information(symbol="BTCUSDT"),
            client.futures_account_trades(symbol="BTCUSDT"),
            client.futures_get_open_orders(symbol="BTCUSDT"),
            client.futures_account_balance()[0]["balance"],
        )
    with DemoExchangeThread(DemoOptions(state_file=path)) as server:
        client = _client(server)
        positions = client.futures_position_information(symbol="BTCUSDT")
        assert [p["positionAmt"] for p in positions] == ["0.010"]
        assert positions[0]["entryPrice"] == before[0][0]["entryPrice"]
        assert client.futures_account_trades(symbol="BTCUSDT") == before[1]
        assert client.futures_get_open_orders(symbol="BTCUSDT") == before[2]
        assert client.futures_account_balance()[0]["balance"] == before[3]
        again = client.futures_create_order(
            symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.010"
        )
        assert again["orderId"] > resting["orderId"]  # ids never repeat across restarts
