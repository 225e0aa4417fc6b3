"""The demo exchange's signed order API: regular and algo orders, queries, cancels, the
dead-man's switch, the per-account order rate limits and the order faults."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from aiohttp import web

from core.exchange.demo import margin, trade_wire
from core.exchange.demo import order_params as p
from core.exchange.demo.account_routes import DESK, signed, symbol_param
from core.exchange.demo.accounts import Account
from core.exchange.demo.errors import BinanceError, mandatory_missing
from core.exchange.demo.orders import Order
from core.exchange.demo.symbols import SymbolSpec
from core.exchange.limits import COUNT_1M_HEADER, COUNT_10S_HEADER, ORDERS_1M, ORDERS_10S

log = logging.getLogger(__name__)

MAX_OPEN_ORDERS, MAX_OPEN_ALGO_ORDERS = 200, 10
MAX_LIST = 1000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class OrderCounter:
    """Orders each account placed in the last 10 s and minute of real time, as Binance counts."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._placed: dict[str, deque[float]] = {}

    def charge(self, api_key: str) -> tuple[int, int]:
        """Count one order; returns (10 s, 1 min) counts. BinanceError -1015 beyond a limit."""
        now = self.clock()
        placed = self._placed.setdefault(api_key, deque())
        while placed and placed[0] <= now - 60:
            placed.popleft()
        last_10s = sum(1 for t in placed if t > now - 10)
        if last_10s >= ORDERS_10S or len(placed) >= ORDERS_1M:
            limit, window = (
                (ORDERS_10S, "TEN_SECONDS") if last_10s >= ORDERS_10S else (ORDERS_1M, "ONE_MINUTE")
            )
            raise BinanceError(
                -1015, f"Too many new orders; current limit is {limit} orders per {window}.", 429
            )
        placed.append(now)
        return last_10s + 1, len(placed)


@dataclass(slots=True)
class OrderFaults:
    """What the next orders suffer (faults mode): a rejection, a lost answer, a late ack."""

    reject_code: int = 0
    reject: int = 0  # orders refused with reject_code
    silent: int = 0  # orders accepted whose answer never comes (the connection is dropped)
    silent_hold_s: float = 5.0
    delay: int = 0  # orders whose ack is held back
    delay_s: float = 0.0
    # orders held at the door, then dropped unprocessed if their client has gone meanwhile
    stall: int = 0
    stall_s: float = 5.0
    after: int = 0  # placements that pass untouched before the fault applies
    rejected: list[int] = field(default_factory=list)

    def due(self) -> bool:
        """Whether the fault set applies to this placement (after `after` have passed)."""
        if self.after:
            self.after -= 1
            return False
        return True


COUNTER = web.AppKey("order_counter", OrderCounter)
FAULTS = web.AppKey("order_faults", OrderFaults)

_REJECT_MESSAGES = {
    -2019: "Margin is insufficient.",
    -2021: "Order would immediately trigger.",
    -2022: "ReduceOnly Order is rejected.",
    -1008: "Server is currently overloaded with other requests. Please try again in a few minutes.",
    -1015: "Too many new orders.",
}


