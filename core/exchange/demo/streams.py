"""Kline WebSocket streams: one ticker per stream encodes each event once and fans it out."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections import deque
from typing import Any, NamedTuple

from aiohttp import WSCloseCode, WSMsgType, web

from core.exchange.demo.market import DemoClock, DemoMarket
from core.exchange.demo.wire import combined, kline_event
from core.exchange.limits import KLINE_PUSH_S, MAX_MESSAGES_PER_S, MAX_STREAMS
from core.intervals import INTERVALS, floor_open, next_open

log = logging.getLogger(__name__)

TICK_S = KLINE_PUSH_S
# A client this many messages behind is dropped rather than buffered without bound.
QUEUE_LIMIT = 4096
# At very high speeds several candles close within one tick; beyond this, clients backfill.
MAX_FINALS_PER_TICK = 100
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
RECEIVED_KEPT = 10_000  # control messages remembered for inspection (tests, the console)


class Received(NamedTuple):
    """One message a client sent on its stream connection, stamped when the server read it."""

    at: float  # time.monotonic()
    connection: int  # Connection.number


class RequestError(Exception):
    """A live-subscription request Binance would refuse; `code` is Binance's WS error code."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


class Connection:
    """One client WebSocket: its streams, payload style and bounded outgoing queue."""

    def __init__(
        self, ws: web.WebSocketResponse, request: web.Request, combined: bool, number: int = 0
    ) -> None:
        self.ws, self.request, self.combined = ws, request, combined
        self.number = number  # unique per StreamHub, unlike id(), which is reused
        self.streams: dict[str, None] = {}  # ordered set, as LIST_SUBSCRIPTIONS reports it
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_LIMIT)
        self._received: deque[float] = deque()
        self._closing: asyncio.Future[bool] | None = None

    def push(self, text: str) -> None:
        """Queue `text`; a client that cannot keep up is closed instead."""
        if self._closing is not None:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("closing a WebSocket client %d messages behind", QUEUE_LIMIT)
            self.close(WSCloseCode.POLICY_VIOLATION, b"too slow")

    def close(self, code: int, message: bytes) -> None:
        """Start closing from synchronous code (the task is kept so it cannot be collected)."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self.ws.close(code=code, message=message))

    async def write_loop(self) -> None:
        """Send queued messages in order until the socket closes."""
        while True:
            text = await self.queue.get()
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    def over_rate(self) -> bool:
        """True when the client sent more than Binance's 10 messages in the last second."""
        now = time.monotonic()
        self._received.append(now)
        while self._received and now - self._received[0] > 1.0:
            self._received.popleft()
        return len(self._received) > MAX_MESSAGES_PER_S


class StreamTicker:
    """Every 250 ms of real time: the open candle's state, plus a final event per closed one."""

    def __init__(self, hub: StreamHub, stream: str, symbol: str, interval: str) -> None:
        self.hub, self.stream, self.symbol, self.interval = hub, stream, symbol, interval
        self.subscribers: set[Connection] = set()
        self._last_open: int | None = None
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_S - time.time() % TICK_S)
            if self.hub.paused:
                # Candles that close during a pause get no final event, as after a real outage.
                self._last_open = None
                continue
            try:
                events = self.events(self.hub.clock.now_ms())
            except Exception:
                # One bad tick must not silence the stream for every subscriber.
                log.exception("stream %s: event computation failed", self.stream)
                continue
            for event in events:
                wrapped = combined(self.stream, event)
                for connection in tuple(self.subscribers):
                    connection.push(wrapped if connection.combined else event)

    def events(self, now_ms: int) -> list[str]:
        """Encoded events due at `now_ms`: finals of candles closed since the last tick first."""
        market = self.hub.market
        if now_ms < market.spec(self.symbol).onboard_ms:
            return []
        current = floor_open(now_ms, self.interval)
        opens: list[int] = []
        if self._last_open is not None:
            opened = self._last_open
            while opened < current and len(opens) < MAX_FINALS_PER_TICK:
                opens.append(opened)
                opened = next_open(opened, self.interval)
        self._last_open = current
        events = [self._event(t, now_ms, closed=True) for t in opens]
        events.append(self._event(current, now_ms, closed=False))
        return events

    def _event(self, open_ms: int, now_ms: int, closed: bool) -> str:
        market = self.hub.market
        batch = market.klines(self.symbol, self.interval, now_ms, open_ms, open_ms, limit=1)
        first = market.first_trade_id(self.symbol, open_ms)
        return kline_event(batch, now_ms, first, closed)


