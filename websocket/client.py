"""Binance kline stream client: combined streams, live (un)subscribe, endless reconnect, gap repair.

Every closed candle reaches the consumer exactly once and in order: after a reconnect (or any
jump in open times) the missing closed candles are fetched over REST before the next live one.
Subscription changes are batched: one task per connection sends them, as few messages as the
changes allow, never more than the exchange's message rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from config.settings import redact_url
from core.errors import ExchangeError
from core.exchange.klines import frame_candles, klines_to_frame
from core.exchange.limits import MAX_MESSAGES_PER_S, MAX_STREAMS
from core.exchange.rest import BinanceRest
from core.intervals import check_interval, interval_ms
from core.models import Candle

log = logging.getLogger(__name__)
# Binance's spot docs count ping and pong frames as messages too: one a second is left for them.
CONTROL_MESSAGES_PER_S = MAX_MESSAGES_PER_S - 1
# Control messages are also spaced out: network jitter or a busy server reading late cannot bunch
# them into 11 within a second, and each one gathers every change made while it waited.
CONTROL_SPACING_S = 0.25
RECONNECT_BEFORE_S = 23.5 * 3600  # Binance cuts every connection after 24 h
BACKOFF_START_S, BACKOFF_MAX_S = 0.5, 30.0

CandleHandler = Callable[[Candle], Awaitable[None]]
StateHandler = Callable[[str, str], Awaitable[None]]
Clock = Callable[[], float]


class SendWindow:
    """A sliding window log: at most `limit` sends in any `window_s` seconds of `clock`, each at
    least `spacing_s` after the one before."""

    def __init__(
        self,
        limit: int,
        window_s: float = 1.0,
        spacing_s: float = 0.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.limit, self.window_s, self.spacing_s, self.clock = limit, window_s, spacing_s, clock
        self._sent: deque[float] = deque(maxlen=limit)  # the last `limit` send times

    def wait_s(self) -> float:
        """Seconds to wait before the next send keeps to both rules (0: now)."""
        if not self._sent:
            return 0.0
        ready = self._sent[-1] + self.spacing_s
        if len(self._sent) == self.limit:
            ready = max(ready, self._sent[0] + self.window_s)
        return max(0.0, ready - self.clock())

    def record(self) -> None:
        """Count a send made now."""
        self._sent.append(self.clock())


def next_control(live: Collection[str], wanted: Iterable[str]) -> tuple[str, list[str]] | None:
    """The next message that brings a connection carrying `live` towards `wanted`, or None.

    UNSUBSCRIBE comes first, so the connection never carries more than MAX_STREAMS streams;
    each message lists every pending change of its kind (at most MAX_STREAMS names).
    """
    order = list(wanted)
    gone = sorted(set(live).difference(order))
    if gone:
        return "UNSUBSCRIBE", gone[:MAX_STREAMS]
    new = [name for name in order if name not in live]
    room = MAX_STREAMS - len(live)
    return ("SUBSCRIBE", new[:room]) if new and room > 0 else None


def stream_name(symbol: str, interval: str) -> str:
    """Binance's stream name: lowercase symbol, e.g. btcusdt@kline_1m."""
    return f"{symbol.lower()}@kline_{check_interval(interval)}"


def combined_url(ws_base: str, streams: Iterable[str] = ()) -> str:
    """The one place that knows the routed market path (see BINANCE.md)."""
    names = "/".join(streams)
    return f"{ws_base.rstrip('/')}/market/stream" + (f"?streams={names}" if names else "")


def candle_from_event(data: dict) -> Candle:
    """A Candle from a kline event's payload (`x` tells whether it closed)."""
    k = data["k"]
    return Candle(
        symbol=k["s"], interval=k["i"], open_time=int(k["t"]), open=float(k["o"]),
        high=float(k["h"]), low=float(k["l"]), close=float(k["c"]), volume=float(k["v"]),
        quote_volume=float(k["q"]), trades=int(k["n"]), taker_buy_base=float(k["V"]),
        taker_buy_quote=float(k["Q"]), closed=bool(k["x"]),
    )  # fmt: skip


@dataclass
class _Stream:
    symbol: str
    interval: str
    last_closed: int | None = None  # open time of the last closed candle delivered


@dataclass
class ClientStats:
    reconnects: int = 0
    messages: int = 0
    backfilled: int = 0
    connected_since: float | None = None
    streams: list[str] = field(default_factory=list)


