"""What the demo exchange's WebSocket side saw, read on its own event loop, for the stream tests."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from core.exchange.demo.streams import HUB, StreamHub
from core.exchange.demo.symbols import SYMBOLS

# Streams the demo serves cheaply (higher intervals aggregate thousands of 1m candles per tick).
CHEAP_INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h")
# Fifty (symbol, interval) pairs other than BTCUSDT 1m, the stream the tests keep open.
FIFTY_OTHERS = [
    (symbol, interval)
    for interval in CHEAP_INTERVALS
    for symbol in SYMBOLS
    if (symbol, interval) != ("BTCUSDT", "1m")
][:50]


def stream_hub(demo: Any) -> StreamHub:
    """The StreamHub inside a DemoExchangeThread (the fixture keeps it private)."""
    return demo._server._runner.app[HUB]


async def on_demo_loop(demo: Any, function: Callable[[], Any]) -> Any:
    """`function()` run on the demo exchange's loop: its state is not safe to read from ours."""

    async def call() -> Any:
        return function()

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), demo._loop))


async def demo_streams(demo: Any) -> list[set[str]]:
    """The streams of each open connection on the demo exchange, as LIST_SUBSCRIPTIONS says."""
    hub = stream_hub(demo)
    return await on_demo_loop(demo, lambda: [set(c.streams) for c in hub.connections])


async def control_arrivals(demo: Any) -> dict[int, list[float]]:
    """Arrival times of every control message the demo read, by connection."""
    hub = stream_hub(demo)
    records = await on_demo_loop(demo, lambda: list(hub.received))
    times: dict[int, list[float]] = {}
    for record in records:
        times.setdefault(record.connection, []).append(record.at)
    return times


def busiest_second(times: list[float]) -> int:
    """The most messages any closed 1-second window holds (the window the demo enforces)."""
    return max((sum(1 for u in times if t <= u <= t + 1.0) for t in times), default=0)


async def until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout_s: float = 20.0
) -> None:
    """Wait until `condition()` (a bool or an awaitable one) holds; fail naming `what` after
    `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not await _value(condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _value(result: bool | Awaitable[bool]) -> bool:
    return await result if inspect.isawaitable(result) else result
