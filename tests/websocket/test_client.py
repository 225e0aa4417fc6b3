"""The kline stream client against the demo exchange at 60x over real sockets."""

import asyncio

import numpy as np
import pytest
import requests

from core.exchange.klines import klines_to_frame
from core.exchange.rest import BinanceRest
from websocket.client import KlineStreamClient, combined_url, stream_name

MINUTE = 60_000


class Collector:
    def __init__(self) -> None:
        self.closed: dict[str, list] = {}
        self.updates = 0
        self.states: list[str] = []

    async def candle(self, candle) -> None:
        self.updates += 1
        if candle.closed:
            self.closed.setdefault(candle.symbol, []).append(candle)

    async def state(self, state: str, detail: str) -> None:
        self.states.append(state)


def _run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=60))


def _assert_exactly_once_in_order_and_equal_to_rest(candles, rest_url):
    times = np.array([c.open_time for c in candles])
    assert len(times) >= 3
    assert (np.diff(times) == MINUTE).all(), f"gap or duplicate in {times.tolist()}"
    rows = BinanceRest(rest_url).klines("BTCUSDT", "1m", int(times[0]), int(times[-1]), 1500)
    frame = klines_to_frame(rows)
    assert frame["open_time"].tolist() == times.tolist()
    assert frame["close"].tolist() == [c.close for c in candles]
    assert frame["volume"].tolist() == [c.volume for c in candles]


def test_names_and_routed_urls():
    assert stream_name("BTCUSDT", "1m") == "btcusdt@kline_1m"
    assert combined_url("wss://fstream.binance.com", ["a", "b"]) == (
        "wss://fstream.binance.com/market/stream?streams=a/b"
    )


def test_live_candles_arrive_every_closed_one_exactly_once(demo_exchange):
    sink = Collector()

    async def scenario():
        client = KlineStreamClient(
            demo_exchange.ws_url, demo_exchange.rest_url, sink.candle, sink.state
        )
        await client.subscribe("BTCUSDT", "1m")
        task = asyncio.create_task(client.run())
        await asyncio.sleep(4.5)
        await client.close()
        await task

    _run(scenario())
    assert sink.states[0] == "conectado"
    assert sink.updates > len(sink.closed["BTCUSDT"])  # open-candle updates came too
    _assert_exactly_once_in_order_and_equal_to_rest(sink.closed["BTCUSDT"], demo_exchange.rest_url)


def test_drops_and_stalls_are_repaired_with_no_gap_and_no_duplicate(demo_exchange):
    sink = Collector()
    admin = demo_exchange.rest_url + "/_demo/fault/"

    async def fault(name: str) -> None:
        await asyncio.to_thread(requests.post, admin + name, timeout=5)

    async def scenario():
        client = KlineStreamClient(
            demo_exchange.ws_url, demo_exchange.rest_url, sink.candle, sink.state
        )
        await client.subscribe("BTCUSDT", "1m")
        task = asyncio.create_task(client.run())
        await asyncio.sleep(1.5)
        await fault("drop")
        await asyncio.sleep(1.5)
        await fault("pause")  # finals during the pause are never sent
        await asyncio.sleep(2.2)
        await fault("resume")
        await fault("drop?mode=abort")
        await asyncio.sleep(3.0)
        stats = client.stats
        await client.close()
        await task
        return stats

    stats = _run(scenario())
    assert stats.reconnects >= 2 and stats.backfilled >= 1
    assert sink.states.count("reconectando") >= 2
    _assert_exactly_once_in_order_and_equal_to_rest(sink.closed["BTCUSDT"], demo_exchange.rest_url)


def test_live_subscribe_unsubscribe_and_catch_up_from_storage(demo_exchange):
    sink = Collector()
    now = BinanceRest(demo_exchange.rest_url).server_time()
    stored_until = now // MINUTE * MINUTE - 6 * MINUTE  # "the database" ends 6 minutes ago

    async def scenario():
        client = KlineStreamClient(demo_exchange.ws_url, demo_exchange.rest_url, sink.candle)
        await client.subscribe("BTCUSDT", "1m", after=stored_until)
        task = asyncio.create_task(client.run())
        await asyncio.sleep(1.5)
        await client.subscribe("ETHUSDT", "1m")
        await asyncio.sleep(2.5)
        await client.unsubscribe("BTCUSDT", "1m")
        btc_at_unsubscribe = len(sink.closed["BTCUSDT"])
        await asyncio.sleep(2.0)
        assert client.streams == ["ethusdt@kline_1m"]
        await client.close()
        await task
        return btc_at_unsubscribe

    btc_at_unsubscribe = _run(scenario())
    btc = sink.closed["BTCUSDT"]
    assert btc[0].open_time == stored_until + MINUTE  # the catch-up starts right after storage
    _assert_exactly_once_in_order_and_equal_to_rest(btc, demo_exchange.rest_url)
    assert len(btc) <= btc_at_unsubscribe + 1  # nothing more after unsubscribing
    assert len(sink.closed.get("ETHUSDT", [])) >= 2


def test_more_than_200_streams_on_one_connection_is_refused():
    async def scenario():
        async def ignore(candle):
            return None

        client = KlineStreamClient("ws://127.0.0.1:9", "http://127.0.0.1:9", ignore)
        for i in range(200):
            await client.subscribe(f"S{i}USDT", "1m")
        with pytest.raises(ValueError, match="at most 200"):
            await client.subscribe("ONEMOREUSDT", "1m")

    _run(scenario())
