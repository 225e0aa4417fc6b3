"""The demo exchange's aiohttp app: Binance's REST market endpoints, streams and fault switch."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from aiohttp import WSCloseCode, web

from config.settings import DEFAULT_DEMO_API_KEY, DEFAULT_DEMO_API_SECRET, DEFAULT_DEMO_BALANCE
from core.costs import MAKER_FEE, TAKER_FEE
from core.errors import ConfigError
from core.exchange.demo import state
from core.exchange.demo.account_routes import AccountDesk, add_account_routes
from core.exchange.demo.accounts import Accounts
from core.exchange.demo.algo_routes import add_algo_routes
from core.exchange.demo.auth import API_KEY_PATTERN
from core.exchange.demo.errors import BinanceError
from core.exchange.demo.market import DemoClock, DemoMarket, KlineBatch
from core.exchange.demo.matching import Fees, MatchingEngine
from core.exchange.demo.order_routes import add_order_routes
from core.exchange.demo.streams import HUB, StreamHub, websocket_handler
from core.exchange.demo.user_stream import UserStreams, add_user_streams
from core.exchange.demo.wire import error_body, exchange_info, klines_json
from core.exchange.limits import MAX_KLINES
from core.intervals import INTERVALS

log = logging.getLogger(__name__)

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
_DIGITS = "^[0-9]{1,20}$"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """How a demo exchange behaves.

    speed: demo seconds per real second. weight_budget: request weight per IP and real minute
    (None: unlimited; over it → 429 with Retry-After, never 418). faults: register the
    /_demo/fault/* admin routes. start_ms: demo instant at start-up (default: the wall clock).
    outages: [start, end) ms windows with no klines at all, like Binance's maintenance holes.
    api_keys: API key → secret of every account it accepts (default: the documented demo pair).
    balance: USDT in the wallet of an account when its key is first used. maker_fee,
    taker_fee: commission rates (fractions of notional; Binance's base tier by default).
    state_file: keep accounts, orders and positions in this JSON file across restarts.
    """

    speed: float = 1.0
    seed: int = 42
    weight_budget: int | None = None
    faults: bool = False
    ping_interval_s: float = 180.0
    max_connection_s: float = 86_400.0
    start_ms: int | None = None
    outages: tuple[tuple[int, int], ...] = ()
    api_keys: Mapping[str, str] = field(
        default_factory=lambda: {DEFAULT_DEMO_API_KEY: DEFAULT_DEMO_API_SECRET}
    )
    balance: float = DEFAULT_DEMO_BALANCE
    maker_fee: float = MAKER_FEE
    taker_fee: float = TAKER_FEE
    state_file: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.speed <= 10_000:
            raise ConfigError(f"demo speed {self.speed!r} must be > 0 and <= 10000")
        if self.weight_budget is not None and self.weight_budget < 1:
            raise ConfigError(f"demo weight budget {self.weight_budget!r} must be >= 1")
        if self.ping_interval_s <= 0 or self.max_connection_s <= 0:
            raise ConfigError("demo ping interval and connection lifetime must be > 0")
        if not math.isfinite(self.balance) or self.balance <= 0:
            raise ConfigError(f"demo balance {self.balance!r} must be a positive amount of USDT")
        if self.state_file and not Path(self.state_file).parent.is_dir():
            raise ConfigError(f"--state: the directory of {self.state_file!r} does not exist")
        for name, fee in (("maker", self.maker_fee), ("taker", self.taker_fee)):
            if not (math.isfinite(fee) and 0 <= fee < 0.01):
                raise ConfigError(f"--{name}-fee {fee!r}: give a fraction from 0 to 0.01")
        for key, secret in self.api_keys.items():
            if not API_KEY_PATTERN.fullmatch(key) or not secret:
                raise ConfigError("demo API keys must be 1-64 of A-Z a-z 0-9 _ - with a secret")


class WeightBudget:
    """Request weight used per client IP in the current real-time minute, as Binance counts it."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._minute = -1
        self._used: dict[str, int] = {}

    def charge(self, client: str, weight: int) -> tuple[int, float | None]:
        """Count `weight` for `client`: (weight used this minute, Retry-After s if refused)."""
        now = time.time()
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self._used = minute, {}
        used = self._used.get(client, 0)
        if self.limit is not None and used + weight > self.limit:
            return used, float(max(1, math.ceil((minute + 1) * 60 - now)))
        self._used[client] = used + weight
        return used + weight, None


def klines_weight(limit: int) -> int:
    """Binance's request weight of /fapi/v1/klines by `limit`."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    return 5 if limit <= 1000 else 10


@dataclass(slots=True)
class DemoExchange:
    """The state one app serves: options, clock, market, streams and rate budget."""

    options: DemoOptions
    clock: DemoClock
    market: DemoMarket
    hub: StreamHub
    weights: WeightBudget


EXCHANGE = web.AppKey("exchange", DemoExchange)


def _json(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/json")


def _request_weight(request: web.Request) -> int:
    if request.path != "/fapi/v1/klines":
        return 1
    raw = request.query.get("limit", "")
    return klines_weight(int(raw)) if raw.isdigit() else klines_weight(500)


@web.middleware
async def _binance_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Weight accounting and Binance error bodies for /fapi routes."""
    if not request.path.startswith("/fapi/"):
        return await handler(request)
    exchange = request.app[EXCHANGE]
    client = request.remote or "?"
    used, retry_after = exchange.weights.charge(client, _request_weight(request))
    headers = {WEIGHT_HEADER: str(used)}
    if retry_after is not None:
        msg = (
            f"Too many requests; current limit of IP({client}) is {exchange.weights.limit} "
            "requests per minute. Please use the websocket for live updates to avoid polling "
            "the API."
        )
        headers["Retry-After"] = str(int(retry_after))
        response: web.StreamResponse = _json(error_body(-1003, msg), status=429)
    else:
        try:
            response = await handler(request)
        except BinanceError as error:
            response = _json(error_body(error.code, error.msg), status=error.status)
    response.headers.update(headers)
    return response


def _mandatory(request: web.Request, name: str) -> str:
    value = request.query.get(name, "")
    if not value:
        raise BinanceError(
            -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def _optional_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 20:
        raise BinanceError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '{_DIGITS}'."
        )
    return int(raw)


async def ping(request: web.Request) -> web.Response:
    return _json("{}")


async def server_time(request: web.Request) -> web.Response:
    return _json(json.dumps({"serverTime": request.app[EXCHANGE].clock.now_ms()}))


async def exchange_information(request: web.Request) -> web.Response:
    exchange = request.app[EXCHANGE]
    specs = exchange.market.symbols.values()
    return _json(exchange_info(specs, exchange.clock.now_ms(), exchange.weights.limit))


async def klines(request: web.Request) -> web.Response:
    """GET /fapi/v1/klines with Binance's parameters, defaults, limits and error codes."""
    exchange = request.app[EXCHANGE]
    symbol = _mandatory(request, "symbol")
    interval = _mandatory(request, "interval")
    limit = _optional_int(request, "limit")
    start = _optional_int(request, "startTime")
    end = _optional_int(request, "endTime")
    if symbol not in exchange.market.symbols:
        raise BinanceError(-1121, "Invalid symbol.")
    if interval not in INTERVALS:
        raise BinanceError(-1120, "Invalid interval.")
    limit = 500 if limit is None else limit
    if not 1 <= limit <= MAX_KLINES:
        raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
    if start is not None and end is not None and start > end:
        raise BinanceError(-1023, "Start time is greater than end time.")
    market, now = exchange.market, exchange.clock.now_ms()
    while market.prepare(symbol, interval, now, start, end, limit):
        await asyncio.sleep(0)  # a cold page of years: let the streams tick in between
    batch = market.klines(symbol, interval, now, start, end, limit)
    return _json(klines_json(_without_outages(batch, exchange.options.outages)))


def _without_outages(batch: KlineBatch, outages: tuple[tuple[int, int], ...]) -> KlineBatch:
    """The batch minus candles opening inside a maintenance window."""
    if not outages or not len(batch):
        return batch
    keep = np.ones(len(batch), dtype=bool)
    for start, end in outages:
        keep &= ~((batch.open_times >= start) & (batch.open_times < end))
    return KlineBatch(
        batch.spec,
        batch.interval,
        batch.open_times[keep],
        batch.close_times[keep],
        batch.values[keep],
    )


async def fault_drop(request: web.Request) -> web.Response:
    """Close every WebSocket at once (?mode=abort cuts TCP without a close frame)."""
    abort = request.query.get("mode") == "abort"
    hub = request.app[EXCHANGE].hub
    dropped = await hub.close_all(WSCloseCode.GOING_AWAY, b"demo fault: drop", abort=abort)
    log.warning("fault: dropped %d WebSocket connections%s", dropped, " (abort)" * abort)
    return web.json_response({"dropped": dropped})


async def fault_pause(request: web.Request) -> web.Response:
    request.app[EXCHANGE].hub.paused = True
    log.warning("fault: stream feed paused")
    return web.json_response({"paused": True})


async def fault_resume(request: web.Request) -> web.Response:
    request.app[EXCHANGE].hub.paused = False
    log.warning("fault: stream feed resumed")
    return web.json_response({"paused": False})


async def demo_status(request: web.Request) -> web.Response:
    exchange = request.app[EXCHANGE]
    return web.json_response(
        {
            "demoTime": exchange.clock.now_ms(),
            "speed": exchange.options.speed,
            "seed": exchange.options.seed,
            "paused": exchange.hub.paused,
            "connections": len(exchange.hub.connections),
            "streams": sorted(exchange.hub.tickers),
        }
    )


async def _on_shutdown(app: web.Application) -> None:
    hub = app[EXCHANGE].hub
    hub.stop()
    await hub.close_all(WSCloseCode.GOING_AWAY, b"server shutdown")


def create_app(options: DemoOptions | None = None) -> web.Application:
    """The demo exchange as an aiohttp application (its clock starts now)."""
    options = options or DemoOptions()
    saved = state.load(Path(options.state_file)) if options.state_file else None
    start_ms = options.start_ms
    if saved is not None:  # demo time never runs backwards across a restart
        start_ms = max(start_ms or int(time.time() * 1000), int(saved["saved_ms"]))
    clock = DemoClock.started(options.speed, start_ms)
    market = DemoMarket(options.seed)
    hub = StreamHub(market, clock, options.ping_interval_s, options.max_connection_s)
    app = web.Application(middlewares=[_binance_middleware])
    app[EXCHANGE] = DemoExchange(options, clock, market, hub, WeightBudget(options.weight_budget))
    app[HUB] = hub
    app.router.add_get("/fapi/v1/ping", ping)
    app.router.add_get("/fapi/v1/time", server_time)
    app.router.add_get("/fapi/v1/exchangeInfo", exchange_information)
    app.router.add_get("/fapi/v1/klines", klines)
    accounts = Accounts(options.api_keys, options.balance)
    user_streams = UserStreams(accounts, clock)
    fees = Fees(options.maker_fee, options.taker_fee)
    engine = MatchingEngine(market, accounts, options.seed, fees, user_streams.push)
    add_account_routes(app, AccountDesk(accounts, clock, market, options.seed, engine))
    add_order_routes(app, options.faults)
    add_algo_routes(app)
    add_user_streams(app, engine, user_streams, options.faults)
    for path in ("/market/ws", "/market/stream", "/ws", "/stream", "/market/ws/{streams:.+}"):
        app.router.add_get(path, websocket_handler)
    if options.state_file:
        if saved is not None:
            state.restore(saved, accounts, engine)
        state.add_state_file(app, Path(options.state_file), accounts, engine, clock)
        log.info("demo exchange: accounts, orders and positions saved in %s", options.state_file)
    else:
        log.info("demo exchange: accounts, orders and positions are kept in memory only")
    if options.faults:
        app.router.add_post("/_demo/fault/drop", fault_drop)
        app.router.add_post("/_demo/fault/pause", fault_pause)
        app.router.add_post("/_demo/fault/resume", fault_resume)
        app.router.add_get("/_demo/status", demo_status)
    app.on_shutdown.append(_on_shutdown)
    return app
