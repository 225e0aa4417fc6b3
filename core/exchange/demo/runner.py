"""Ways to run the demo exchange: blocking (CLI), inside an event loop, or in a thread (tests)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading

from aiohttp import web

from core.errors import ExchangeError
from core.exchange.demo.server import DemoOptions, create_app

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


class DemoExchangeServer:
    """A running demo exchange inside the current event loop."""

    def __init__(self, runner: web.AppRunner, host: str, port: int) -> None:
        self._runner = runner
        self.host, self.port = host, port

    @property
    def rest_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{_url_host(self.host)}:{self.port}"

    async def stop(self) -> None:
        """Close every WebSocket (1001) and stop listening."""
        await self._runner.cleanup()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def start_demo_exchange(
    host: str = "127.0.0.1", port: int = 9100, options: DemoOptions | None = None
) -> DemoExchangeServer:
    """Start serving in the running loop (port 0: a free port); raises ExchangeError if busy."""
    options = options or DemoOptions()
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
    host: str = "127.0.0.1",
    port: int = 9100,
    speed: float = 1.0,
    seed: int = 42,
    *,
    weight_budget: int | None = None,
    faults: bool = False,
) -> None:
    """Serve until SIGINT or SIGTERM (the `run.py demo-exchange` command)."""
    options = DemoOptions(speed=speed, seed=seed, weight_budget=weight_budget, faults=faults)
    asyncio.run(_serve_until_signal(host, port, options))


async def _serve_until_signal(host: str, port: int, options: DemoOptions) -> None:
    server = await start_demo_exchange(host, port, options)
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


class DemoExchangeThread:
    """A demo exchange serving from a background thread with its own event loop.

    `start()` returns once it listens; `.port`, `.rest_url`, `.ws_url` are then valid.
    """

    def __init__(
        self, options: DemoOptions | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.options = options or DemoOptions()
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: DemoExchangeServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def rest_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{_url_host(self.host)}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> DemoExchangeThread:
        """Start serving; raises ExchangeError if it could not listen in time."""
        self._thread = threading.Thread(target=self._run, name="demo-exchange", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            raise ExchangeError(f"demo exchange did not start: {self._error}")
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                start_demo_exchange(self.host, self.port, self.options)
            )
            self.port = self._server.port
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
