"""The bridge over real sockets against the demo exchange at 60x: sharing, repair, isolation."""

import asyncio
import contextlib
import json
import socket
import time

import numpy as np
import requests
from websockets.asyncio.client import connect

from core.exchange.limits import MAX_MESSAGES_PER_S
from core.exchange.rest import BinanceRest
from core.repository import Database
from estrategias.factory import crear_estrategia
from tests.websocket.helpers import (
    FIFTY_OTHERS,
    busiest_second,
    control_arrivals,
    demo_streams,
    stream_hub,
    until,
)
from wsbridge.hub import Hub
from wsbridge.server import run_bridge

MINUTE = 60_000


async def _bridge(demo, tmp_path, grace_s=0.5, **options):
    hub = Hub(
        Database(tmp_path / "bridge.db"), demo.ws_url, demo.rest_url, ["sma_cruce"],
        grace_s=grace_s, **options,
    )  # fmt: skip
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_bridge(hub, "127.0.0.1", 0, ready, stop))
    await ready.wait()
    return hub, stop, task


def _url(hub, symbol="BTCUSDT", interval="1m"):
    return f"ws://127.0.0.1:{hub.port}/?symbol={symbol}&interval={interval}"


async def _collect(ws, seconds, into):
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            into.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
        except TimeoutError:
            return


def _closed(messages):
    return [m["vela"] for m in messages if m["tipo"] == "vela" and m["vela"]["closed"]]


def _run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=90))


def test_two_clients_share_one_upstream_subscription_released_after_the_last(
    demo_exchange, tmp_path
):
    async def scenario():
        hub, stop, task = await _bridge(demo_exchange, tmp_path)
        async with connect(_url(hub)) as a, connect(_url(hub)) as b:
            first_a, first_b = json.loads(await a.recv()), json.loads(await b.recv())
            upstream = hub.upstreams[0][0]
            assert len(hub.upstreams) == 1 and upstream.streams == ["btcusdt@kline_1m"]
            assert first_a["tipo"] == first_b["tipo"] == "snapshot"
            assert len(first_a["velas"]) >= 500 and first_a["velas"][0]["closed"]
            health = (
                await asyncio.to_thread(
                    requests.get, f"http://127.0.0.1:{hub.port}/health", timeout=5
                )
            ).json()
            assert (health["clientes"], health["streams"], health["conexiones_upstream"]) == (
                2,
                1,
                1,
            )
        await asyncio.sleep(1.0)  # grace 0.5 s
        assert upstream.streams == [] and hub.subscriptions == {}
        stop.set()
        await task

    _run(scenario())


def test_invalid_stream_gets_an_error_message_and_close_code_1008(demo_exchange, tmp_path):
    async def scenario():
        hub, stop, task = await _bridge(demo_exchange, tmp_path)
        for query in ("symbol=NOPEUSDT&interval=1m", "symbol=BTCUSDT&interval=7m", ""):
            async with connect(f"ws://127.0.0.1:{hub.port}/?{query}") as ws:
                message = json.loads(await ws.recv())
                assert message["tipo"] == "error"
                await ws.wait_closed()
                assert ws.close_code == 1008
        async with connect(_url(hub)) as ws:
            await ws.recv()
            await ws.send("not json")
            assert json.loads(await ws.recv())["tipo"] in ("error", "vela", "estado")
        stop.set()
        await task

    _run(scenario())


def test_upstream_drops_leave_database_and_clients_with_every_candle_once(demo_exchange, tmp_path):
    admin = demo_exchange.rest_url + "/_demo/fault/"

    async def fault(name):
        await asyncio.to_thread(requests.post, admin + name, timeout=5)

    async def scenario():
        hub, stop, task = await _bridge(demo_exchange, tmp_path)
        messages = {0: [], 1: []}
        async with connect(_url(hub)) as a, connect(_url(hub)) as b:
            readers = [
                asyncio.create_task(_collect(ws, 9, messages[i])) for i, ws in enumerate((a, b))
            ]
            await asyncio.sleep(2)
            await fault("drop")
            await asyncio.sleep(2)
            await fault("pause")
            await asyncio.sleep(2.2)
            await fault("resume")
            await asyncio.gather(*readers)
        stop.set()
        await task
        return hub, messages

    hub, messages = _run(scenario())
    for received in messages.values():
        closed = [c["open_time"] for c in _closed(received)]
        assert len(closed) >= 5 and (np.diff(closed) == MINUTE).all(), closed
    assert _closed(messages[0]) == _closed(messages[1])
    stored = hub.db.candles.read_arrays("BTCUSDT", "1m").open_time
    assert (np.diff(stored) == MINUTE).all() and hub.db.candles.find_gaps("BTCUSDT", "1m") == []
    assert set(c["open_time"] for c in _closed(messages[0])) <= set(stored.tolist())
    assert any(m["tipo"] == "estado" and m["estado"] == "reconectando" for m in messages[0])