def placing(handler: Handler) -> Handler:
    """Rate-count an order placement, apply the order faults and add the count headers."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        account, _ = await signed(request)
        faults = request.app[FAULTS]
        count_10s, count_1m = request.app[COUNTER].charge(account.api_key)
        headers = {COUNT_10S_HEADER: str(count_10s), COUNT_1M_HEADER: str(count_1m)}
        if not (faults.reject or faults.silent or faults.delay or faults.stall) or not faults.due():
            return _counted(await handler(request), headers)
        if faults.stall:
            faults.stall -= 1
            log.warning("fault: holding an order at the door for %.1f s", faults.stall_s)
            await asyncio.sleep(faults.stall_s)
            if request.transport is None or request.transport.is_closing():
                log.warning("fault: a stalled order's client has gone: dropped unprocessed")
                raise web.HTTPRequestTimeout()
        if faults.reject:
            faults.reject -= 1
            code = faults.reject_code
            faults.rejected.append(code)
            message = _REJECT_MESSAGES.get(code, "Order rejected (demo fault).")
            raise BinanceError(code, message, 429 if code == -1015 else 400)
        response = _counted(await handler(request), headers)
        if faults.silent:
            faults.silent -= 1
            await asyncio.sleep(faults.silent_hold_s)
            if request.transport is not None:
                request.transport.close()  # the order stands; its answer never arrives
        elif faults.delay:
            faults.delay -= 1
            await asyncio.sleep(faults.delay_s)
        return response

    return wrapped


def _counted(response: web.StreamResponse, headers: dict[str, str]) -> web.StreamResponse:
    response.headers.update(headers)
    return response


def engine_of(request: web.Request):  # type: ignore[no-untyped-def]
    return request.app[DESK].engine


def spec_of(request: web.Request, symbol: str) -> SymbolSpec:
    return request.app[DESK].market.symbols[symbol]


def now_of(request: web.Request) -> int:
    return request.app[DESK].clock.now_ms()


def unique_client_id(account: Account, client: str, algo: bool) -> None:
    live = account.book.open_algo_orders() if algo else account.book.open_orders()
    ids = {a.client_algo_id for a in live} if algo else {o.client_id for o in live}  # type: ignore[union-attr]
    if client in ids:
        raise BinanceError(-4116, "ClientOrderId is duplicated.")


def _reducible(account: Account, symbol: str, side: str) -> int:
    """How much of the position an order on `side` can reduce (0 if it would not reduce it)."""
    position = account.book.position(symbol)
    return abs(position.amount) if position.side == (1 if side == "SELL" else -1) else 0


def _order_from(request: web.Request, account: Account, params: dict[str, str], now: int) -> Order:
    """A checked new regular order at demo instant `now` (BinanceError as Binance refuses)."""
    engine = engine_of(request)
    symbol = symbol_param(request, params)
    spec = spec_of(request, symbol)
    p.one_way(params)
    side, kind = p.side(params), p.regular_type(params)
    if p.flag(params, "closePosition"):
        raise BinanceError(-1106, "Parameter 'closePosition' sent when not required.")
    steps = p.quantity_steps(spec, params, market=kind == "MARKET")
    if steps is None:
        raise mandatory_missing("quantity")
    tif = p.time_in_force(params, required=kind == "LIMIT") if kind == "LIMIT" else "GTC"
    units = p.price_units(spec, params, "price") if kind == "LIMIT" else 0
    if units is None:
        raise mandatory_missing("price")
    reduce_only = p.flag(params, "reduceOnly")
    market_units = engine.price(symbol, now)
    if kind == "LIMIT":
        p.check_percent_price(side, units, market_units)
    p.check_notional(spec, steps, units or market_units, reduce_only)
    order_id = engine.new_order_id()
    client = p.client_id(params, "newClientOrderId", f"demo_{order_id}")
    unique_client_id(account, client, algo=False)
    if len(account.book.open_orders(symbol)) >= MAX_OPEN_ORDERS:
        raise BinanceError(-1013, "Filter failure: MAX_NUM_ORDERS")
    order = Order(
        order_id=order_id, client_id=client, symbol=symbol, side=side, type=kind,
        quantity=steps, price=units, time_in_force=tif, reduce_only=reduce_only, time_ms=now,
        sequence=engine.next_sequence(), good_till=p.good_till(params, tif, now),
    )  # fmt: skip
    engine.advance(now)
    if reduce_only and not _reducible(account, symbol, side):
        raise BinanceError(-2022, "ReduceOnly Order is rejected.")
    p.check_post_only(side, tif, units, market_units)
    if not reduce_only and engine.short_of_margin(account, order, now):
        raise BinanceError(-2019, "Margin is insufficient.")
    return order


@placing
async def new_order(request: web.Request) -> web.Response:
    """POST /fapi/v1/order: LIMIT or MARKET (conditional types answer -4120)."""
    account, params = await signed(request)
    now = now_of(request)  # one instant: the checks see the price the order meets
    order = _order_from(request, account, params, now)
    spec = spec_of(request, order.symbol)
    acked = trade_wire.order_json(spec, order)
    engine_of(request).submit(account, order, now)
    if params.get("newOrderRespType", "ACK") == "RESULT":
        return web.json_response(trade_wire.order_json(spec, order))
    return web.json_response(acked)


def _find_order(request: web.Request, account: Account, params: dict[str, str], code: int) -> Order:
    symbol = symbol_param(request, params)
    order_id = p.whole(params, "orderId")
    client = params.get("origClientOrderId", "")
    if order_id is None and not client:
        raise BinanceError(
            -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        )
    engine_of(request).advance(now_of(request))
    found: Order | None = None
    if order_id is not None:
        found = account.book.orders.get(order_id)
    else:
        matches = [o for o in account.book.orders.values() if o.client_id == client]
        found = max(matches, key=lambda o: o.order_id) if matches else None
    if found is None or found.symbol != symbol:
        raise BinanceError(
            code, "Order does not exist." if code == -2013 else "Unknown order sent."
        )
    return found


async def query_order(request: web.Request) -> web.Response:
    """GET /fapi/v1/order by orderId or origClientOrderId (the latest with that id)."""
    account, params = await signed(request)
    order = _find_order(request, account, params, -2013)
    return web.json_response(trade_wire.order_json(spec_of(request, order.symbol), order))


async def cancel_order(request: web.Request) -> web.Response:
    """DELETE /fapi/v1/order; -2011 for an unknown or already closed order."""
    account, params = await signed(request)
    order = _find_order(request, account, params, -2011)
    engine_of(request).cancel(account, order, now_of(request))
    return web.json_response(trade_wire.order_json(spec_of(request, order.symbol), order))


def _check_modify_margin(
    request: web.Request, account: Account, order: Order, change: tuple[int, int], now: int
) -> None:
    """-2019 when the account cannot hold the margin the modified order (quantity, price)
    needs beyond what the order already holds."""
    engine, spec = engine_of(request), spec_of(request, order.symbol)
    modified = replace(order, quantity=change[0], price=change[1])
    extra = margin.order_margin(account, spec, modified) - margin.order_margin(account, spec, order)
    if extra > 0 and extra > margin.available_balance(account, engine.specs, engine.mark(now)):
        raise BinanceError(-2019, "Margin is insufficient.")


@placing
async def modify_order(request: web.Request) -> web.Response:
    """PUT /fapi/v1/order: a LIMIT's new price and quantity; it loses its queue place."""
    account, params = await signed(request)
    order = _find_order(request, account, params, -2013)
    spec = spec_of(request, order.symbol)
    if p.side(params) != order.side:
        raise BinanceError(-1130, "Data sent for parameter 'side' is not valid.")
    steps = p.quantity_steps(spec, params, market=False)
    units = p.price_units(spec, params, "price")
    if steps is None:
        raise mandatory_missing("quantity")
    if units is None:
        raise mandatory_missing("price")
    now = now_of(request)
    market_units = engine_of(request).price(order.symbol, now)
    p.check_percent_price(order.side, units, market_units)
    p.check_notional(spec, steps, units, order.reduce_only)
    if order.is_open:  # a closed one is the engine's -2013
        p.check_post_only(order.side, order.time_in_force, units, market_units)
        _check_modify_margin(request, account, order, (steps, units), now)
    engine_of(request).modify(account, order, steps, units, now)
    return web.json_response(trade_wire.order_json(spec, order))


