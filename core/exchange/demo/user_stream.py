"""The demo's user data stream: each account's events pushed, in order, to its listen-key
connections (`/private/ws?listenKey=` and the legacy `/ws/<listenKey>`), and the ticker that
keeps the matching engine walking and expires listen keys."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import WSCloseCode, web

from core.exchange.demo.accounts import Account, Accounts
from core.exchange.demo.market import DemoClock
from core.exchange.demo.matching import MatchingEngine
from core.exchange.demo.streams import QUEUE_LIMIT, TICK_S, websocket_handler

log = logging.getLogger(__name__)


class UserStreams:
    """The live user-stream connections of every account, keyed by API key."""

    def __init__(self, accounts: Accounts, clock: DemoClock) -> None:
        self.accounts, self.clock = accounts, clock
        self._queues: dict[str, set[asyncio.Queue[str | None]]] = {}
        self._keys: dict[asyncio.Queue[str | None], str] = {}  # queue → its listen key

    def push(self, account: Account, event: dict[str, Any]) -> None:
        """Queue `event` for every connection of the account (a stuck one is closed)."""
        queues = self._queues.get(account.api_key)
        if not queues:
            return
        text = json.dumps(event, separators=(",", ":"))
        for queue in list(queues):
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:
                log.warning("closing a user stream %d events behind", QUEUE_LIMIT)
                self._end(account.api_key, queue)

    def drop_all(self) -> int:
        """Close every user stream (the drop fault); returns how many."""
        dropped = 0
        for api_key, queues in list(self._queues.items()):
            for queue in list(queues):
                self._end(api_key, queue)
                dropped += 1
        return dropped

    def expire_keys(self, now_ms: int) -> None:
        """Send `listenKeyExpired` to connections whose key lapsed, then close them."""
        for api_key, queues in list(self._queues.items()):
            account = self.accounts.get(api_key, now_ms)
            for queue in list(queues):
                key = self._keys[queue]
                if self.accounts.listen_key_owner(key, now_ms) is account:
                    continue
                event = {"e": "listenKeyExpired", "E": now_ms, "listenKey": key}
                try:
                    queue.put_nowait(json.dumps(event, separators=(",", ":")))
                except asyncio.QueueFull:
                    pass
                self._end(api_key, queue)

    def _end(self, api_key: str, queue: asyncio.Queue[str | None]) -> None:
        self._queues.get(api_key, set()).discard(queue)
        self._keys.pop(queue, None)
        try:
            queue.put_nowait(None)
        except asyncio.QueueFull:
            queue.get_nowait()
            queue.put_nowait(None)

    async def serve(self, request: web.Request, account: Account, key: str) -> web.StreamResponse:
        """One user-stream connection: events until the client leaves or the key lapses."""
        ws = web.WebSocketResponse(heartbeat=180.0, compress=False)
        # Registered before the handshake completes: an order the client places as soon as
        # it is connected must find its events queued.
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_LIMIT)
        self._queues.setdefault(account.api_key, set()).add(queue)
        self._keys[queue] = key
        reader: asyncio.Future[None] | None = None
        try:
            await ws.prepare(request)
            reader = asyncio.ensure_future(_drain(ws))
            while (text := await _next(queue, reader)) is not None:
                await ws.send_str(text)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self._queues.get(account.api_key, set()).discard(queue)
            self._keys.pop(queue, None)
            if reader is not None:
                reader.cancel()
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"user stream closed")
        return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) what the client sends, so pings and closes are answered."""
    async for _ in ws:
        pass


async def _next(queue: asyncio.Queue[str | None], reader: asyncio.Future[None]) -> str | None:
    """The next event, or None once the client has gone."""
    getter: asyncio.Future[str | None] = asyncio.ensure_future(queue.get())
    waited: set[asyncio.Future[Any]] = {getter, reader}
    done, _ = await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
    if getter in done:
        return getter.result()
    getter.cancel()
    return None


USER_STREAMS = web.AppKey("user_streams", UserStreams)
ENGINE = web.AppKey("matching_engine", MatchingEngine)


async def _user_connection(request: web.Request, key: str) -> web.StreamResponse:
    streams = request.app[USER_STREAMS]
    account = streams.accounts.listen_key_owner(key, streams.clock.now_ms())
    if account is None:
        return web.json_response(
            {"code": -1125, "msg": "This listenKey does not exist."}, status=400
        )
    return await streams.serve(request, account, key)


async def private_handler(request: web.Request) -> web.StreamResponse:
    """/private/ws?listenKey=…: the current user data stream URL."""
    return await _user_connection(request, request.query.get("listenKey", ""))


async def legacy_handler(request: web.Request) -> web.StreamResponse:
    """/ws/<listenKey> is a user stream; any other /ws/<streams> a market stream."""
    streams = request.app[USER_STREAMS]
    key = request.match_info["streams"]
    if "@" not in key and streams.accounts.listen_key_owner(key, streams.clock.now_ms()):
        return await _user_connection(request, key)
    return await websocket_handler(request)


async def fault_drop_user_streams(request: web.Request) -> web.Response:
    dropped = request.app[USER_STREAMS].drop_all()
    log.warning("fault: dropped %d user streams", dropped)
    return web.json_response({"dropped": dropped})


async def _tick(app: web.Application) -> None:
    """Walk the market for resting orders and lapse listen keys, every stream tick."""
    engine, streams = app[ENGINE], app[USER_STREAMS]
    while True:
        now = streams.clock.now_ms()
        try:
            engine.advance(now)
            streams.expire_keys(now)
        except Exception:  # one bad step must not stop the exchange's clockwork
            log.exception("demo matching tick failed")
        await asyncio.sleep(TICK_S)


async def _ticker(app: web.Application):  # type: ignore[no-untyped-def]
    task = asyncio.ensure_future(_tick(app))
    yield
    task.cancel()


def add_user_streams(
    app: web.Application, engine: MatchingEngine, streams: UserStreams, faults: bool
) -> None:
    """Register the user stream routes and the matching ticker on `app`."""
    app[ENGINE], app[USER_STREAMS] = engine, streams
    app.router.add_get("/private/ws", private_handler)
    app.router.add_get("/ws/{streams:.+}", legacy_handler)
    if faults:
        app.router.add_post("/_demo/fault/drop_user_streams", fault_drop_user_streams)
    app.cleanup_ctx.append(_ticker)
