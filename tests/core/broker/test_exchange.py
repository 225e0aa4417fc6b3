"""The exchange broker against a real demo exchange over real sockets, its user stream running in
the test's event loop: protection on the exchange, faults, reconciliation and the kill switch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from itertools import count

import numpy as np
import pytest
import requests

from core.broker import Decision
from core.broker.exchange import ExchangeBroker
from core.broker.intents import MemoryIntents
from core.broker.paper import Bar
from core.errors import OutcomeUnknownError
from core.exchange.demo import DemoExchangeThread, DemoMarket, DemoOptions
from core.exchange.demo.market import STEP_MS
from core.exchange.order_requests import AlgoOrderRequest, OrderRequest
from core.exchange.rest import BinanceRest
from core.exchange.trading import TradingClient
from core.exchange.trading_types import WorkingType
from core.fills import Costs
from core.intervals import MINUTE_MS
from core.models import OrderState, OrderType, Side
from core.rules import parse_rules
from tests.waiting import until_async
from websocket.user_stream import UserStream

pytestmark = pytest.mark.timeout(60)
SPEED, SEED, SYMBOL = 600, 42, "BTCUSDT"
KEYS = {f"broker-{n:02d}": f"broker-secret-{n:02d}" for n in range(20)}
COSTS = Costs(taker_fee=0.0005, maker_fee=0.0002, leverage=2.0, size=0.5)
D = Decimal


@pytest.fixture(scope="module")
def exchange():
    options = DemoOptions(speed=SPEED, seed=SEED, faults=True, api_keys=KEYS, balance=10_000)
    server = DemoExchangeThread(options).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def accounts():
    return iter(KEYS.items())


@pytest.fixture(scope="module")
def rules(exchange):
    return parse_rules(BinanceRest(exchange.rest_url).exchange_info())[SYMBOL]


class LosingClient(TradingClient):
    """A real client that, once told to, cannot ask the exchange after a lost answer; it
    notes the dead-man's switch's countdowns it sends."""

    lose_lookups = 0

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.armed: list[int] = []

    def countdown_cancel_all(self, symbol: str, countdown_ms: int) -> None:
        self.armed.append(countdown_ms)
        super().countdown_cancel_all(symbol, countdown_ms)

    def _lookup(self, lookup, what):  # type: ignore[no-untyped-def]
        if self.lose_lookups:
            self.lose_lookups -= 1
            raise OutcomeUnknownError(f"{what}: cannot tell (test); not resending")
        return super()._lookup(lookup, what)


@pytest.fixture
def client(exchange, accounts) -> LosingClient:
    key, secret = next(accounts)
    return LosingClient(exchange.rest_url, key, secret, sync_clock=False, timeout_s=1.0,
                        backoff_s=0.05)  # fmt: skip


def _broker(client, rules, intents: MemoryIntents | None = None, **options) -> ExchangeBroker:
    options.setdefault("stop_loss", 0.02)
    options.setdefault("take_profit", 0.02)
    store = intents if intents is not None else MemoryIntents()
    return ExchangeBroker(
        client, SYMBOL, "tb", 1_000.0, COSTS, MINUTE_MS, lambda: rules, store, **options
    )


_opens = count()


def _bar(exchange) -> Bar:
    """The last closed minute at the demo's clock, priced at the mark (a fresh open time for
    every call, as consecutive candles have)."""
    now = requests.get(exchange.rest_url + "/fapi/v1/time", timeout=5).json()["serverTime"]
    premium = requests.get(
        exchange.rest_url + "/fapi/v1/premiumIndex", params={"symbol": SYMBOL}, timeout=5
    )
    mark = float(premium.json()["markPrice"])
    open_time = now - now % MINUTE_MS - MINUTE_MS + next(_opens)  # never the same id twice
    return Bar(open_time, mark, mark, mark, mark)


def _fault(exchange, path: str, **params) -> None:
    requests.post(f"{exchange.rest_url}/_demo/fault/{path}", params=params, timeout=5)


@contextlib.asynccontextmanager
async def streaming(broker: ExchangeBroker, exchange) -> AsyncIterator[UserStream]:
    """The broker fed by a UserStream in this loop, from its first snapshot on."""

    async def on_event(item) -> None:  # type: ignore[no-untyped-def]
        await asyncio.to_thread(broker.on_user_event, item)

    stream = UserStream(broker.client, exchange.ws_url, on_event, keepalive_s=2.0)
    task = asyncio.create_task(stream.run())
    try:
        await until_async(lambda: stream.stats.snapshots >= 1, 10)
        yield stream
    finally:
        await stream.close()
        await asyncio.wait_for(task, 10)


def _candle(broker: ExchangeBroker, exchange, target: float, **distances) -> list:
    return broker.on_candle(_bar(exchange), Decision(target, **distances))


def _run(scenario) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(asyncio.wait_for(scenario, 50))


def _protection(client) -> dict[OrderType, object]:
    return {a.order_type: a for a in client.open_algo_orders(SYMBOL)}


def test_an_entry_is_protected_on_the_exchange_and_an_exit_leaves_nothing(client, rules, exchange):
    async def scenario() -> None:
        broker = _broker(client, rules)
        assert await asyncio.to_thread(broker.start)
        async with streaming(broker, exchange):
            [opened] = await asyncio.to_thread(_candle, broker, exchange, 1.0)
            [position] = client.positions(SYMBOL)
            assert position.amount == D(repr(opened.quantity)) > 0 and broker.side == 1.0
            stops = _protection(client)
            stop, take = stops[OrderType.STOP_MARKET], stops[OrderType.TAKE_PROFIT_MARKET]
            for algo in (stop, take):
                assert algo.close_position and algo.working_type is WorkingType.MARK_PRICE
                assert algo.side is Side.SELL and algo.client_algo_id.startswith("tb-")
            assert stop.trigger_price == D(repr(opened.stop)) < D(repr(opened.entry_price))
            raw = opened.entry_price * 0.98
            assert raw - float(rules.tick_size) < opened.stop <= raw  # down: away from it
            [closed] = await asyncio.to_thread(_candle, broker, exchange, 0.0)
            assert (closed.reason, closed.entry_time, closed.quantity) == (
                "senal", opened.entry_time, opened.quantity,
            )  # fmt: skip
            fills = client.user_trades(SYMBOL)
            assert len(fills) == 2
            assert closed.fees == pytest.approx(float(sum(f.commission for f in fills)))
            assert closed.pnl == pytest.approx(
                float(fills[1].realized_pnl) - closed.fees - closed.funding
            )
            assert client.positions(SYMBOL) == [] and client.open_algo_orders(SYMBOL) == []
            assert broker.equity(1.0) == pytest.approx(1_000.0 + closed.pnl)

    _run(scenario())


def test_a_trailing_stop_is_placed_for_the_quantity_and_books_its_exit(client, rules, exchange):
    async def scenario() -> None:
        broker = _broker(client, rules, take_profit=None, trailing=0.001)
        assert await asyncio.to_thread(broker.start)
        async with streaming(broker, exchange):
            [opened] = await asyncio.to_thread(_candle, broker, exchange, 1.0)
            trail = _protection(client)[OrderType.TRAILING_STOP_MARKET]
            assert (trail.callback_rate, trail.reduce_only) == (D("0.1"), True)
            assert trail.quantity == D(repr(opened.quantity)) and not trail.close_position
            assert trail.client_algo_id.endswith("-m") and trail.side is Side.SELL
            stored = broker.intents.get(trail.client_algo_id)
            assert stored is not None and stored.callback_rate == D("0.1")
            await until_async(lambda: client.positions(SYMBOL) == [], 30)  # it trailed, then fired
            [closed] = await asyncio.to_thread(_candle, broker, exchange, 1.0)
            assert (closed.reason, closed.entry_time) == ("stop_movil", opened.entry_time)
            assert client.open_algo_orders(SYMBOL) == []

    _run(scenario())


def _plan_stop(exchange) -> tuple[float, float]:
    """(side, absolute stop distance) of an entry now whose stop the demo's own path reaches
    within a few seconds, but not while it is being placed."""
    now = requests.get(exchange.rest_url + "/fapi/v1/time", timeout=5).json()["serverTime"]
    market = DemoMarket(SEED)
    first = now - now % MINUTE_MS
    minutes = range(first, now + 60 * MINUTE_MS, MINUTE_MS)
    prices = np.concatenate([market.minute_prices(SYMBOL, m)[:-1] for m in minutes]) / 100
    times = first + STEP_MS * np.arange(len(prices))
    soon = prices[(times >= now - MINUTE_MS) & (times <= now + 6 * MINUTE_MS)]
    later = prices[times > now + 6 * MINUTE_MS]
    entry = float(prices[times <= now][-1])
    long_room, short_room = soon.min() - later.min(), later.max() - soon.max()
    assert max(long_room, short_room) > 5, "the demo path hardly moves: replan"
    # Close to the extreme before the stop is placed: room for the entry to fill elsewhere.
    if long_room >= short_room:
        return 1.0, entry - (soon.min() - long_room / 4)
    return -1.0, (soon.max() + short_room / 4) - entry


def test_a_stop_that_triggers_closes_the_position_and_the_trade_is_reported(
    client, rules, exchange
):
    async def scenario() -> None:
        broker = _broker(client, rules, stop_loss=None, take_profit=None)
        assert await asyncio.to_thread(broker.start)
        async with streaming(broker, exchange):
            side, distance = _plan_stop(exchange)
            [opened] = await asyncio.to_thread(
                _candle, broker, exchange, side, stop_distance=distance
            )
            assert np.isfinite(opened.stop) and not np.isfinite(opened.take)
            await until_async(lambda: broker.book.trade is None, 15)  # the stream booked the close
            trades = await asyncio.to_thread(_candle, broker, exchange, side)  # decision held
            [closed] = trades
            assert closed.reason == "stop_loss" and closed.exit_price is not None
            assert side * (opened.stop - closed.exit_price) >= 0 or closed.exit_price == opened.stop
            _, exit_fill = client.user_trades(SYMBOL)
            assert closed.pnl == pytest.approx(
                float(exit_fill.realized_pnl) - closed.fees - closed.funding
            )
            assert client.positions(SYMBOL) == [] and client.open_algo_orders(SYMBOL) == []
            assert broker.side == 0.0  # held, not re-entered: as the backtester does

    _run(scenario())


def test_a_missing_stop_is_placed_again_on_the_next_candle(client, rules, exchange):
    broker = _broker(client, rules)
    assert broker.start()
    _candle(broker, exchange, 1.0)
    stop = _protection(client)[OrderType.STOP_MARKET]
    client.cancel_algo_order(algo_id=stop.algo_id)  # behind the broker's back
    assert _candle(broker, exchange, 1.0) == []
    again = _protection(client)
    assert again[OrderType.STOP_MARKET].client_algo_id == stop.client_algo_id + "2"
    assert again[OrderType.STOP_MARKET].trigger_price == stop.trigger_price
    assert len(client.open_algo_orders(SYMBOL)) == 2  # the take-profit was never doubled
    _candle(broker, exchange, 1.0)
    assert len(client.open_algo_orders(SYMBOL)) == 2
    broker.kill()


def test_a_stop_refused_as_already_triggered_exits_at_once(client, rules, exchange):
    broker = _broker(client, rules, take_profit=None)
    assert broker.start()
    [opened] = _candle(broker, exchange, 1.0)
    stop = _protection(client)[OrderType.STOP_MARKET]
    client.cancel_algo_order(algo_id=stop.algo_id)
    _fault(exchange, "order", mode="reject", code="-2021")
    [closed] = _candle(broker, exchange, 1.0)
    assert (closed.reason, closed.entry_time) == ("stop_loss", opened.entry_time)
    assert client.positions(SYMBOL) == [] and client.open_algo_orders(SYMBOL) == []
    exit_order = client.get_order(SYMBOL, client_order_id=f"tb-{stop.client_algo_id[3:-2]}-r")
    assert exit_order.reduce_only and exit_order.type is OrderType.MARKET


@pytest.mark.parametrize("code", ["-2019", "-4164"])
def test_a_refused_entry_is_reported_and_not_resent_until_the_next_signal(
    client, rules, exchange, code
):
    broker = _broker(client, rules)
    assert broker.start()
    _fault(exchange, "order", mode="reject", code=code)
    assert _candle(broker, exchange, 1.0) == []
    [refusal] = broker.refusals
    assert f"refused: {code}" in refusal
    [rejected] = [i for i in broker.intents.all() if i.leg == "e"]
    assert rejected.state is OrderState.REJECTED
    assert client.positions(SYMBOL) == [] and client.user_trades(SYMBOL) == []
    assert _candle(broker, exchange, 1.0) == []  # the same decision held: nothing resent
    assert len(broker.intents.all()) == 1
    assert _candle(broker, exchange, 0.0) == []
    [opened] = _candle(broker, exchange, 1.0)  # the next signal enters
    assert opened.side == 1.0 and len(client.user_trades(SYMBOL)) == 1
    broker.kill()


def test_a_silent_submit_is_one_order_resolved_at_reconcile(client, rules, exchange):
    broker = _broker(client, rules)
    assert broker.start()
    client.lose_lookups = 1
    _fault(exchange, "order", mode="silent", hold_s="1.5")
    assert _candle(broker, exchange, 1.0) == []  # the answer was lost and nobody could ask
    [pending] = broker.intents.pending()
    assert pending.leg == "e"
    assert broker.reconcile() is True
    resolved = broker.intents.get(pending.client_id)
    assert resolved is not None and resolved.state is OrderState.FILLED
    [fill] = client.user_trades(SYMBOL)
    [position] = client.positions(SYMBOL)
    assert position.amount == fill.qty and broker.book.trade is not None
    assert set(_protection(client)) == {OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET}
    broker.kill()


def test_reconcile_adopts_the_bots_orders_and_reports_the_others(client, rules, exchange):
    broker = _broker(client, rules)
    assert broker.start()
    price = (client.premium_index(SYMBOL).mark_price * D("0.8")).quantize(D("0.1"))
    for cid in ("tb-1700000000000-e", "by-hand-1"):
        client.place_order(OrderRequest(SYMBOL, Side.BUY, OrderType.LIMIT, D("0.010"), cid,
                                        price=price))  # fmt: skip
    assert broker.reconcile() is True
    adopted = broker.intents.get("tb-1700000000000-e")
    assert adopted is not None and adopted.state is OrderState.OPEN
    assert list(broker.external) == ["by-hand-1"]
    broker.kill()
    assert client.open_orders(SYMBOL) == []


def test_protection_left_when_the_position_closes_elsewhere_is_cancelled(client, rules, exchange):
    async def scenario() -> None:
        broker = _broker(client, rules)
        assert await asyncio.to_thread(broker.start)
        async with streaming(broker, exchange):
            [opened] = await asyncio.to_thread(_candle, broker, exchange, 1.0)
            assert len(client.open_algo_orders(SYMBOL)) == 2
            quantity = D(repr(opened.quantity))
            client.place_order(OrderRequest(SYMBOL, Side.SELL, OrderType.MARKET, quantity,
                                            "manual-close", reduce_only=True))  # fmt: skip
            await until_async(lambda: client.open_algo_orders(SYMBOL) == [], 10)
            [closed] = await asyncio.to_thread(_candle, broker, exchange, 1.0)
            assert closed.reason == "externo" and client.positions(SYMBOL) == []

    _run(scenario())


def test_an_orphan_stop_of_the_bot_is_cancelled_when_flat(client, rules, exchange):
    broker = _broker(client, rules)
    assert broker.start()
    below = (client.premium_index(SYMBOL).mark_price * D("0.8")).quantize(D("0.1"))
    client.place_algo_order(AlgoOrderRequest(
        SYMBOL, Side.SELL, OrderType.STOP_MARKET, "tb-1700000000000-s", quantity=D("0.010"),
        trigger_price=below, reduce_only=True))  # fmt: skip
    assert _candle(broker, exchange, 0.0) == []
    assert client.open_algo_orders(SYMBOL) == []


def test_kill_leaves_no_order_algo_order_or_position(client, rules, exchange):
    now = [0.0]
    broker = _broker(client, rules, monotonic=lambda: now[0])
    assert broker.start()
    _candle(broker, exchange, -1.0)
    assert client.armed == [120_000]  # armed at start; not renewed within a quarter of it
    now[0] = 30.0
    price = (client.premium_index(SYMBOL).mark_price * D("0.8")).quantize(D("0.1"))
    client.place_order(OrderRequest(SYMBOL, Side.BUY, OrderType.LIMIT, D("0.010"), "other-1",
                                    price=price))  # fmt: skip
    assert _candle(broker, exchange, -1.0) == []
    assert client.armed == [120_000, 120_000]  # renewed by the candle after 30 s
    [closed] = broker.kill()
    assert closed.reason == "kill" and closed.side == -1.0
    assert client.open_orders(SYMBOL) == [] and client.open_algo_orders(SYMBOL) == []
    assert client.positions(SYMBOL) == [] and client.armed[-1] == 0


def test_an_entry_below_the_minimum_notional_is_refused_with_its_reason(client, rules, exchange):
    broker = ExchangeBroker(client, SYMBOL, "tiny", 20.0, COSTS, MINUTE_MS, lambda: rules)
    assert broker.start()
    assert _candle(broker, exchange, 1.0) == []
    assert client.positions(SYMBOL) == [] and broker.intents.pending() == []
    [reason] = broker.refusals
    assert "minimum quantity" in reason or "notional" in reason


def test_a_dropped_user_stream_loses_no_fill(client, rules, exchange):
    async def scenario() -> None:
        broker = _broker(client, rules)
        assert await asyncio.to_thread(broker.start)
        async with streaming(broker, exchange) as stream:
            [opened] = await asyncio.to_thread(_candle, broker, exchange, 1.0)
            _fault(exchange, "drop_user_streams")
            quantity = D(repr(opened.quantity))
            close = OrderRequest(SYMBOL, Side.SELL, OrderType.MARKET, quantity, "while-down",
                                 reduce_only=True)  # fmt: skip
            await asyncio.to_thread(client.place_order, close)
            # The resnapshot books the close the stream missed and clears the protection.
            await until_async(lambda: stream.stats.snapshots >= 2 and broker.book.trade is None
                              and client.open_algo_orders(SYMBOL) == [], 10)  # fmt: skip
            [closed] = await asyncio.to_thread(_candle, broker, exchange, 1.0)
            _, exit_fill = client.user_trades(SYMBOL)
            assert closed.exit_price == float(exit_fill.price)

    _run(scenario())


def test_a_restart_adopts_the_position_and_its_protection_without_doubling(client, rules, exchange):
    store = MemoryIntents()
    first = _broker(client, rules, store)
    assert first.start()
    _candle(first, exchange, 1.0)
    placed = sorted(a.client_algo_id for a in client.open_algo_orders(SYMBOL))
    second = _broker(client, rules, store)  # the process restarted
    assert second.start() is True and second.side == 1.0
    assert sorted(a.client_algo_id for a in client.open_algo_orders(SYMBOL)) == placed
    stop = _protection(client)[OrderType.STOP_MARKET]
    client.cancel_algo_order(algo_id=stop.algo_id)  # as if it died after the fill, before this
    third = _broker(client, rules, MemoryIntents())  # ... and its intents were lost too
    assert third.start() is True and third.side == 1.0
    again = _protection(client)
    assert len(client.open_algo_orders(SYMBOL)) == 2
    assert again[OrderType.STOP_MARKET].trigger_price == stop.trigger_price
    [closed] = [t for t in third.kill() if not t.is_open]
    assert closed.reason == "kill" and client.positions(SYMBOL) == []