def list_limit(params: dict[str, str], default: int = 500) -> int:
    limit = p.whole(params, "limit")
    limit = default if limit is None else limit
    if not 1 <= limit <= MAX_LIST:
        raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
    return limit


def in_range(params: dict[str, str], t: int) -> bool:
    start, end = p.whole(params, "startTime"), p.whole(params, "endTime")
    return (start is None or t >= start) and (end is None or t <= end)


async def open_orders(request: web.Request) -> web.Response:
    """GET /fapi/v1/openOrders: every open order, or one symbol's."""
    account, params = await signed(request)
    symbol = symbol_param(request, params) if params.get("symbol") else None
    engine_of(request).advance(now_of(request))
    rows = [
        trade_wire.order_json(spec_of(request, o.symbol), o)
        for o in sorted(account.book.open_orders(symbol), key=lambda o: o.order_id)
    ]
    return web.json_response(rows)


async def cancel_all(request: web.Request) -> web.Response:
    """DELETE /fapi/v1/allOpenOrders for one symbol."""
    account, params = await signed(request)
    symbol = symbol_param(request, params)
    engine, now = engine_of(request), now_of(request)
    engine.advance(now)
    for order in account.book.open_orders(symbol):
        engine.cancel(account, order, now)
    return web.json_response(
        {"code": 200, "msg": "The operation of cancel all open order is done."}
    )


