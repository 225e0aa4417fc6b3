"""The demo exchange's user data stream over real WebSockets: listen keys through python-binance,
order, account and algo events that agree with REST, their order, expiry, drops and recovery."""

import asyncio
import json
import time
from collections.abc import Callable

import pytest
import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.costs import FUNDING_INTERVAL_MS
from core.exchange.demo import DemoExchangeThread, DemoMarket, DemoOptions
from core.exchange.demo.accounts import LISTEN_KEY_TTL_MS
from core.exchange.demo.premium import funding_rate, next_funding_ms

pytestmark = pytest.mark.timeout(60)

BALANCE = 10_000.0
KEYS = {f"stream-{n:02d}": f"stream-secret-{n:02d}" for n in range(20)}


@pytest.fixture(scope="module")
def exchange():
    """A demo exchange at 1x (listen keys live an hour of real time) with the fault routes."""
    options = DemoOptions(speed=1, faults=True, api_keys=KEYS, balance=BALANCE)
    server = DemoExchangeThread(options).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def unused_accounts():
    """The (API key, secret) pairs of the module's exchange no test has traded on yet."""
    return iter(KEYS.items())


@pytest.fixture
def client(exchange, unused_accounts) -> Client:
    """python-binance's Client on a fresh account."""
    return _client(exchange, *next(unused_accounts))


def _client(exchange, key: str, secret: str) -> Client:
    client = Client(key, secret, ping=False)
    client.FUTURES_URL = exchange.rest_url + "/fapi"
    return client


