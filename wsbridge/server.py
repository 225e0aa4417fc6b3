"""The bridge's WebSocket server: one handler per browser, /health, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import signal
import threading
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from config.settings import NO_TOKEN, Secret, check_bind
from core.errors import DataError, KryptelionError
from wsbridge.bots import BotHost
from wsbridge.hub import Client, Hub

log = logging.getLogger(__name__)
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
ACTIONS = ("suscribir", "cambiar", "cancelar")
MAX_FIELD_CHARS = 32  # longer than any accion, symbol or interval
USAGE = 'expected {"accion": "suscribir|cambiar|cancelar", "symbol": ..., "interval": ...}'


class CommandError(DataError):
    """A control message the bridge cannot accept; `field` names the part at fault (None: the
    whole message); `fatal` ones (hostile rather than mistaken) also close the connection."""

    def __init__(self, message: str, field: str | None = None, fatal: bool = False) -> None:
        super().__init__(message)
        self.field, self.fatal = field, fatal


def _error(message: str, field: str | None = None) -> str:
    body = {"tipo": "error", "error": message}
    if field is not None:
        body["campo"] = field
    return json.dumps(body)


def parse_command(raw: str | bytes) -> tuple[str, str, str]:
    """(accion, SYMBOL, interval) of a control message; raises CommandError naming the field."""
    try:
        message = json.loads(raw)
    except RecursionError:
        raise CommandError("the message is nested too deeply", fatal=True) from None
    except ValueError:  # also bytes that are not UTF-8
        raise CommandError(USAGE) from None
    if not isinstance(message, dict):
        raise CommandError(USAGE)
    values = []
    for name in ("accion", "symbol", "interval"):
        value = message.get(name)
        if not isinstance(value, str):
            raise CommandError(f"{name} must be a string; {USAGE}", name)
        if len(value) > MAX_FIELD_CHARS:
            raise CommandError(f"{name} is too long ({len(value)} characters)", name)
        values.append(value)
    action, symbol, interval = values
    if action not in ACTIONS:
        raise CommandError(f"unknown accion {action!r}; valid: {', '.join(ACTIONS)}", "accion")
    return action, symbol.upper(), interval


class BridgeServer:
    """Serves ws://host:port/?symbol=&interval= and GET /health for one Hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != "/health":
            return None
        body = json.dumps(self.hub.health()).encode()
        headers = Headers({"Content-Type": "application/json", "Content-Length": str(len(body))})
        return Response(http.HTTPStatus.OK.value, "OK", headers, body)

    async def handler(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query)  # type: ignore[union-attr]
        symbol = (query.get("symbol") or [""])[0].upper()
        interval = (query.get("interval") or [""])[0]
        if len(self.hub.clients) >= self.hub.max_clients:
            await ws.send(_error("too many clients, try again later"))
            await ws.close(TRY_AGAIN_LATER, "too many clients")
            return
        problem = self.hub.check_stream(symbol, interval)
        if problem:
            field, why = problem
            await ws.send(_error(why, field))
            await ws.close(POLICY_VIOLATION, why[:120])
            return
        client = Client(ws)
        self.hub.clients.add(client)
        try:
            try:
                await self._join(client, symbol, interval)
            except KryptelionError as error:
                await ws.send(_error(str(error)))
                await ws.close(TRY_AGAIN_LATER, "upstream unavailable")
                return
            async for raw in ws:
                await self._command(client, raw)
        except ConnectionClosed:
            pass
        finally:
            self.hub.clients.discard(client)
            for key in list(client.streams):
                self.hub.unsubscribe(client, key)

    async def _join(self, client: Client, symbol: str, interval: str) -> None:
        sub = await self.hub.subscribe(client, symbol, interval)
        await client.ws.send(json.dumps(self.hub.snapshot(sub), separators=(",", ":")))

    async def _command(self, client: Client, raw: str | bytes) -> None:
        """{"accion": "suscribir" | "cambiar" | "cancelar", "symbol": ..., "interval": ...}.

        Bad input gets an `error` naming its field; a stream already followed gets a short
        `estado` instead of a second snapshot.
        """
        try:
            action, symbol, interval = parse_command(raw)
            if problem := self.hub.check_stream(symbol, interval):
                field, why = problem
                raise CommandError(why, field)
        except CommandError as error:
            await client.ws.send(_error(str(error), error.field))
            if error.fatal:
                log.info("closing a browser connection: %s", error)
                await client.ws.close(POLICY_VIOLATION, str(error)[:120])
            return
        key = (symbol, interval)
        if action == "cancelar":
            self.hub.unsubscribe(client, key)
            return
        if action == "cambiar":
            for other in client.streams - {key}:
                self.hub.unsubscribe(client, other)
        if key in client.streams:
            await client.ws.send(json.dumps({"tipo": "estado", "estado": self.hub.upstream_state,
                                             "detalle": "ya suscrito", "symbol": symbol,
                                             "interval": interval}))  # fmt: skip
            return
        try:
            await self._join(client, symbol, interval)
        except KryptelionError as error:  # the upstream cannot start it now; the rest goes on
            await client.ws.send(_error(str(error)))


async def run_bridge(hub: Hub, host: str, port: int, ready: asyncio.Event | None = None,
                     stop: asyncio.Event | None = None, *, api_token: Secret = NO_TOKEN,
                     bots: BotHost | None = None) -> None:  # fmt: skip
    """Serve until SIGINT/SIGTERM (or `stop`), then close browsers and upstream cleanly.

    `bots`: a bot host run beside the bridge, its messages broadcast to every browser.

    Raises ConfigError, before contacting the exchange, for a host outside loopback without
    `api_token`.
    """
    host = check_bind(host, api_token, "the bridge")
    await hub.load_symbols()
    bridge = BridgeServer(hub)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    server: Server
    async with serve(bridge.handler, host, port, process_request=bridge.process_request,
                     compression=None) as server:  # fmt: skip
        hub.port = server.sockets[0].getsockname()[1]
        log.info("bridge on ws://%s:%d/?symbol=&interval= (health: /health)", host, hub.port)
        if ready is not None:
            ready.set()
        running = asyncio.ensure_future(bots.run()) if bots is not None else None
        await stop.wait()
        server.close()
        if running is not None:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    await hub.close()


class BridgeThread:
    """The bridge on its own event loop in a background thread (for `python run.py`)."""

    def __init__(
        self,
        hub: Hub,
        host: str,
        port: int,
        *,
        api_token: Secret = NO_TOKEN,
        bots: BotHost | None = None,
    ) -> None:
        self.hub, self.host, self.port, self.bots = hub, host, port, bots
        self._api_token = api_token
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wsbridge", daemon=True)

    def start(self, timeout_s: float = 15.0) -> BridgeThread:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the bridge did not start in time")
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        ready = asyncio.Event()
        serving = asyncio.create_task(
            run_bridge(
                self.hub,
                self.host,
                self.port,
                ready,
                self._stop,
                api_token=self._api_token,
                bots=self.bots,
            )  # fmt: skip
        )
        await ready.wait()
        self._ready.set()
        await serving

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=15)
