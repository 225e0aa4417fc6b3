"""The demo exchange's kline streams over real WebSockets: format, closes, subscriptions, faults."""

import asyncio
import json
import time

import aiohttp
import pytest
import requests
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.exchange.demo import DemoExchangeThread, DemoOptions

pytestmark = pytest.mark.timeout(30)

KLINE_KEYS = ["t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"]


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 20))


async def _events(ws, count: int) -> list[dict]:
    return [json.loads(await ws.recv()) for _ in range(count)]


async def _until_closed_event(ws) -> tuple[list[dict], dict]:
    """Events of one candle up to and including its final x:true event."""
    seen: list[dict] = []
    while True:
        event = json.loads(await ws.recv())
        seen.append(event)
        if event["k"]["x"]:
            return [e for e in seen if e["k"]["t"] == event["k"]["t"]], event


def _rest_kline(exchange, symbol: str, interval: str, open_ms: int) -> list:
    params = {"symbol": symbol, "interval": interval, "startTime": open_ms, "limit": 1}
    response = requests.get(exchange.rest_url + "/fapi/v1/klines", params=params, timeout=5)
    return response.json()[0]


def test_raw_stream_events_have_binance_format_and_cadence(demo_exchange):
    async def scenario():
        async with connect(demo_exchange.ws_url + "/market/ws/btcusdt@kline_1m") as ws:
            started = time.monotonic()
            events = await _events(ws, 8)
            return events, time.monotonic() - started

    events, elapsed = run(scenario())
    assert elapsed < 2.6  # one event per 250 ms, plus one final per 1 s candle at 60x
    for event in events:
        assert list(event) == ["e", "E", "s", "k"]
        assert (event["e"], event["s"]) == ("kline", "BTCUSDT")
        kline = event["k"]
        assert list(kline) == KLINE_KEYS
        assert (kline["s"], kline["i"], kline["B"]) == ("BTCUSDT", "1m", "0")
        assert kline["T"] == kline["t"] + 59_999
        assert kline["L"] - kline["f"] + 1 == kline["n"]
        assert all(isinstance(kline[k], str) for k in ("o", "c", "h", "l", "v", "q", "V", "Q"))
        assert kline["t"] <= event["E"]


def test_final_event_equals_the_rest_kline_and_updates_are_monotone(demo_exchange):
    async def scenario():
        async with connect(demo_exchange.ws_url + "/market/ws/ethusdt@kline_1m") as ws:
            await _until_closed_event(ws)  # skip the candle we joined half-way
            return await _until_closed_event(ws)

    updates, final = run(scenario())
    assert len(updates) >= 3 and [u["k"]["x"] for u in updates].count(True) == 1
    for before, after in zip(updates, updates[1:], strict=False):
        b, a = before["k"], after["k"]
        assert float(a["h"]) >= float(b["h"]) and float(a["l"]) <= float(b["l"])
        assert float(a["v"]) >= float(b["v"]) and a["n"] >= b["n"] and a["o"] == b["o"]
    k = final["k"]
    rest = _rest_kline(demo_exchange, "ETHUSDT", "1m", k["t"])
    assert rest == [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"],
                    k["V"], k["Q"], "0"]  # fmt: skip


def test_combined_and_legacy_paths(demo_exchange):
    async def scenario():
        url = demo_exchange.ws_url + "/market/stream?streams=btcusdt@kline_1m/solusdt@kline_1h"
        async with connect(url) as ws:
            combined = await _events(ws, 6)
        async with connect(demo_exchange.ws_url + "/stream?streams=xrpusdt@kline_5m") as ws:
            legacy_combined = await _events(ws, 1)
        async with connect(demo_exchange.ws_url + "/ws/bnbusdt@kline_1M") as ws:
            legacy_raw = await _events(ws, 1)
        return combined, legacy_combined, legacy_raw

    combined, legacy_combined, legacy_raw = run(scenario())
    assert {e["stream"] for e in combined} == {"btcusdt@kline_1m", "solusdt@kline_1h"}
    for event in combined:
        assert list(event) == ["stream", "data"]
        assert event["data"]["s"].lower() + "@kline_" + event["data"]["k"]["i"] == event["stream"]
    assert legacy_combined[0]["stream"] == "xrpusdt@kline_5m"
    assert legacy_raw[0]["k"]["i"] == "1M" and legacy_raw[0]["s"] == "BNBUSDT"


async def _request(ws, message: dict | str) -> dict:
    """Send a request and return its reply, skipping stream events in between."""
    await ws.send(message if isinstance(message, str) else json.dumps(message))
    while True:
        reply = json.loads(await ws.recv())
        if "result" in reply or "error" in reply:
            return reply


def test_subscribe_unsubscribe_and_list_on_one_connection(demo_exchange):
    async def scenario():
        async with connect(demo_exchange.ws_url + "/market/ws") as ws:
            streams = ["btcusdt@kline_1m", "ethusdt@kline_3m"]
            replies = [await _request(ws, {"method": "SUBSCRIBE", "params": streams, "id": 1})]
            seen = {(e["s"], e["k"]["i"]) for e in await _events(ws, 6)}
            replies.append(await _request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2}))
            unsubscribe = {"method": "UNSUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 3}
            replies.append(await _request(ws, unsubscribe))
            replies.append(await _request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 4}))
            after = {e["s"] for e in await _events(ws, 6)}
            return replies, seen, after

    replies, seen, after = run(scenario())
    assert replies == [
        {"result": None, "id": 1},
        {"result": ["btcusdt@kline_1m", "ethusdt@kline_3m"], "id": 2},
        {"result": None, "id": 3},
        {"result": ["ethusdt@kline_3m"], "id": 4},
    ]
    assert seen == {("BTCUSDT", "1m"), ("ETHUSDT", "3m")}
    assert after == {"ETHUSDT"}


