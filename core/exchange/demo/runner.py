"""Ways to run the demo exchange: blocking (CLI), inside an event loop, or in a thread (tests)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from config.settings import NO_TOKEN, Secret, check_bind, is_loopback, url_host
from core.errors import ConfigError, ExchangeError, KryptelionError
from core.exchange.demo.server import DemoOptions, create_app

if TYPE_CHECKING:
    from config.settings import Settings
    from core.exchange.demo.process import DemoExchangeProcess

log = logging.getLogger(__name__)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ExchangeError(f"demo exchange cannot listen on {host}:{port}: {error}") from None
    return sock


class DemoAddress:
    """Where a demo exchange listens (`host`, `port`) and the URLs clients use for it."""

    host: str
    port: int

    @property
    def rest_url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{url_host(self.host)}:{self.port}"


class DemoLauncher(DemoAddress):
    """What a demo exchange serving outside the caller's event loop is started from: its
    options, address (port 0: a free one) and the API token a public bind needs."""

    def __init__(
        self,
        options: DemoOptions | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_token: Secret = NO_TOKEN,
    ) -> None:
        self.options = options or DemoOptions()
        self.host, self.port = host, port
        self._api_token = api_token


class DemoExchangeServer(DemoAddress):
    """A running demo exchange inside the current event loop."""

    def __init__(self, runner: web.AppRunner, host: str, port: int) -> None:
        self._runner = runner
        self.host, self.port = host, port

    async def stop(self) -> None:
        """Close every WebSocket (1001) and stop listening."""
        await self._runner.cleanup()


def _checked_host(host: str, options: DemoOptions, api_token: Secret) -> str:
    # The fault routes answer anyone, token or not, so they never leave this machine.
    if options.faults and not is_loopback(host):
        raise ConfigError(
            f"--faults: the demo exchange's fault routes have no authentication; serve them on "
            f"127.0.0.1, not {host}"
        )
    return check_bind(host, api_token, "the demo exchange")


async def start_demo_exchange(
    host: str = "127.0.0.1",
    port: int = 9100,
    options: DemoOptions | None = None,
    *,
    api_token: Secret = NO_TOKEN,
) -> DemoExchangeServer:
    """Start serving in the running loop (port 0: a free port).

    Raises ConfigError for a host outside loopback without `api_token` (or at all with the fault
    routes), ExchangeError when the port is busy.
    """
    options = options or DemoOptions()
    host = _checked_host(host, options, api_token)
    sock = _bind(host, port)
    runner = web.AppRunner(create_app(options), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    server = DemoExchangeServer(runner, host, sock.getsockname()[1])
    log.info(
        "DEMO exchange on %s (WebSocket %s): speed %gx, seed %d%s",
        server.rest_url,
        server.ws_url,
        options.speed,
        options.seed,
        ", fault routes enabled" if options.faults else "",
    )
    return server


def run_demo_exchange(
    host: str, port: int, options: DemoOptions, *, api_token: Secret = NO_TOKEN
) -> None:
    """Serve until SIGINT or SIGTERM (the `run.py demo-exchange` command)."""
    asyncio.run(serve_until_signal(host, port, options, api_token))


async def serve_until_signal(
    host: str,
    port: int,
    options: DemoOptions,
    api_token: Secret,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve in the running loop until SIGINT or SIGTERM; `on_ready(port)` once it listens."""
    server = await start_demo_exchange(host, port, options, api_token=api_token)
    if on_ready is not None:
        on_ready(server.port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        log.info("DEMO exchange stopping")
        await server.stop()


class DemoExchangeThread(DemoLauncher):
    """A demo exchange serving from a background thread with its own event loop.

    `start()` returns once it listens; `.port`, `.rest_url`, `.ws_url` are then valid.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _server: DemoExchangeServer | None = None
    _thread: threading.Thread | None = None
    _error: BaseException | None = None

    def start(self, timeout_s: float = 10.0) -> DemoExchangeThread:
        """Start serving; raises what start_demo_exchange raised, or ExchangeError on a timeout."""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-exchange", daemon=True)
        self._thread.start()
        ready = self._ready.wait(timeout_s)
        if isinstance(self._error, KryptelionError):
            raise self._error
        if not ready or self._error is not None:
            raise ExchangeError(f"demo exchange did not start: {self._error}")
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                start_demo_exchange(self.host, self.port, self.options, api_token=self._api_token)
            )
            self.host, self.port = self._server.host, self._server.port
        except BaseException as error:  # reported to start() in the caller's thread
            self._error = error
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._server.stop())
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving and wait for the thread to end."""
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)

    def __enter__(self) -> DemoExchangeThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_ensure_lock = threading.Lock()


def demo_options(settings: Settings, **overrides: Any) -> DemoOptions:
    """The demo exchange's options from the settings: speed, seed, its account key and balance."""
    values: dict[str, Any] = {
        "speed": settings.demo_speed,
        "seed": settings.demo_seed,
        "api_keys": {settings.demo_api_key.reveal(): settings.demo_api_secret.reveal()},
        "balance": settings.demo_balance,
    }
    return DemoOptions(**{**values, **overrides})


def ensure_demo_exchange(settings: Settings) -> DemoExchangeProcess | None:
    """With MARKET=demo and nothing listening on DEMO_HOST:DEMO_PORT, start one for this process.

    Every entry point that needs the market calls this first, so the examples work offline with
    nothing else running. The exchange runs in a child process (its own interpreter lock: serving
    candles never slows this process) that stops when this process exits, killed or not. Returns
    it, or None: another market, or something already listens there and is used as it is. Logs
    one WARNING line when it starts one (shown even where no logging is configured). Raises
    ExchangeError if the port can be neither used nor bound.
    """
    from core.exchange.demo.process import DemoExchangeProcess

    if not settings.is_demo:
        return None
    host, port = settings.demo_host, settings.demo_port
    with _ensure_lock:  # two threads of one process must not both start one
        if _listening(host, port):
            return None
        exchange = DemoExchangeProcess(
            demo_options(settings), host, port, api_token=settings.api_token
        )
        try:
            exchange.start()
        except ExchangeError:
            if _listening(host, port):  # another process bound it meanwhile: use that one
                return None
            raise
    atexit.register(exchange.stop)
    log.warning(
        "MARKET=demo and nothing listened on %s:%d: started a local DEMO exchange at %s for this "
        "process (it stops with the process)",
        host,
        port,
        exchange.rest_url,
    )
    return exchange


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
