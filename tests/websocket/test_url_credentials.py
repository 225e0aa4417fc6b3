"""Credentials in BINANCE_WS_URL never reach the state the bridge relays to every browser."""

import asyncio
import logging
import time

from websocket.client import KlineStreamClient

PASSWORD = "PW-s3cr3t-ws"


async def _first_state(demo) -> tuple[str, str]:
    states: list[tuple[str, str]] = []

    async def on_candle(candle) -> None:
        pass

    async def on_state(state: str, detail: str) -> None:
        states.append((state, detail))

    ws_base = demo.ws_url.replace("ws://", f"ws://trader:{PASSWORD}@")
    client = KlineStreamClient(ws_base, demo.rest_url, on_candle, on_state)
    await client.subscribe("BTCUSDT", "1m")
    task = asyncio.create_task(client.run())
    deadline = time.monotonic() + 20
    while not states:
        assert time.monotonic() < deadline, "never connected"
        await asyncio.sleep(0.05)
    await client.close()
    await task
    return states[0]


def test_ws_url_password_is_not_in_the_state_or_the_log(demo_exchange, caplog):
    with caplog.at_level(logging.DEBUG):
        state, detail = asyncio.run(asyncio.wait_for(_first_state(demo_exchange), 30))
    assert state == "conectado"
    assert detail == f"ws://trader:***@127.0.0.1:{demo_exchange.port}"
    assert [r.getMessage() for r in caplog.records if PASSWORD in r.getMessage()] == []