async def all_orders(request: web.Request) -> web.Response:
    """GET /fapi/v1/allOrders: a symbol's orders from orderId (or in a time range), oldest first."""
    account, params = await signed(request)
    symbol = symbol_param(request, params)
    limit, first = list_limit(params), p.whole(params, "orderId") or 0
    engine_of(request).advance(now_of(request))
    orders = [
        o
        for o in sorted(account.book.orders.values(), key=lambda o: o.order_id)
        if o.symbol == symbol and o.order_id >= first and in_range(params, o.time_ms)
    ]
    spec = spec_of(request, symbol)
    chosen = orders[:limit] if first else orders[-limit:]
    return web.json_response([trade_wire.order_json(spec, o) for o in chosen])


async def user_trades(request: web.Request) -> web.Response:
    """GET /fapi/v1/userTrades: fills with price, commission and realised PnL, oldest first."""
    account, params = await signed(request)
    symbol = symbol_param(request, params)
    limit, first = list_limit(params), p.whole(params, "fromId")
    order_id = p.whole(params, "orderId")
    engine_of(request).advance(now_of(request))
    fills = [
        f
        for f in account.book.fills
        if f.symbol == symbol
        and (first is None or f.trade_id >= first)
        and (order_id is None or f.order_id == order_id)
        and in_range(params, f.time_ms)
    ]
    spec = spec_of(request, symbol)
    chosen = fills[:limit] if first is not None else fills[-limit:]
    return web.json_response([trade_wire.fill_json(spec, f) for f in chosen])


async def countdown_cancel_all(request: web.Request) -> web.Response:
    """POST /fapi/v1/countdownCancelAll: the dead-man's switch (0 disarms it)."""
    account, params = await signed(request)
    symbol = symbol_param(request, params)
    countdown = p.whole(params, "countdownTime")
    if countdown is None:
        raise mandatory_missing("countdownTime")
    engine_of(request).arm_countdown(account, symbol, countdown)
    return web.json_response({"symbol": symbol, "countdownTime": str(countdown)})


async def fault_order(request: web.Request) -> web.Response:
    """POST /_demo/fault/order?mode=reject&code=-2019 | mode=silent[&hold_s=] |
    mode=delay&ms=… | mode=stall[&hold_s=] [&count=N][&after=K]: what the next orders suffer
    (after K placements pass untouched). A stalled order waits at the door and is dropped
    unprocessed when its client has gone by then: a request lost before the exchange had it."""
    faults = request.app[FAULTS]
    query = request.query
    mode = query.get("mode", "")
    if mode not in ("reject", "silent", "delay", "stall"):
        return web.json_response(
            {"error": "mode must be reject, silent, delay or stall"}, status=400
        )
    try:
        count, faults.after = int(query.get("count", "1")), int(query.get("after", "0"))
        if mode == "reject":
            faults.reject, faults.reject_code = count, int(query.get("code", "-2019"))
        elif mode == "silent":
            faults.silent, faults.silent_hold_s = count, float(query.get("hold_s", "5"))
        elif mode == "stall":
            faults.stall, faults.stall_s = count, float(query.get("hold_s", "5"))
        else:
            faults.delay, faults.delay_s = count, int(query.get("ms", "1000")) / 1000
    except ValueError:
        return web.json_response(
            {"error": "count, after, code, hold_s and ms are numbers"}, status=400
        )
    return web.json_response({"mode": mode, "count": count})


def add_order_routes(app: web.Application, faults: bool) -> None:
    """Register the order API (and, in faults mode, its fault switch) on `app`."""
    app[COUNTER] = OrderCounter()
    app[FAULTS] = OrderFaults()
    app.router.add_post("/fapi/v1/order", new_order)
    app.router.add_get("/fapi/v1/order", query_order)
    app.router.add_delete("/fapi/v1/order", cancel_order)
    app.router.add_put("/fapi/v1/order", modify_order)
    app.router.add_get("/fapi/v1/openOrders", open_orders)
    app.router.add_delete("/fapi/v1/allOpenOrders", cancel_all)
    app.router.add_get("/fapi/v1/allOrders", all_orders)
    app.router.add_get("/fapi/v1/userTrades", user_trades)
    app.router.add_post("/fapi/v1/countdownCancelAll", countdown_cancel_all)
    if faults:
        app.router.add_post("/_demo/fault/order", fault_order)
