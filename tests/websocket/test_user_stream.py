"""The user data stream client over real sockets.

A scripted WebSocket server on 127.0.0.1 with a stand-in for the REST side pins down the order of
what the consumer sees (snapshot first, after every reconnect and key rotation), the keep-alive
rhythm on an injected clock, and the listen key's secrecy; the demo exchange then shows the same
with its real orders, fills and stream faults.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from decimal import Decimal

import pytest
import requests
from websockets.asyncio.server import serve

from config.settings import DEFAULT_DEMO_API_KEY, DEFAULT_DEMO_API_SECRET
from core.errors import ListenKeyError
from core.exchange.demo import DemoExchangeThread, DemoOptions
from core.exchange.order_requests import OrderRequest
from core.exchange.trading import TradingClient
from core.exchange.trading_types import AccountSnapshot, ExchangeOrder, ExecutionType, OrderStatus
from core.exchange.user_events import AccountUpdate, AlgoUpdate, OrderUpdate
from core.models import OrderType, Side, TimeInForce
from tests.core.exchange.test_trading_types import ACCOUNT_UPDATE, ALGO_UPDATE, ORDER_TRADE_UPDATE
from tests.websocket.helpers import until
from websocket.user_stream import UserStream, user_stream_url

pytestmark = pytest.mark.timeout(60)
D = Decimal
CLOSE = object()  # in a session script: the server closes the connection there


def _order_event(order_id: int, at: int, status: str = "NEW") -> dict:
    event = copy.deepcopy(ORDER_TRADE_UPDATE)
    event["T"] = event["o"]["T"] = at
    event["o"].update(i=order_id, X=status, x="NEW" if status == "NEW" else "TRADE")
    return event


class FakeRest:
    """The REST side of a TradingClient: listen keys and snapshots, counted."""

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.issued: list[str] = []
        self.keepalive_times: list[float] = []
        self.closed: list[str] = []
        self.snapshots = 0
        self.open_orders: tuple[ExchangeOrder, ...] = ()
        self.keepalive_error: Exception | None = None

    def new_listen_key(self) -> str:
        self.issued.append(f"{'Lk9' * 20}{len(self.issued):04d}")  # 64 letters and digits
        return self.issued[-1]

    def keep_alive_listen_key(self, key: str) -> None:
        error, self.keepalive_error = self.keepalive_error, None
        if error is not None:  # once: the next key is a good one
            raise error
        self.keepalive_times.append(self.clock())

    def close_listen_key(self, key: str) -> None:
        self.closed.append(key)

    def snapshot(self) -> AccountSnapshot:
        self.snapshots += 1
        return AccountSnapshot(self.open_orders, (), (), (), self.snapshots)


class WsStub:
    """Serves /private/ws: each connection plays the next script (events, then maybe CLOSE)."""

    def __init__(self) -> None:
        self.sessions: list[list] = []
        self.paths: list[str] = []
        self.refuse_first = False
        self.port = 0

    def process_request(self, connection, request):  # type: ignore[no-untyped-def]
        self.paths.append(request.path)
        if self.refuse_first:
            self.refuse_first = False
            return connection.respond(400, '{"code":-1125,"msg":"This listenKey does not exist."}')
        return None

    async def handler(self, ws) -> None:  # type: ignore[no-untyped-def]
        for item in self.sessions.pop(0) if self.sessions else []:
            if item is CLOSE:
                await ws.close()
                return
            await ws.send(item if isinstance(item, str) else json.dumps(item))
        await ws.wait_closed()


class Collector:
    def __init__(self) -> None:
        self.items: list = []

    async def __call__(self, item) -> None:  # type: ignore[no-untyped-def]
        self.items.append(item)

    def kinds(self) -> list[str]:
        return [type(i).__name__ for i in self.items]


async def _with_stub(stub: WsStub, scenario) -> None:  # type: ignore[no-untyped-def]
    async with serve(stub.handler, "127.0.0.1", 0, process_request=stub.process_request) as server:
        stub.port = server.sockets[0].getsockname()[1]
        await asyncio.wait_for(scenario(f"ws://127.0.0.1:{stub.port}"), timeout=30)


async def _running(stream: UserStream, body) -> None:  # type: ignore[no-untyped-def]
    task = asyncio.create_task(stream.run())
    try:
        await body()
    finally:
        await stream.close()
        await asyncio.wait_for(task, timeout=10)


def test_the_url_carries_the_key_on_the_private_path():
    assert user_stream_url("wss://127.0.0.1:9100/", "abc") == (
        "wss://127.0.0.1:9100/private/ws?listenKey=abc"
    )


def test_a_snapshot_comes_first_then_live_events_in_order():
    rest, stub, seen = FakeRest(), WsStub(), Collector()
    stub.sessions = [[_order_event(1, 1000), ACCOUNT_UPDATE, ALGO_UPDATE]]

    async def scenario(ws_base: str) -> None:
        stream = UserStream(rest, ws_base, seen)  # type: ignore[arg-type]

        async def body() -> None:
            await until(lambda: len(seen.items) == 4, "snapshot and three events")

        await _running(stream, body)

    asyncio.run(_with_stub(stub, scenario))
    assert seen.kinds() == ["AccountSnapshot", "OrderUpdate", "AccountUpdate", "AlgoUpdate"]
    assert stub.paths == [f"/private/ws?listenKey={rest.issued[0]}"]
    assert rest.closed == rest.issued  # close() gives the key back


def test_a_drop_reconnects_and_snapshots_again_before_later_events():
    rest, stub, seen = FakeRest(), WsStub(), Collector()
    stub.sessions = [[_order_event(1, 1000), CLOSE], [_order_event(2, 2000)]]

    async def scenario(ws_base: str) -> None:
        stream = UserStream(rest, ws_base, seen)  # type: ignore[arg-type]

        async def body() -> None:
            await until(lambda: len(seen.items) == 4, "two snapshots and two events")
            assert (stream.stats.connects, stream.stats.snapshots) == (2, 2)

        await _running(stream, body)

    asyncio.run(_with_stub(stub, scenario))
    assert seen.kinds() == ["AccountSnapshot", "OrderUpdate", "AccountSnapshot", "OrderUpdate"]
    assert [i.order_id for i in seen.items if isinstance(i, OrderUpdate)] == [1, 2]
    assert len(rest.issued) == 1 and stub.paths[0] == stub.paths[1]  # the key was still good


def test_an_expired_key_is_rotated_and_a_snapshot_follows():
    rest, stub, seen = FakeRest(), WsStub(), Collector()
    expired = {"e": "listenKeyExpired", "E": 5000, "listenKey": "x"}
    stub.sessions = [[expired, _order_event(9, 4000)], [_order_event(2, 6000)]]

    async def scenario(ws_base: str) -> None:
        stream = UserStream(rest, ws_base, seen)  # type: ignore[arg-type]

        async def body() -> None:
            await until(lambda: len(seen.items) == 3, "two snapshots and one event")
            assert stream.stats.rotations == 1

        await _running(stream, body)

    asyncio.run(_with_stub(stub, scenario))
    assert seen.kinds() == ["AccountSnapshot", "AccountSnapshot", "OrderUpdate"]
    assert seen.items[2].order_id == 2  # nothing after the expiry on the old key is used
    assert stub.paths == [f"/private/ws?listenKey={key}" for key in rest.issued]
    assert len(rest.issued) == 2


def test_keep_alive_runs_every_interval_of_the_injected_clock_and_minus_1125_rotates():
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0.005)  # let the loop run; the fake clock carries the time

    rest, stub, seen = FakeRest(clock=lambda: now[0]), WsStub(), Collector()

    async def scenario(ws_base: str) -> None:
        stream = UserStream(rest, ws_base, seen, clock=lambda: now[0], sleep=sleep)  # type: ignore[arg-type]

        async def body() -> None:
            await until(lambda: len(rest.keepalive_times) >= 3, "three keep-alives")
            rest.keepalive_error = ListenKeyError("This listenKey does not exist.", code=-1125)
            await until(lambda: len(rest.issued) == 2 and rest.snapshots == 2, "a new key")

        await _running(stream, body)

    asyncio.run(_with_stub(stub, scenario))
    first = rest.keepalive_times[:3]
    assert first == [1800.0, 3600.0, 5400.0]  # every 30 minutes of the injected clock
    assert seen.kinds()[:2] == ["AccountSnapshot", "AccountSnapshot"]
    assert stub.paths[-1] == f"/private/ws?listenKey={rest.issued[1]}"


def test_an_unreadable_event_is_replaced_by_a_fresh_snapshot():
    rest, stub, seen = FakeRest(), WsStub(), Collector()
    broken = copy.deepcopy(ORDER_TRADE_UPDATE)
    broken["o"]["z"] = "lots"
    stub.sessions = [["not json", broken, _order_event(3, 3000)]]

    async def scenario(ws_base: str) -> None:
        stream = UserStream(rest, ws_base, seen)  # type: ignore[arg-type]

        async def body() -> None:
            await until(lambda: len(seen.items) == 4, "three snapshots and one event")

        await _running(stream, body)

    asyncio.run(_with_stub(stub, scenario))
    assert seen.kinds() == ["AccountSnapshot"] * 3 + ["OrderUpdate"]


def test_an_event_older_than_the_snapshot_copy_of_its_order_is_dropped():
    rest, stub, seen = FakeRest(), WsStub(), Collector()
    rest.open_orders = (
        ExchangeOrder(7, "c7", "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.NEW, D(1),
                      D(1), D(0), D(0), False, False, TimeInForce.GTC, 2000),
    )  # fmt: skip
    stub.sessions = [[_order_event(7, 1000), _order_event(7, 3000, "FILLED")]]

    async def scenario(ws_base: str) -> None:
        stream = UserStream(rest, ws_base, seen)  # type: ignore[arg-type]

        async def body() -> None:
            await until(lambda: len(seen.items) == 2, "snapshot and the newer event")
            assert stream.stats.dropped_stale == 1

        await _running(stream, body)

    asyncio.run(_with_stub(stub, scenario))
    assert [i.transaction_time for i in seen.items if isinstance(i, OrderUpdate)] == [3000]


def test_a_refused_key_is_replaced_and_the_key_never_reaches_the_logs(caplog):
    caplog.set_level(logging.DEBUG)
    rest, stub, seen = FakeRest(), WsStub(), Collector()
    stub.refuse_first = True
    stub.sessions = [[_order_event(1, 1000), CLOSE], [_order_event(2, 2000)]]

    async def scenario(ws_base: str) -> None:
        stream = UserStream(rest, ws_base, seen)  # type: ignore[arg-type]

        async def body() -> None:
            await until(lambda: len(seen.items) == 4, "two sessions")

        await _running(stream, body)

    asyncio.run(_with_stub(stub, scenario))
    assert len(rest.issued) == 2 and stub.paths[1].endswith(rest.issued[1])
    # Everything but the stub server's own lines (a real exchange's logs are not ours).
    ours = [r for r in caplog.records if not r.name.startswith("websockets.server")]
    logged = "\n".join(r.getMessage() for r in ours)
    assert "GET /private/ws?listenKey=*** HTTP/1.1" in logged  # the handshake was logged, redacted
    for key in rest.issued:
        assert key not in logged


# ---- against the demo exchange ----------------------------------------------------------------


@pytest.fixture
def demo():
    keys = {DEFAULT_DEMO_API_KEY: DEFAULT_DEMO_API_SECRET}
    exchange = DemoExchangeThread(
        DemoOptions(speed=1, faults=True, api_keys=keys, balance=2500)
    ).start()
    yield exchange
    exchange.stop()


def _client(demo) -> TradingClient:
    return TradingClient(
        demo.rest_url, DEFAULT_DEMO_API_KEY, DEFAULT_DEMO_API_SECRET, sync_clock=False
    )


def _needs_user_stream(demo, client: TradingClient) -> None:
    """The demo exchange serves the user stream and the order API."""
    key = client.new_listen_key()
    probe = requests.get(f"{demo.rest_url}/private/ws", params={"listenKey": key}, timeout=5)
    order = requests.post(f"{demo.rest_url}/fapi/v1/order", timeout=5)
    assert probe.status_code != 404 and order.status_code != 404, "no user stream or order API"


def _limit_below(client: TradingClient, cid: str) -> OrderRequest:
    price = (client.premium_index("BTCUSDT").mark_price * D("0.8")).quantize(D("0.1"))
    return OrderRequest("BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.010"), cid, price=price)


def _updates(seen: Collector, cid: str) -> list[OrderUpdate]:
    return [i for i in seen.items if isinstance(i, OrderUpdate) and i.client_order_id == cid]


def test_against_the_demo_a_drop_loses_nothing(demo):
    client, seen = _client(demo), Collector()
    _needs_user_stream(demo, client)

    async def body(stream: UserStream) -> None:
        await until(lambda: seen.kinds() == ["AccountSnapshot"], "the first snapshot")
        await asyncio.to_thread(client.place_order, _limit_below(client, "resting-1"))
        await until(lambda: _updates(seen, "resting-1"), "the NEW update")
        dropped = requests.post(f"{demo.rest_url}/_demo/fault/drop_user_streams", timeout=5)
        assert dropped.json() == {"dropped": 1}
        await until(lambda: stream.stats.snapshots == 2, "a snapshot after the drop")
        market = OrderRequest("BTCUSDT", Side.BUY, OrderType.MARKET, D("0.010"), "taker-1")
        await asyncio.to_thread(client.place_order, market)
        await until(lambda: any(u.status is OrderStatus.FILLED for u in _updates(seen, "taker-1")),
                    "the fill")  # fmt: skip
        await until(lambda: any(isinstance(i, AccountUpdate) for i in seen.items), "the account")

    asyncio.run(_run_against(demo, client, seen, body))
    snapshots = [i for i in seen.items if isinstance(i, AccountSnapshot)]
    assert [o.client_order_id for o in snapshots[1].open_orders] == ["resting-1"]
    [new] = _updates(seen, "resting-1")
    assert (new.execution_type, new.status) == (ExecutionType.NEW, OrderStatus.NEW)
    fill = next(u for u in _updates(seen, "taker-1") if u.execution_type is ExecutionType.TRADE)
    assert (fill.last_qty, fill.cum_qty, fill.maker) == (D("0.010"), D("0.010"), False)
    account = next(i for i in seen.items if isinstance(i, AccountUpdate))
    assert [(p.symbol, p.amount) for p in account.positions] == [("BTCUSDT", D("0.010"))]
    assert seen.items.index(snapshots[1]) < seen.items.index(fill)


def test_against_the_demo_a_key_closed_behind_its_back_is_rotated(demo):
    client, seen = _client(demo), Collector()
    _needs_user_stream(demo, client)

    async def body(stream: UserStream) -> None:
        await until(lambda: stream.stats.snapshots == 1, "the first snapshot")
        key = await asyncio.to_thread(client.new_listen_key)  # the account's live key
        await asyncio.to_thread(client.close_listen_key, key)
        await until(lambda: stream.stats.rotations == 1 and stream.stats.snapshots == 2,
                    "a rotated key and a fresh snapshot")  # fmt: skip
        await asyncio.to_thread(client.place_order, _limit_below(client, "after-rotation"))
        await until(lambda: _updates(seen, "after-rotation"), "an update on the new key")

    asyncio.run(_run_against(demo, client, seen, body))
    assert not [i for i in seen.items if isinstance(i, AlgoUpdate)]


async def _run_against(demo, client, seen, body) -> None:  # type: ignore[no-untyped-def]
    stream = UserStream(client, demo.ws_url, seen)
    await asyncio.wait_for(_running(stream, lambda: body(stream)), timeout=45)