class StreamHub:
    """All WebSocket connections and the tickers of the streams they listen to."""

    def __init__(
        self,
        market: DemoMarket,
        clock: DemoClock,
        ping_interval_s: float = 180.0,
        max_connection_s: float = 86_400.0,
    ) -> None:
        self.market, self.clock = market, clock
        self.ping_interval_s, self.max_connection_s = ping_interval_s, max_connection_s
        self.connections: set[Connection] = set()
        self.tickers: dict[str, StreamTicker] = {}
        self.paused = False
        self.received: deque[Received] = deque(maxlen=RECEIVED_KEPT)
        self.rate_closes = 0  # connections closed 1008 for sending over 10 messages a second
        self._numbers = itertools.count(1)

    def connection(
        self, ws: web.WebSocketResponse, request: web.Request, combined: bool
    ) -> Connection:
        """A new Connection, numbered and registered."""
        connection = Connection(ws, request, combined, next(self._numbers))
        self.connections.add(connection)
        return connection

    def parse(self, stream: Any) -> tuple[str, str] | None:
        """(symbol, interval) of a valid `<symbol>@kline_<interval>` name, else None."""
        if not isinstance(stream, str) or "@kline_" not in stream:
            return None
        prefix, interval = stream.split("@kline_", 1)
        symbol = prefix.upper()
        if prefix != prefix.lower() or symbol not in self.market.symbols:
            return None
        return (symbol, interval) if interval in INTERVALS else None

    def subscribe(self, connection: Connection, streams: list[str]) -> None:
        for stream in streams:
            if stream in connection.streams:
                continue
            connection.streams[stream] = None
            ticker = self.tickers.get(stream)
            if ticker is None:
                symbol, interval = self.parse(stream) or ("", "")
                ticker = self.tickers[stream] = StreamTicker(self, stream, symbol, interval)
            ticker.subscribers.add(connection)

    def unsubscribe(self, connection: Connection, streams: list[str]) -> None:
        for stream in streams:
            connection.streams.pop(stream, None)
            ticker = self.tickers.get(stream)
            if ticker is None:
                continue
            ticker.subscribers.discard(connection)
            if not ticker.subscribers:
                ticker.task.cancel()
                del self.tickers[stream]

    async def close_all(self, code: int, message: bytes, abort: bool = False) -> int:
        """Close every connection (abort: cut the TCP connection, no close frame); the count."""
        connections = list(self.connections)
        if abort:
            for connection in connections:
                if connection.request.transport is not None:
                    connection.request.transport.abort()
        else:
            closing = [
                asyncio.ensure_future(c.ws.close(code=code, message=message)) for c in connections
            ]
            if closing:
                await asyncio.wait(closing, timeout=2.0)
        return len(connections)

    def stop(self) -> None:
        """Cancel every ticker (server shutdown)."""
        for ticker in self.tickers.values():
            ticker.task.cancel()
        self.tickers.clear()

    def handle(self, connection: Connection, text: str) -> str:
        """Answer one live-subscription request with Binance's reply."""
        request_id = None
        try:
            request = _load(text)
            request_id = _request_id(request)
            result = self._dispatch(connection, request)
            return json.dumps({"result": result, "id": request_id})
        except RequestError as error:
            body = {"error": {"code": error.code, "msg": error.msg}, "id": request_id}
            return json.dumps(body)

    def _dispatch(self, connection: Connection, request: dict[str, Any]) -> Any:
        method = request.get("method")
        params = request.get("params", [])
        if method is None:
            raise RequestError(2, "Invalid request: missing field `method`")
        if not isinstance(params, list):
            raise RequestError(2, "Invalid request: params must be an array")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if any(self.parse(stream) is None for stream in params):
                raise RequestError(2, "Invalid request: invalid stream")
            if method == "UNSUBSCRIBE":
                self.unsubscribe(connection, params)
                return None
            if len(connection.streams.keys() | set(params)) > MAX_STREAMS:
                raise RequestError(2, f"Invalid request: too many streams (max {MAX_STREAMS})")
            self.subscribe(connection, params)
            return None
        if method == "LIST_SUBSCRIPTIONS":
            return list(connection.streams)
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return _property(connection, method, params)
        expected = ", ".join(f"`{m}`" for m in _METHODS)
        raise RequestError(
            2, f"Invalid request: unknown variant `{method}`, expected one of {expected}"
        )