def test_properties_and_error_replies(demo_exchange):
    bad_stream = {"method": "SUBSCRIBE", "params": ["BTCUSDT@kline_1m"], "id": 5}
    combined_on = {"method": "SET_PROPERTY", "params": ["combined", True], "id": 8}
    combined_bad = {"method": "SET_PROPERTY", "params": ["combined", 1], "id": 9}
    requests_and_replies = [
        ("{nope", {"error": {"code": 3}, "id": None}),
        ({"method": "PUBLISH", "id": 6}, {"error": {"code": 2}, "id": 6}),
        (bad_stream, {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 5}),
        ({"method": "LIST_SUBSCRIPTIONS", "id": "x"}, {"error": {"code": 2}, "id": None}),
        ({"method": "GET_PROPERTY", "params": ["combined"], "id": 7}, {"result": False, "id": 7}),
        (combined_on, {"result": None, "id": 8}),
        (combined_bad, {"error": {"code": 1}, "id": 9}),
        (
            {"method": "GET_PROPERTY", "params": ["other"], "id": 10},
            {"error": {"code": 0}, "id": 10},
        ),
    ]

    async def scenario():
        async with connect(demo_exchange.ws_url + "/market/ws/btcusdt@kline_1m") as ws:
            replies = []
            for message, _ in requests_and_replies:
                replies.append(await _request(ws, message))
                await asyncio.sleep(0.11)  # stay under Binance's 10 messages per second
            wrapped = json.loads(await ws.recv())
            return replies, wrapped

    replies, wrapped = run(scenario())
    for reply, (_, expected) in zip(replies, requests_and_replies, strict=True):
        assert reply["id"] == expected["id"]
        if "error" in expected:
            assert expected["error"].items() <= reply["error"].items()
        else:
            assert reply == expected
    assert wrapped["stream"] == "btcusdt@kline_1m"  # SET_PROPERTY combined took effect


def test_invalid_stream_in_url_is_refused(demo_exchange):
    async def scenario():
        async with connect(demo_exchange.ws_url + "/market/ws/btcusdt@kline_7m"):
            pass

    with pytest.raises(InvalidStatus) as caught:
        run(scenario())
    assert caught.value.response.status_code == 400


def test_more_than_ten_messages_a_second_closes_the_connection(demo_exchange):
    async def scenario():
        async with connect(demo_exchange.ws_url + "/market/ws") as ws:
            for i in range(12):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.recv()
            return ws.close_code

    assert run(scenario()) == 1008


def _fault(exchange, route: str, **params) -> dict:
    response = requests.post(f"{exchange.rest_url}/_demo/fault/{route}", params=params, timeout=5)
    assert response.status_code == 200
    return response.json()


async def _closed(ws) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            await ws.recv()
    return ws.close_code


def test_fault_drop_closes_every_connection_at_once(demo_exchange):
    async def scenario(mode: str):
        url = demo_exchange.ws_url + "/market/ws/btcusdt@kline_1m"
        clients = [await connect(url) for _ in range(3)]
        await asyncio.gather(*(c.recv() for c in clients))
        drop = asyncio.to_thread(_fault, demo_exchange, "drop", mode=mode)
        dropped, *codes = await asyncio.gather(drop, *(_closed(c) for c in clients))
        return dropped, codes

    assert run(scenario("close")) == ({"dropped": 3}, [1001, 1001, 1001])
    assert run(scenario("abort")) == ({"dropped": 3}, [1006, 1006, 1006])


def test_fault_pause_stops_the_feed_and_resume_restarts_it(demo_exchange):
    async def count_for(ws, seconds: float) -> int:
        received = 0
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(ws.recv(), left)
                received += 1
            except TimeoutError:
                break
        return received

    async def scenario():
        async with connect(demo_exchange.ws_url + "/market/ws/btcusdt@kline_1m") as ws:
            await ws.recv()
            await asyncio.to_thread(_fault, demo_exchange, "pause")
            await count_for(ws, 0.3)  # what was already on its way
            paused = await count_for(ws, 1.0)
            await asyncio.to_thread(_fault, demo_exchange, "resume")
            return paused, await count_for(ws, 1.0)

    paused, resumed = run(scenario())
    assert paused == 0 and resumed >= 3


def test_server_sends_pings():
    async def scenario(url: str):
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, autoping=False) as ws:
                while True:
                    message = await ws.receive()
                    if message.type == aiohttp.WSMsgType.PING:
                        await ws.pong(message.data)
                        return True

    with DemoExchangeThread(DemoOptions(ping_interval_s=0.3)) as exchange:
        assert run(scenario(exchange.ws_url + "/market/ws/btcusdt@kline_1m"))


def test_a_cold_page_of_years_does_not_stall_the_streams(demo_exchange):
    params = {"symbol": "ADAUSDT", "interval": "1w", "limit": 1500}
    url = demo_exchange.rest_url + "/fapi/v1/klines"

    async def receive(ws, arrivals: list[float]) -> None:
        while True:
            await ws.recv()
            arrivals.append(time.monotonic())

    async def scenario():
        async with connect(demo_exchange.ws_url + "/market/ws/btcusdt@kline_1m") as ws:
            await ws.recv()
            arrivals = [time.monotonic()]
            receiver = asyncio.ensure_future(receive(ws, arrivals))
            response = await asyncio.to_thread(requests.get, url, params, timeout=10)
            arrivals.append(time.monotonic())
            receiver.cancel()
            return response.json(), arrivals

    weeks, arrivals = run(scenario())
    assert len(weeks) > 300  # every week since ADA listed: years of minutes generated cold
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert max(gaps) < 0.45, gaps  # the feed kept its 250 ms cadence meanwhile
