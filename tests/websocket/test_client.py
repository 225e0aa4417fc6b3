"""The kline stream client against the demo exchange at 60x over real sockets."""

import asyncio

import numpy as np
import pytest
import requests

from core.exchange.klines import klines_to_frame
from core.exchange.limits import MAX_MESSAGES_PER_S
from core.exchange.rest import BinanceRest
from tests.websocket.helpers import (
    FIFTY_OTHERS,
    busiest_second,
    control_arrivals,
    demo_streams,
    stream_hub,
    until,
)
from websocket.client import (
    KlineStreamClient,
    SendWindow,
    combined_url,
    next_control,
    stream_name,
)

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


def test_50_concurrent_subscribes_and_unsubscribes_keep_under_10_messages_a_second(demo_exchange):
    sink = Collector()
    hub = stream_hub(demo_exchange)
    kept = {stream_name("BTCUSDT", "1m")}
    every = kept | {stream_name(*pair) for pair in FIFTY_OTHERS}

    async def streams_are(wanted):
        return await demo_streams(demo_exchange) == [wanted]

    async def scenario():
        client = KlineStreamClient(
            demo_exchange.ws_url, demo_exchange.rest_url, sink.candle, sink.state
        )
        await client.subscribe("BTCUSDT", "1m")
        task = asyncio.create_task(client.run())
        await until(lambda: streams_are(kept), "the first connection")
        await asyncio.gather(*(client.subscribe(*pair) for pair in FIFTY_OTHERS))
        await until(lambda: streams_are(every), "51 streams on the demo exchange")
        await asyncio.gather(*(client.unsubscribe(*pair) for pair in FIFTY_OTHERS))
        await until(lambda: streams_are(kept), "50 streams released on the demo exchange")
        await client.close()
        await task
        return client, await control_arrivals(demo_exchange)

    client, times = _run(scenario())
    assert hub.rate_closes == 0  # never closed 1008 "too many requests"
    assert client.stats.reconnects == 0 and sink.states == ["conectado"]
    assert client.streams == ["btcusdt@kline_1m"]
    assert max(busiest_second(t) for t in times.values()) <= MAX_MESSAGES_PER_S
    # One connection; each burst of 50 changes travels in one message.
    assert [len(t) for t in times.values()] == [2]


def _send_times(window, now, steps):
    """When sends happen if the caller is ready `step` seconds after each previous one."""
    start, sends = now[0], []
    for step in steps:
        now[0] += step
        now[0] += window.wait_s()
        window.record()
        sends.append(round(now[0] - start, 6))
    return sends


def test_the_send_window_allows_limit_sends_in_any_second_of_its_clock():
    now = [100.0]
    window = SendWindow(3, 1.0, clock=lambda: now[0])
    steps = (0.0, 0.1, 0.1, 0.1, 0.0, 0.0, 0.0, 2.0)
    assert _send_times(window, now, steps) == [0.0, 0.1, 0.2, 1.0, 1.1, 1.2, 2.0, 4.0]


def test_the_send_window_spaces_sends_out():
    now = [100.0]
    window = SendWindow(3, 1.0, spacing_s=0.25, clock=lambda: now[0])
    steps = (0.0, 0.0, 0.0, 0.0, 0.1, 0.5)
    assert _send_times(window, now, steps) == [0.0, 0.25, 0.5, 1.0, 1.25, 1.75]


def test_control_messages_unsubscribe_first_and_batch_every_pending_change():
    full = [f"s{i}@kline_1m" for i in range(200)]
    wanted = full[:150] + [f"n{i}@kline_1m" for i in range(50)]
    assert next_control(full, wanted) == ("UNSUBSCRIBE", sorted(full[150:]))
    assert next_control(full[:150], wanted) == ("SUBSCRIBE", wanted[150:])
    assert next_control(wanted, reversed(wanted)) is None
    assert next_control([], ["a", "b"]) == ("SUBSCRIBE", ["a", "b"])


def test_a_failing_gap_repair_reconnects_instead_of_ending_the_client(demo_exchange):
    """REST down while the stream is up: the repair fails, the client retries, never dies."""
    sink = Collector()
    closed_rest = "http://127.0.0.1:9"  # nothing listens: every repair raises ExchangeError

    async def scenario():
        client = KlineStreamClient(demo_exchange.ws_url, closed_rest, sink.candle, sink.state)
        await client.subscribe("BTCUSDT", "1m", after=0)
        task = asyncio.create_task(client.run())
        await until(lambda: sink.states.count("reconectando") >= 2, "two reconnects", 40)
        alive = not task.done()
        await client.close()
        await task
        return alive

    assert _run(scenario()), "the client's run() ended on a failed repair"
    assert sink.states.count("conectado") >= 2