def _load(text: str) -> dict[str, Any]:
    try:
        request = json.loads(text)
    except ValueError as error:
        raise RequestError(3, f"Invalid JSON: {error}") from None
    if not isinstance(request, dict):
        raise RequestError(2, "Invalid request: expected a JSON object")
    return request


def _request_id(request: dict[str, Any]) -> int | None:
    value = request.get("id")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise RequestError(2, "Invalid request: request ID must be an unsigned integer")
    return value


def _property(connection: Connection, method: str, params: list[Any]) -> Any:
    if not params or params[0] != "combined":
        raise RequestError(0, "Unknown property")
    if method == "GET_PROPERTY":
        return connection.combined
    if len(params) != 2 or not isinstance(params[1], bool):
        raise RequestError(1, "Invalid value type: expected Boolean")
    connection.combined = params[1]
    return None


HUB = web.AppKey("hub", StreamHub)


def _requested_streams(request: web.Request) -> tuple[bool, list[str]]:
    """(combined?, streams) from a /market/ws/<a>/<b> path or a ?streams=a/b query."""
    is_combined = request.path.rstrip("/").endswith("/stream")
    text = (
        request.query.get("streams", "") if is_combined else request.match_info.get("streams", "")
    )
    return is_combined, [s for s in text.split("/") if s]


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    """A raw (/ws) or combined (/stream) market stream connection with live subscriptions."""
    hub = request.app[HUB]
    is_combined, streams = _requested_streams(request)
    if len(streams) > MAX_STREAMS or any(hub.parse(s) is None for s in streams):
        # A demo choice: refuse the upgrade with a reason rather than stay silent.
        body = {"code": 2, "msg": "Invalid request: invalid stream"}
        return web.json_response(body, status=400)
    # No permessage-deflate: compressing per connection would undo encoding each event once.
    ws = web.WebSocketResponse(heartbeat=hub.ping_interval_s, compress=False)
    try:
        await ws.prepare(request)
    except ConnectionResetError:  # aiohttp's ClientConnectionResetError is one
        log.debug("a stream client left during its handshake")  # nothing to serve
        return ws
    connection = hub.connection(ws, request, is_combined)
    writer = asyncio.ensure_future(connection.write_loop())
    loop = asyncio.get_running_loop()
    expiry = loop.call_later(hub.max_connection_s, _expire, connection)
    hub.subscribe(connection, streams)
    try:
        await _serve(hub, connection)
    finally:
        expiry.cancel()
        hub.unsubscribe(connection, list(connection.streams))
        hub.connections.discard(connection)
        writer.cancel()
    return ws


async def _serve(hub: StreamHub, connection: Connection) -> None:
    async for message in connection.ws:
        hub.received.append(Received(time.monotonic(), connection.number))
        if connection.over_rate():
            hub.rate_closes += 1
            log.warning("closing a WebSocket client over %d messages/s", MAX_MESSAGES_PER_S)
            await connection.ws.close(
                code=WSCloseCode.POLICY_VIOLATION, message=b"too many requests"
            )
            return
        if message.type == WSMsgType.TEXT:
            connection.push(hub.handle(connection, message.data))
        elif message.type == WSMsgType.BINARY:
            connection.push(hub.handle(connection, message.data.decode("utf-8", "replace")))


def _expire(connection: Connection) -> None:
    # Binance cuts every connection after 24 hours; clients must reconnect.
    connection.close(WSCloseCode.GOING_AWAY, b"connection lifetime reached")