def test_a_client_that_never_reads_does_not_slow_the_others(demo_exchange, tmp_path):
    async def scenario():
        hub, stop, task = await _bridge(demo_exchange, tmp_path)
        received = []
        # max_queue=1: the stalled client stops reading, so its socket backs up for real.
        stalled = connect(_url(hub), max_queue=1, close_timeout=1)
        async with stalled as _stalled, connect(_url(hub)) as active:
            await active.recv()
            start = time.monotonic()
            await _collect(active, 5, received)
            elapsed = time.monotonic() - start
        stop.set()
        await task
        return received, elapsed

    received, elapsed = _run(scenario())
    updates = [m for m in received if m["tipo"] == "vela"]
    assert len(updates) >= 0.8 * 4 * elapsed  # ~4 updates a second kept flowing
    assert len(_closed(received)) >= 4


def test_live_signals_agree_with_batch_decisions(demo_exchange, tmp_path):
    async def scenario():
        hub, stop, task = await _bridge(demo_exchange, tmp_path)
        received = []
        async with connect(_url(hub)) as ws:
            await _collect(ws, 12, received)
        stop.set()
        await task
        return hub, received

    hub, received = _run(scenario())
    snapshot = received[0]
    signals = [m for m in received if m["tipo"] == "senal"]
    velas = hub.db.candles.read_frame("BTCUSDT", "1m", start=snapshot["velas"][0]["open_time"])
    batch = crear_estrategia("sma_cruce").target_positions(velas)
    by_time = dict(zip(velas["open_time"].tolist(), batch.tolist(), strict=True))
    for signal in signals:
        assert by_time[signal["open_time"]] == signal["posicion"], signal
    live_last = snapshot["posiciones"]["sma_cruce"]
    assert (
        live_last
        == by_time[
            snapshot["velas"][-2 if not snapshot["velas"][-1]["closed"] else -1]["open_time"]
        ]
    )
    assert BinanceRest(demo_exchange.rest_url).server_time() > 0


async def _stall(hub, stalled):
    """Make `stalled` stop reading and ask for snapshots until the bridge skips it.

    Loopback kernel buffers grow to megabytes, so both ends of its socket get small fixed ones,
    as on a slow link: the backlog then builds up in the bridge's own queue.
    """
    (client,) = [c for c in hub.clients if c.ws.remote_address == stalled.local_address]
    for end, option in ((client.ws, socket.SO_SNDBUF), (stalled, socket.SO_RCVBUF)):
        end.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, option, 32768)
    for interval in ("3m", "5m", "15m", "30m", "1h", "4h"):
        await stalled.send(json.dumps({"accion": "suscribir", "symbol": "BTCUSDT",
                                       "interval": interval}))  # fmt: skip
    deadline = time.monotonic() + 30
    while hub.health()["mensajes_omitidos"] == 0:
        assert time.monotonic() < deadline, "the stalled client was never skipped"
        await asyncio.sleep(0.1)


