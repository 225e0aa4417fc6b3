"""Binance's user data stream: listen key upkeep, endless reconnect, a REST snapshot first.

The consumer's `on_event` coroutine receives, in order, an AccountSnapshot after every connect,
reconnect and key rotation, then the live OrderUpdate, AccountUpdate and AlgoUpdate events
until the next snapshot; so nothing that happened while the stream was down is lost. A live
event older than the snapshot's own copy of its order is dropped (it was buffered before the
snapshot was read). The listen key is a secret: it appears in no log line or message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from config.settings import redact_url
from core.errors import ExchangeError, ListenKeyError, MalformedPayloadError
from core.exchange.binance_errors import scrub
from core.exchange.trading import TradingClient
from core.exchange.trading_types import AccountSnapshot
from core.exchange.user_events import (
    AccountUpdate,
    AlgoUpdate,
    ListenKeyExpired,
    OrderUpdate,
    UserEvent,
    parse_user_event,
)

log = logging.getLogger(__name__)
KEEPALIVE_S = 30 * 60.0  # a key lives 60 minutes; each keep-alive extends it
KEEPALIVE_RETRY_S = 60.0  # after a failed keep-alive (not an expired key)
BACKOFF_START_S, BACKOFF_MAX_S = 0.5, 30.0

StreamItem = AccountSnapshot | OrderUpdate | AccountUpdate | AlgoUpdate
EventHandler = Callable[[StreamItem], Awaitable[None]]
StateHandler = Callable[[str, str], Awaitable[None]]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def user_stream_url(ws_base: str, listen_key: str) -> str:
    """The one place that knows the private stream path (see BINANCE.md)."""
    return f"{ws_base.rstrip('/')}/private/ws?listenKey={listen_key}"


class _Scrub(logging.Filter):
    """Redacts the listen key from the websockets library's own (debug) log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(str(record.msg))
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in args)
        return True


_WS_LOG = logging.getLogger(__name__ + ".ws")
_WS_LOG.addFilter(_Scrub())


@dataclass
class UserStreamStats:
    connects: int = 0
    snapshots: int = 0
    events: int = 0
    dropped_stale: int = 0
    keepalives: int = 0
    rotations: int = 0