class KlineStreamClient:
    """One WebSocket connection to Binance (or the demo exchange) carrying up to 200 streams.

    `on_candle` receives every update (open and closed candles); `on_state` receives
    ("conectado" | "reconectando", detail). Run `run()` as a task; `close()` stops it.
    """

    def __init__(
        self,
        ws_base: str,
        rest_url: str,
        on_candle: CandleHandler,
        on_state: StateHandler | None = None,
        max_connection_s: float = RECONNECT_BEFORE_S,
        clock: Clock = time.monotonic,
    ) -> None:
        self.ws_base = ws_base
        self.rest_url = rest_url
        self.on_candle = on_candle
        self.on_state = on_state
        self.max_connection_s = max_connection_s
        self.stats = ClientStats()
        self._streams: dict[str, _Stream] = {}  # wanted, in subscription order
        self._live: set[str] = set()  # what the open connection carries (or was asked to)
        self._changed = asyncio.Event()  # wanted may differ from live
        self._window = SendWindow(CONTROL_MESSAGES_PER_S, 1.0, CONTROL_SPACING_S, clock)
        self._ws: ClientConnection | None = None
        self._next_id = 1
        self._closing = False

    @property
    def streams(self) -> list[str]:
        return list(self._streams)

    async def subscribe(self, symbol: str, interval: str, after: int | None = None) -> None:
        """Add a stream: on the open connection with the next control message, else at the next
        connect. Raises ValueError beyond MAX_STREAMS streams.

        `after`: open time of the last closed candle the consumer already has (from storage);
        the gap between it and the live feed is then repaired over REST.
        """
        name = stream_name(symbol, interval)
        if name in self._streams:
            return
        if len(self._streams) >= MAX_STREAMS:
            raise ValueError(f"a connection carries at most {MAX_STREAMS} streams")
        self._streams[name] = _Stream(symbol.upper(), interval, after)
        self._changed.set()

    async def unsubscribe(self, symbol: str, interval: str) -> None:
        """Drop a stream; its updates stop at once, the exchange is told with the next message."""
        if self._streams.pop(stream_name(symbol, interval), None) is not None:
            self._changed.set()

    async def _sync(self, ws: ClientConnection) -> None:
        """Make the connection carry the wanted streams; the only sender of control messages.

        Each message waits for a free slot in the rate window and is composed only then, so
        every change made meanwhile travels in it: 50 releases at once make one UNSUBSCRIBE.
        """
        while True:
            await self._changed.wait()
            await asyncio.sleep(self._window.wait_s())
            message = next_control(self._live, self._streams)
            if message is None:
                self._changed.clear()
                continue
            method, names = message
            if method == "SUBSCRIBE":
                self._live.update(names)
            else:
                self._live.difference_update(names)
            self._window.record()
            request = {"method": method, "params": names, "id": self._next_id}
            self._next_id += 1
            await ws.send(json.dumps(request))

    async def run(self) -> None:
        """Connect, listen, and reconnect forever with exponential backoff and jitter."""
        delay = BACKOFF_START_S
        while not self._closing:
            names = list(self._streams)  # changes during the handshake go by message
            try:
                async with connect(
                    combined_url(self.ws_base, names), max_queue=None, open_timeout=10
                ) as ws:
                    self._ws, self._live = ws, set(names)
                    async with self._syncing(ws):
                        self.stats.connected_since = time.time()
                        await self._state("conectado", redact_url(self.ws_base))
                        await self._repair_all()
                        delay = BACKOFF_START_S
                        await self._listen(ws)
            except (OSError, ConnectionClosed, TimeoutError, ExchangeError) as error:
                # ExchangeError: the REST gap repair failed; reconnecting repairs again later.
                log.info("kline stream connection lost: %s", redact_url(str(error)))
            finally:
                self._ws = None
            if self._closing:
                return
            self.stats.reconnects += 1
            await self._state("reconectando", f"retry in {delay:.1f} s")
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, BACKOFF_MAX_S)

    @contextlib.asynccontextmanager
    async def _syncing(self, ws: ClientConnection) -> AsyncIterator[None]:
        """The connection's sender task, running while the block does (even during repairs)."""
        self._changed.set()  # the wanted streams may have changed during the handshake
        sync = asyncio.create_task(self._sync(ws))
        try:
            yield
        finally:
            sync.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await sync

    async def _listen(self, ws: ClientConnection) -> None:
        deadline = time.monotonic() + self.max_connection_s
        while not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.info("reconnecting before the exchange's 24 h cut")
                return
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=remaining)
            except TimeoutError:
                return
            self.stats.messages += 1
            message = json.loads(raw)
            data = message.get("data")
            if isinstance(data, dict) and data.get("e") == "kline":
                await self._deliver(candle_from_event(data))
            elif "error" in message:
                log.warning("the exchange refused request %s: %s", message.get("id"), message)

    async def _deliver(self, candle: Candle) -> None:
        stream = self._streams.get(stream_name(candle.symbol, candle.interval))
        if stream is None:
            return
        if candle.closed:
            if stream.last_closed is not None and candle.open_time <= stream.last_closed:
                return  # already delivered (e.g. by a backfill)
            step = interval_ms(candle.interval)
            if stream.last_closed is not None and candle.open_time > stream.last_closed + step:
                await self._repair(stream, candle.open_time)
            stream.last_closed = candle.open_time
        elif stream.last_closed is not None and candle.open_time <= stream.last_closed:
            return
        await self.on_candle(candle)

    async def _repair_all(self) -> None:
        for stream in list(self._streams.values()):
            if stream.last_closed is not None:
                await self._repair(stream, None)

    async def _repair(self, stream: _Stream, before: int | None) -> None:
        """Deliver, in order, the closed candles after the last one delivered (and before
        `before`, when given) fetched over REST."""
        step = interval_ms(stream.interval)
        start = (stream.last_closed or 0) + step
        end = None if before is None else before - 1
        now_ms, rows = await asyncio.to_thread(self._fetch, stream, start, end)
        frame = klines_to_frame(rows)
        # Closed by the exchange's clock (the demo's may run faster than ours).
        fresh = (frame["close_time"] < now_ms) & (frame["open_time"] > (stream.last_closed or 0))
        for candle in frame_candles(frame[fresh], stream.symbol, stream.interval):
            stream.last_closed = candle.open_time
            self.stats.backfilled += 1
            await self.on_candle(candle)

    def _fetch(self, stream: _Stream, start: int, end: int | None) -> tuple[int, list]:
        rest = BinanceRest(self.rest_url, retries=3)
        return rest.server_time(), rest.klines(stream.symbol, stream.interval, start, end, 1500)

    async def _state(self, state: str, detail: str) -> None:
        if self.on_state is not None:
            await self.on_state(state, detail)

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
