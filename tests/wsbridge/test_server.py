"""The bridge's control messages over real sockets: hostile and malformed input, re-subscribing."""

import asyncio
import json
import logging

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.websocket.helpers import until
from tests.wsbridge.test_hub import _bridge, _run, _url


def _command(accion, symbol, interval):
    return json.dumps({"accion": accion, "symbol": symbol, "interval": interval})


async def _until_closed(ws):
    """Every message the bridge sends until it closes the connection."""
    messages = []
    try:
        async for raw in ws:
            messages.append(json.loads(raw))
    except ConnectionClosed:
        pass
    return messages


async def _until(ws, wanted):
    """Every message up to and including the first for which `wanted(message)` holds."""
    messages = []
    while not messages or not wanted(messages[-1]):
        messages.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
    return messages


def _problems(caplog):
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_a_100000_deep_message_gets_an_error_and_close_1008_with_no_traceback(
    demo_exchange, tmp_path, caplog
):
    async def scenario():
        hub, stop, task = await _bridge(demo_exchange, tmp_path)
        async with connect(_url(hub)) as ws:
            assert json.loads(await ws.recv())["tipo"] == "snapshot"
            await ws.send("[" * 100_000 + "]" * 100_000)
            replies = await _until_closed(ws)
        stop.set()
        await task
        return ws.close_code, replies

    code, replies = _run(scenario())
    errors = [m for m in replies if m["tipo"] == "error"]
    assert code == 1008
    assert errors == [{"tipo": "error", "error": "the message is nested too deeply"}]
    assert _problems(caplog) == []


MALFORMED = [
    ("not json", None),
    ("[1, 2]", None),
    ('"suscribir"', None),
    ("null", None),
    (b"\xff\xfe{", None),
    (json.dumps({"symbol": "BTCUSDT", "interval": "1m"}), "accion"),
    (_command(5, "BTCUSDT", "1m"), "accion"),
    (_command("bailar", "BTCUSDT", "1m"), "accion"),
    (_command("suscribir", ["BTCUSDT"], "1m"), "symbol"),
    (_command("suscribir", None, "1m"), "symbol"),
    (_command("suscribir", "BTCUSDT", {"m": 1}), "interval"),
    (_command("suscribir", "X" * 500_000, "1m"), "symbol"),
    (_command("suscribir", "BTCUSDT", "7" * 500_000), "interval"),
    (_command("suscribir", "NOPEUSDT", "1m"), "symbol"),
    (_command("suscribir", "BTCUSDT", "7m"), "interval"),
]


def test_malformed_control_messages_get_an_error_naming_the_field(demo_exchange, tmp_path, caplog):
    async def scenario():
        hub, stop, task = await _bridge(demo_exchange, tmp_path)
        errors = []
        async with connect(_url(hub)) as ws:
            await ws.recv()
            for message, _ in MALFORMED:
                await ws.send(message)
                errors += (await _until(ws, lambda m: m["tipo"] == "error"))[-1:]
            await ws.send(_command("suscribir", "ETHUSDT", "1m"))
            after = await _until(ws, lambda m: m["tipo"] in ("snapshot", "error"))
        stop.set()
        await task
        return errors, after[-1]

    errors, after = _run(scenario())
    assert [e.get("campo") for e in errors] == [field for _, field in MALFORMED]
    assert max(len(json.dumps(e)) for e in errors) < 300  # huge input is never echoed back
    assert (after["tipo"], after["symbol"]) == ("snapshot", "ETHUSDT")  # the connection lives on
    assert _problems(caplog) == []


def test_subscribing_again_to_a_stream_sends_its_snapshot_once(demo_exchange, tmp_path):
    def snapshot_of(symbol):
        return lambda m: m["tipo"] == "snapshot" and m["symbol"] == symbol

    async def scenario():
        hub, stop, task = await _bridge(demo_exchange, tmp_path)
        async with connect(_url(hub)) as ws:
            first = json.loads(await ws.recv())
            await until(lambda: hub.upstream_state == "conectado", "the upstream connection")
            await ws.send(_command("suscribir", "BTCUSDT", "1m"))  # already followed
            await ws.send(_command("suscribir", "ETHUSDT", "1m"))  # new: marks the end
            to_eth = await _until(ws, snapshot_of("ETHUSDT"))
            await ws.send(_command("cambiar", "ETHUSDT", "1m"))  # keeps ETHUSDT, drops BTCUSDT
            await ws.send(_command("suscribir", "BTCUSDT", "1m"))  # new again: a snapshot
            to_btc = await _until(ws, snapshot_of("BTCUSDT"))
            (client,) = hub.clients
            streams = set(client.streams)
        stop.set()
        await task
        return first, to_eth, to_btc, streams

    first, to_eth, to_btc, streams = _run(scenario())

    def answers(messages):
        return [
            (m["tipo"], m["symbol"], m.get("detalle"))
            for m in messages
            if m["tipo"] == "snapshot" or (m["tipo"] == "estado" and "symbol" in m)
        ]

    assert (first["tipo"], first["symbol"]) == ("snapshot", "BTCUSDT")
    assert answers(to_eth) == [
        ("estado", "BTCUSDT", "ya suscrito"),
        ("snapshot", "ETHUSDT", None),
    ]
    assert answers(to_btc) == [
        ("estado", "ETHUSDT", "ya suscrito"),
        ("snapshot", "BTCUSDT", None),
    ]
    ack = next(m for m in to_eth if m["tipo"] == "estado" and "symbol" in m)
    assert ack == {
        "tipo": "estado", "estado": "conectado", "detalle": "ya suscrito",
        "symbol": "BTCUSDT", "interval": "1m",
    }  # fmt: skip
    assert streams == {("BTCUSDT", "1m"), ("ETHUSDT", "1m")}