class UserStream:
    """One account's user data stream. Run `run()` as a task; `close()` stops it.

    `on_event` is awaited for every item, one at a time, so a slow consumer slows the reading
    (the WebSocket buffers) instead of losing events; an exception it raises ends `run()`.
    `on_state` receives ("conectado" | "reconectando", detail). `keepalive_s`, `clock` and
    `sleep` (of the keep-alive) are injectable so tests move time instead of waiting.
    """

    def __init__(
        self,
        client: TradingClient,
        ws_base: str,
        on_event: EventHandler,
        on_state: StateHandler | None = None,
        *,
        keepalive_s: float = KEEPALIVE_S,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        open_timeout_s: float = 10.0,
    ) -> None:
        self.client, self.ws_base = client, ws_base
        self.on_event, self.on_state = on_event, on_state
        self.keepalive_s, self._clock, self._sleep = keepalive_s, clock, sleep
        self.open_timeout_s = open_timeout_s
        self.stats = UserStreamStats()
        self._key: str | None = None
        self._rotate = False
        self._closing = False
        self._ws: ClientConnection | None = None
        self._versions: dict[tuple[str, int], int] = {}  # (kind, id) → snapshot's update time

    async def run(self) -> None:
        """Connect, snapshot, listen; reconnect forever with exponential backoff and jitter."""
        delay = BACKOFF_START_S
        try:
            while not self._closing:
                try:
                    await self._session()
                    delay = BACKOFF_START_S  # a session that ends cleanly resets the backoff
                except (OSError, TimeoutError, WebSocketException, ExchangeError) as error:
                    if isinstance(error, InvalidStatus | ListenKeyError):
                        self._rotate = True  # the key was refused: a fresh one next time
                    log.info("user stream lost: %s: %s", type(error).__name__, scrub(str(error)))
                finally:
                    self._ws = None
                if self._closing:
                    return
                await self._state("reconectando", f"retry in {delay:.1f} s")
                if not self._rotate:
                    await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                    delay = min(delay * 2, BACKOFF_MAX_S)
        finally:
            await self._close_key()

    async def _session(self) -> None:
        """One connection: the key, the socket, its keeper, the snapshot, then live events."""
        if self._key is None or self._rotate:
            self._key = await asyncio.to_thread(self.client.new_listen_key)
            self.stats.rotations += self._rotate
            self._rotate = False
        url = user_stream_url(self.ws_base, self._key)
        async with connect(url, open_timeout=self.open_timeout_s, logger=_WS_LOG) as ws:
            self._ws = ws
            self.stats.connects += 1
            await self._state("conectado", redact_url(self.ws_base))
            keeper = asyncio.create_task(self._keep_alive(self._key, ws))
            try:
                # Connected first, then read: what happens meanwhile waits in the socket.
                await self._resync()
                await self._listen(ws)
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper

    async def _resync(self) -> None:
        snapshot = await asyncio.to_thread(self.client.snapshot)
        self._versions = {("order", o.order_id): o.update_time for o in snapshot.open_orders}
        self._versions.update(
            {("algo", a.algo_id): a.update_time for a in snapshot.open_algo_orders}
        )
        self.stats.snapshots += 1
        await self.on_event(snapshot)

    async def _listen(self, ws: ClientConnection) -> None:
        async for raw in ws:
            try:
                event = parse_user_event(json.loads(raw))
            except (ValueError, MalformedPayloadError) as error:
                # Never guess: the exchange's REST state replaces what the event said.
                log.error("unreadable user stream event (%s): re-reading the account", error)
                await self._resync()
                continue
            if isinstance(event, ListenKeyExpired):
                log.warning("listen key expired: rotating it")
                self._rotate = True
                return
            if event is None:
                continue
            if self._stale(event):
                self.stats.dropped_stale += 1
                continue
            self.stats.events += 1
            await self.on_event(event)

    def _stale(self, event: UserEvent) -> bool:
        """An order or algo event older than the snapshot's copy of that order."""
        if isinstance(event, OrderUpdate):
            seen = self._versions.get(("order", event.order_id))
        elif isinstance(event, AlgoUpdate):
            seen = self._versions.get(("algo", event.algo_id))
        else:
            return False
        return seen is not None and event.transaction_time < seen

    async def _keep_alive(self, key: str, ws: ClientConnection) -> None:
        """PUT the key every `keepalive_s`; an expired key (-1125) closes the socket so the
        session restarts with a fresh key and a fresh snapshot."""
        due = self._clock() + self.keepalive_s
        while True:
            await self._sleep(max(0.0, due - self._clock()))
            if self._clock() < due:
                continue
            try:
                await asyncio.to_thread(self.client.keep_alive_listen_key, key)
                self.stats.keepalives += 1
                due = self._clock() + self.keepalive_s
            except ListenKeyError:
                log.warning("listen key lapsed (-1125): rotating it")
                self._rotate = True
                await ws.close()
                return
            except ExchangeError as error:
                log.warning("listen key keep-alive failed: %s", type(error).__name__)
                due = self._clock() + min(KEEPALIVE_RETRY_S, self.keepalive_s)

    async def _close_key(self) -> None:
        if self._key is None:
            return
        key, self._key = self._key, None
        with contextlib.suppress(ExchangeError):
            await asyncio.to_thread(self.client.close_listen_key, key)

    async def _state(self, state: str, detail: str) -> None:
        if self.on_state is not None:
            await self.on_state(state, detail)

    async def close(self) -> None:
        """Stop: the socket closes, `run()` returns after closing the listen key."""
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