def run(coroutine, timeout: float = 30):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> object:
    """The predicate's first truthy value, polled until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)
    return value


async def _event(ws: ClientConnection, timeout: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def _events(ws: ClientConnection, count: int) -> list[dict]:
    return [await _event(ws) for _ in range(count)]


async def _quiet(ws: ClientConnection, seconds: float = 0.3) -> bool:
    """Whether nothing arrives for `seconds` (a bounded wait for an absence)."""
    try:
        await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return True
    return False


def _stream_url(exchange, key: str) -> str:
    return f"{exchange.ws_url}/private/ws?listenKey={key}"


def _market(client: Client, side: str = "BUY", quantity: str = "0.010", **params) -> dict:
    return client.futures_create_order(
        symbol="BTCUSDT", side=side, type="MARKET", quantity=quantity, **params
    )


def _limit(client: Client, factor: float = 0.98, **params) -> dict:
    mark = float(client.futures_mark_price(symbol="BTCUSDT")["markPrice"])
    return client.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
        price=f"{round(mark * factor, 1):.1f}", **params,
    )  # fmt: skip


def _order_events(events: list[dict]) -> list[tuple]:
    return [
        (e["o"]["i"], e["o"]["x"]) if e["e"] == "ORDER_TRADE_UPDATE" else (e["e"],) for e in events
    ]


def test_listen_key_lifecycle_through_python_binance(exchange, client):
    key = client.futures_stream_get_listen_key()
    assert client.futures_stream_get_listen_key() == key  # the live key, extended
    assert client.futures_stream_keepalive(key) == {"listenKey": key}

    async def connects(url: str) -> bool:
        try:
            async with connect(url, open_timeout=5) as ws:
                return await _quiet(ws, 0.1)
        except InvalidStatus as refused:
            assert refused.response.status_code == 400
            return False

    assert run(connects(_stream_url(exchange, key)))
    assert run(connects(f"{exchange.ws_url}/ws/{key}"))  # the legacy URL
    assert client.futures_stream_close(key) == {}
    with pytest.raises(BinanceAPIException) as closed:
        client.futures_stream_keepalive(key)
    assert closed.value.code == -1125
    assert not run(connects(_stream_url(exchange, key)))
    assert not run(connects(_stream_url(exchange, "x" * 64)))


def test_a_market_order_streams_new_trade_and_account_update_as_rest_shows_them(exchange, client):
    key = client.futures_stream_get_listen_key()

    async def scenario():
        async with connect(_stream_url(exchange, key)) as ws:
            order = _market(client, newClientOrderId="streamed-1")
            events = await _events(ws, 3)
            rest = {
                "order": client.futures_get_order(symbol="BTCUSDT", orderId=order["orderId"]),
                "position": client.futures_position_information(symbol="BTCUSDT")[0],
                "balance": client.futures_account_balance()[0],
                "trade": client.futures_account_trades(symbol="BTCUSDT")[0],
            }
            return order, events, rest

    order, (new, trade, account), rest = run(scenario())
    assert [e["e"] for e in (new, trade, account)] == [
        "ORDER_TRADE_UPDATE", "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE",
    ]  # fmt: skip
    o = new["o"]
    assert (o["i"], o["c"], o["x"], o["X"], o["z"], o["l"]) == (
        order["orderId"], "streamed-1", "NEW", "NEW", "0.000", "0.000",
    )  # fmt: skip
    o, filled = trade["o"], rest["order"]
    assert (o["i"], o["c"], o["x"], o["X"], o["S"], o["o"]) == (
        order["orderId"], "streamed-1", "TRADE", "FILLED", "BUY", "MARKET",
    )  # fmt: skip
    assert (o["X"], o["z"], o["ap"]) == (
        filled["status"], filled["executedQty"], filled["avgPrice"],
    )  # fmt: skip
    assert (o["l"], o["z"], float(o["L"])) == ("0.010", "0.010", float(rest["trade"]["price"]))
    assert (float(o["n"]), o["N"], o["rp"], o["m"]) == (
        float(rest["trade"]["commission"]), "USDT", "0.00000000", False,
    )  # fmt: skip
    assert o["t"] == rest["trade"]["id"]
    a = account["a"]
    [position] = a["P"]
    assert a["m"] == "ORDER" and a["B"][0]["a"] == "USDT"
    assert a["B"][0]["wb"] == rest["balance"]["balance"]
    assert float(a["B"][0]["wb"]) == pytest.approx(BALANCE - float(o["n"]), abs=1e-8)
    assert (position["s"], position["pa"], position["ep"]) == (
        "BTCUSDT", rest["position"]["positionAmt"], rest["position"]["entryPrice"],
    )  # fmt: skip
    assert (position["pa"], position["mt"], position["ps"]) == ("0.010", "cross", "BOTH")
    assert new["E"] <= trade["E"] <= account["E"]


def test_resting_order_events_match_rest_after_each_change(exchange, client):
    key = client.futures_stream_get_listen_key()

    def rest_view(order_id: int) -> tuple:
        row = client.futures_get_order(symbol="BTCUSDT", orderId=order_id)
        return row["status"], row["executedQty"], row["price"], row["origQty"]

    def event_view(event: dict) -> tuple:
        o = event["o"]
        return o["X"], o["z"], o["p"], o["q"]

    async def scenario():
        seen = []
        async with connect(_stream_url(exchange, key)) as ws:
            order = _limit(client)
            seen.append((await _event(ws), rest_view(order["orderId"])))
            price = f"{float(order['price']) - 50:.1f}"
            client.futures_modify_order(symbol="BTCUSDT", orderId=order["orderId"], side="BUY",
                                        quantity="0.020", price=price)  # fmt: skip
            seen.append((await _event(ws), rest_view(order["orderId"])))
            client.futures_cancel_order(symbol="BTCUSDT", orderId=order["orderId"])
            seen.append((await _event(ws), rest_view(order["orderId"])))
            return seen, await _quiet(ws)

    seen, quiet = run(scenario())
    assert [event["o"]["x"] for event, _ in seen] == ["NEW", "AMENDMENT", "CANCELED"]
    for event, rest in seen:
        assert event_view(event) == rest
    assert quiet  # a resting order moves no money: no ACCOUNT_UPDATE


def test_events_arrive_in_the_order_things_happened(exchange, client):
    key = client.futures_stream_get_listen_key()

    async def scenario():
        async with connect(f"{exchange.ws_url}/ws/{key}") as ws:  # legacy URL, same events
            first, second = _limit(client), _limit(client, factor=0.97)
            client.futures_cancel_order(symbol="BTCUSDT", orderId=first["orderId"])
            bought = _market(client)
            sold = _market(client, side="SELL", reduceOnly="true")
            client.futures_cancel_all_open_orders(symbol="BTCUSDT")
            events = await _events(ws, 10)
            return (first, second, bought, sold), events, await _quiet(ws)

    (first, second, bought, sold), events, quiet = run(scenario())
    assert _order_events(events) == [
        (first["orderId"], "NEW"), (second["orderId"], "NEW"), (first["orderId"], "CANCELED"),
        (bought["orderId"], "NEW"), (bought["orderId"], "TRADE"), ("ACCOUNT_UPDATE",),
        (sold["orderId"], "NEW"), (sold["orderId"], "TRADE"), ("ACCOUNT_UPDATE",),
        (second["orderId"], "CANCELED"),
    ]  # fmt: skip
    times = [e["E"] for e in events]
    assert times == sorted(times) and quiet
    closing = events[8]["a"]["P"][0]
    assert closing["pa"] == "0.000"
    assert float(events[7]["o"]["rp"]) == pytest.approx(float(closing["cr"]), abs=1e-8)


def test_an_algo_order_streams_algo_updates_as_rest_shows_them(exchange, client):
    key = client.futures_stream_get_listen_key()
    mark = float(client.futures_mark_price(symbol="BTCUSDT")["markPrice"])
    trigger = f"{round(mark * 0.95, 1):.1f}"

    async def scenario():
        async with connect(_stream_url(exchange, key)) as ws:
            algo = client.futures_create_algo_order(
                symbol="BTCUSDT", side="SELL", type="STOP_MARKET", closePosition="true",
                triggerPrice=trigger, workingType="MARK_PRICE", clientAlgoId="algo-stream-1",
            )  # fmt: skip
            placed = await _event(ws)
            rest_placed = client.futures_get_algo_order(symbol="BTCUSDT", algoId=algo["algoId"])
            client.futures_cancel_algo_order(symbol="BTCUSDT", algoId=algo["algoId"])
            cancelled = await _event(ws)
            rest_cancelled = client.futures_get_algo_order(symbol="BTCUSDT", algoId=algo["algoId"])
            return algo, [(placed, rest_placed), (cancelled, rest_cancelled)]

    algo, seen = run(scenario())
    for event, rest in seen:
        o = event["o"]
        assert event["e"] == "ALGO_UPDATE"
        assert (o["aid"], o["caid"], o["o"], o["cp"], o["wt"]) == (
            algo["algoId"], "algo-stream-1", "STOP_MARKET", True, "MARK_PRICE",
        )  # fmt: skip
        assert (o["X"], o["tp"], o["ai"]) == (
            rest["algoStatus"], rest["triggerPrice"], rest["actualOrderId"],
        )  # fmt: skip
    assert [event["o"]["X"] for event, _ in seen] == ["NEW", "CANCELED"]


def test_a_dropped_stream_closes_and_rest_shows_the_fills_made_meanwhile(exchange, client):
    key = client.futures_stream_get_listen_key()

    async def scenario():
        async with connect(_stream_url(exchange, key)) as ws:
            before = _market(client)
            assert len(await _events(ws, 3)) == 3
            dropped = requests.post(exchange.rest_url + "/_demo/fault/drop_user_streams",
                                    timeout=5).json()  # fmt: skip
            with pytest.raises(ConnectionClosed):
                await _event(ws)
        missed = [_market(client), _market(client, side="SELL", quantity="0.030")]
        async with connect(_stream_url(exchange, key)) as ws:  # the key still lives
            snapshot = {
                "trades": client.futures_account_trades(symbol="BTCUSDT"),
                "orders": client.futures_get_all_orders(symbol="BTCUSDT"),
                "position": client.futures_position_information(symbol="BTCUSDT"),
            }
            after = _market(client)
            first_event = await _event(ws)  # nothing of the missed orders is replayed
        return dropped, before, missed, after, snapshot, first_event

    dropped, before, missed, after, snapshot, first_event = run(scenario())
    assert dropped["dropped"] >= 1
    assert [t["orderId"] for t in snapshot["trades"]] == [
        before["orderId"], *(m["orderId"] for m in missed),
    ]  # fmt: skip
    assert [o["status"] for o in snapshot["orders"]] == ["FILLED"] * 3
    [position] = snapshot["position"]
    assert position["positionAmt"] == "-0.010"
    assert (first_event["o"]["i"], first_event["o"]["x"]) == (after["orderId"], "NEW")


def test_account_update_balance_change_excludes_pnl_and_commission(exchange, client):
    key = client.futures_stream_get_listen_key()

    async def scenario():
        async with connect(_stream_url(exchange, key)) as ws:
            _market(client)
            _market(client, side="SELL", reduceOnly="true")
            return [e for e in await _events(ws, 6) if e["e"] == "ACCOUNT_UPDATE"]

    opened, closed = run(scenario())
    [usdt] = client.futures_account_balance()
    assert closed["a"]["B"][0]["wb"] == usdt["balance"] != f"{BALANCE:.8f}"  # fees were paid
    assert [float(e["a"]["B"][0]["bc"]) for e in (opened, closed)] == [0.0, 0.0]


FUNDING_KEY, FUNDING_SECRET = "funding", "funding-secret"


@pytest.fixture(scope="module")
def funding():
    """A cross long of 0.010 BTCUSDT held through a funding instant: (instant, the position's
    entry order, its FUNDING_FEE event, the REST balance after it)."""
    instant = next_funding_ms(int(time.time() * 1000)) - FUNDING_INTERVAL_MS  # a past instant
    options = DemoOptions(speed=60, start_ms=instant - 120_000, api_keys={FUNDING_KEY:
                          FUNDING_SECRET}, balance=BALANCE)  # fmt: skip
    server = DemoExchangeThread(options).start()
    try:
        client = _client(server, FUNDING_KEY, FUNDING_SECRET)
        key = client.futures_stream_get_listen_key()

        async def scenario():
            async with connect(_stream_url(server, key)) as ws:
                entry = _market(client, newOrderRespType="RESULT")
                while (event := await _event(ws))["e"] != "ACCOUNT_UPDATE" or (
                    event["a"]["m"] != "FUNDING_FEE"
                ):
                    pass
                return entry, event, client.futures_account_balance()[0]

        yield (instant, *run(scenario()))
    finally:
        server.stop()


def test_funding_settles_at_the_instant_and_the_event_agrees_with_rest(funding):
    instant, entry, event, balance = funding
    assert entry["updateTime"] < instant <= event["E"]
    price = DemoMarket(42).price_at("BTCUSDT", instant) / 100
    payment = 0.010 * price * float(funding_rate(42, "BTCUSDT", instant))  # a long pays
    [usdt] = event["a"]["B"]
    assert float(usdt["bc"]) == pytest.approx(-payment, abs=1e-8)
    commission = float(entry["cumQuote"]) * 0.0005
    assert float(usdt["wb"]) == pytest.approx(BALANCE - commission - payment, abs=1e-8)
    assert usdt["wb"] == balance["balance"]


def test_cross_funding_update_carries_no_position(funding):
    _, _, event, _ = funding
    assert event["a"]["P"] == []


@pytest.fixture
def fast_exchange():
    """A demo exchange at 1200x: an hour of demo time (a listen key's life) in 3 s."""
    keys = {"fast-a": "fast-secret-a", "fast-b": "fast-secret-b"}
    server = DemoExchangeThread(DemoOptions(speed=1200, api_keys=keys)).start()
    yield server
    server.stop()


def test_listen_key_expires_after_an_hour_without_keep_alive(fast_exchange):
    lapsing = _client(fast_exchange, "fast-a", "fast-secret-a")
    kept = _client(fast_exchange, "fast-b", "fast-secret-b")
    opened = lapsing.futures_time()["serverTime"]
    lapsing_key = lapsing.futures_stream_get_listen_key()
    kept_key = kept.futures_stream_get_listen_key()

    async def scenario():
        async with (
            connect(_stream_url(fast_exchange, lapsing_key)) as lapsing_ws,
            connect(_stream_url(fast_exchange, kept_key)) as kept_ws,
        ):
            half_hour = opened + LISTEN_KEY_TTL_MS // 2
            await asyncio.to_thread(
                wait_until, lambda: kept.futures_time()["serverTime"] >= half_hour
            )
            kept.futures_stream_keepalive(kept_key)
            expired = await _event(lapsing_ws, timeout=6)
            with pytest.raises(ConnectionClosed):
                await _event(lapsing_ws)
            return expired, await _quiet(kept_ws, 0.2)

    expired, kept_quiet = run(scenario())
    assert (expired["e"], expired["listenKey"]) == ("listenKeyExpired", lapsing_key)
    assert expired["E"] >= opened + LISTEN_KEY_TTL_MS
    assert kept_quiet  # the kept-alive stream is still open and silent
    assert kept.futures_stream_keepalive(kept_key) == {"listenKey": kept_key}
    with pytest.raises(BinanceAPIException) as lapsed:
        lapsing.futures_stream_keepalive(lapsing_key)
    assert lapsed.value.code == -1125
    assert lapsing.futures_stream_get_listen_key() != lapsing_key  # a new one