def test_a_stalled_client_is_skipped_with_a_bounded_queue_then_caught_up(demo_exchange, tmp_path):
    async def scenario():
        hub, stop, task = await _bridge(demo_exchange, tmp_path, send_limit=64 * 1024)
        async with (
            connect(_url(hub), max_queue=1, close_timeout=1) as stalled,
            connect(_url(hub)) as active,
        ):
            seen = [json.loads(await stalled.recv())]
            await active.recv()
            await _stall(hub, stalled)
            backlog = max(c.ws.transport.get_write_buffer_size() for c in hub.clients)
            updates = []
            await _collect(active, 3, updates)
            # The client reads again: its backlog, the catch-up, then live updates.
            while not any(m.get("detalle") == "al día" for m in seen):
                seen.append(json.loads(await asyncio.wait_for(stalled.recv(), 30)))
            await _collect(stalled, 2, seen)
            await _collect(active, 0.1, updates)
            health = hub.health()
        stop.set()
        await task
        return backlog, updates, seen, health

    backlog, updates, seen, health = _run(scenario())
    assert backlog < 64 * 1024 + 100 * 1024  # the limit plus one snapshot in flight
    assert len([m for m in updates if m["tipo"] == "vela"]) >= 8  # the active client kept going
    assert health["mensajes_omitidos"] > 0 and health["clientes_expulsados"] == 0
    assert health["clientes_rezagados"] == 0
    # Every closed candle the active client saw, the skipped one has too, once caught up.
    # (Signals and states of the stream carry no candle.)
    one_minute = [
        m for m in seen if m.get("interval") == "1m" and m["tipo"] in ("snapshot", "vela")
    ]
    mine = {
        v["open_time"]
        for m in one_minute
        for v in (m["velas"] if m["tipo"] == "snapshot" else [m["vela"]])
        if v["closed"]
    }
    theirs = {v["open_time"] for v in _closed(updates) if v["open_time"] <= max(mine)}
    assert theirs and theirs <= mine


def test_a_client_stalled_too_long_is_dropped(demo_exchange, tmp_path):
    async def scenario():
        hub, stop, task = await _bridge(
            demo_exchange, tmp_path, send_limit=64 * 1024, stall_limit_s=1.0
        )
        async with (
            connect(_url(hub), max_queue=1, close_timeout=1) as stalled,
            connect(_url(hub)) as active,
        ):
            await stalled.recv()
            await active.recv()
            await _stall(hub, stalled)
            deadline = time.monotonic() + 20
            while hub.health()["clientes_expulsados"] == 0:
                assert time.monotonic() < deadline, "the stalled client was never dropped"
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            health = hub.health()
            updates = []
            await _collect(active, 1, updates)
        stop.set()
        await task
        return health, updates

    health, updates = _run(scenario())
    assert health["clientes"] == 1  # the dropped one is gone, the active one stays
    assert [m for m in updates if m["tipo"] == "vela"]


def test_50_browsers_joining_and_leaving_at_once_keep_upstream_under_the_rate_limit(
    demo_exchange, tmp_path
):
    kept = {"btcusdt@kline_1m"}
    every = kept | {f"{s.lower()}@kline_{i}" for s, i in FIFTY_OTHERS}

    async def upstream_is(wanted):
        return await demo_streams(demo_exchange) == [wanted]

    async def scenario():
        hub, stop, task = await _bridge(demo_exchange, tmp_path)
        seen = []
        async with connect(_url(hub)) as watcher:
            reader = asyncio.create_task(_collect(watcher, 80, seen))
            await until(lambda: hub.upstream_state == "conectado", "the upstream connection")
            async with contextlib.AsyncExitStack() as browsers:
                sockets = await asyncio.gather(
                    *(browsers.enter_async_context(connect(_url(hub, *p))) for p in FIFTY_OTHERS)
                )
                firsts = [json.loads(m) for m in await asyncio.gather(*(b.recv() for b in sockets))]
                await until(lambda: upstream_is(every), "51 streams upstream")
            # All 50 left at once: their streams are released together after the grace.
            await until(lambda: upstream_is(kept), "50 streams released upstream")
            subscriptions = set(hub.subscriptions)
            reader.cancel()
        reconnects = sum(client.stats.reconnects for client, _ in hub.upstreams)
        stop.set()
        await task
        return firsts, seen, subscriptions, reconnects, await control_arrivals(demo_exchange)

    firsts, seen, subscriptions, reconnects, times = _run(scenario())
    assert [m["tipo"] for m in firsts] == ["snapshot"] * 50
    assert stream_hub(demo_exchange).rate_closes == 0 and reconnects == 0
    assert not [m for m in seen if m["tipo"] == "estado" and m["estado"] == "reconectando"]
    assert subscriptions == {("BTCUSDT", "1m")}
    assert max(busiest_second(t) for t in times.values()) <= MAX_MESSAGES_PER_S
