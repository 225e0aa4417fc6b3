"""The demo exchange's Algo Order API: conditional orders (STOP, STOP_MARKET, TAKE_PROFIT,
TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET) held until their trigger, as Binance has served them
since 2025-12."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from core.exchange.demo import order_params as p
from core.exchange.demo import trade_wire
from core.exchange.demo.account_routes import signed, symbol_param
from core.exchange.demo.accounts import Account
from core.exchange.demo.errors import BinanceError, mandatory_missing
from core.exchange.demo.order_routes import (
    MAX_OPEN_ALGO_ORDERS,
    engine_of,
    in_range,
    list_limit,
    now_of,
    placing,
    spec_of,
    unique_client_id,
)
from core.exchange.demo.orders import AlgoOrder


def _algo_from(request: web.Request, account: Account, params: dict[str, str]) -> AlgoOrder:
    """A checked new conditional order (BinanceError as Binance would refuse it)."""
    engine, now = engine_of(request), now_of(request)
    symbol = symbol_param(request, params)
    spec = spec_of(request, symbol)
    p.one_way(params)
    side, kind = p.side(params), p.algo_type(params)
    close = p.flag(params, "closePosition")
    if close and kind not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
        raise BinanceError(-1106, "Parameter 'closePosition' sent when not required.")
    steps = p.quantity_steps(spec, params, market=kind.endswith("MARKET"))
    if close and steps is not None:
        raise BinanceError(-4137, "Quantity must be zero with closePosition equals true.")
    if not close and steps is None:
        raise mandatory_missing("quantity")
    limit = kind in ("STOP", "TAKE_PROFIT")
    units = p.price_units(spec, params, "price") if limit else 0
    if units is None:
        raise mandatory_missing("price")
    trailing = kind == "TRAILING_STOP_MARKET"
    trigger = 0 if trailing else p.price_units(spec, params, "triggerPrice")
    if trigger is None:
        raise mandatory_missing("triggerPrice")
    tif = p.time_in_force(params, required=False)
    reduce_only = p.flag(params, "reduceOnly")
    if close and reduce_only:
        raise BinanceError(-1106, "Parameter 'reduceOnly' sent when not required.")
    market_units = engine.price(symbol, now)
    if steps is not None:
        p.check_notional(spec, steps, units or trigger or market_units, reduce_only)
    algo_id = engine.new_algo_id()
    client = p.client_id(params, "clientAlgoId", f"demo_algo_{algo_id}")
    unique_client_id(account, client, algo=True)
    if len(account.book.open_algo_orders(symbol)) >= MAX_OPEN_ALGO_ORDERS:
        raise BinanceError(-1013, "Filter failure: MAX_NUM_ALGO_ORDERS")
    algo = AlgoOrder(
        algo_id=algo_id, client_algo_id=client, symbol=symbol, side=side, order_type=kind,
        quantity=steps or 0, price=units, trigger_price=trigger, time_in_force=tif,
        working_type=p.working_type(params), reduce_only=reduce_only, close_position=close,
        create_ms=now, good_till=p.good_till(params, tif, now),
        activate_price=(p.price_units(spec, params, "activatePrice") or 0) if trailing else 0,
        callback_rate=p.callback_rate(params) if trailing else "",
    )  # fmt: skip
    engine.advance(now)
    _check_not_triggered(algo, engine.price(symbol, now))
    return algo


def _check_not_triggered(algo: AlgoOrder, price: int) -> None:
    """-2021 for a conditional order whose trigger (or activation) is already reached."""
    sign = algo.sign
    if algo.order_type in ("STOP", "STOP_MARKET"):
        crossed = sign * (price - algo.trigger_price) >= 0
    elif algo.order_type in ("TAKE_PROFIT", "TAKE_PROFIT_MARKET"):
        crossed = sign * (algo.trigger_price - price) >= 0
    else:
        crossed = bool(algo.activate_price) and sign * (price - algo.activate_price) <= 0
    if crossed:
        raise BinanceError(-2021, "Order would immediately trigger.")


@placing
async def new_algo_order(request: web.Request) -> web.Response:
    """POST /fapi/v1/algoOrder: STOP(_MARKET), TAKE_PROFIT(_MARKET), TRAILING_STOP_MARKET."""
    account, params = await signed(request)
    algo = _algo_from(request, account, params)
    engine_of(request).submit_algo(account, algo, now_of(request))
    return web.json_response(trade_wire.algo_json(spec_of(request, algo.symbol), algo, None))


def _find_algo(
    request: web.Request, account: Account, params: dict[str, str], code: int = -2013
) -> AlgoOrder:
    """The account's conditional order by algoId or clientAlgoId (the latest with that id);
    BinanceError `code` (-2013 for a query, -2011 for a cancel) when there is none."""
    algo_id = p.whole(params, "algoId")
    client = params.get("clientAlgoId", "")
    if algo_id is None and not client:
        raise BinanceError(
            -1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!"
        )
    engine_of(request).advance(now_of(request))
    if algo_id is not None:
        found = account.book.algo_orders.get(algo_id)
    else:
        matches = [a for a in account.book.algo_orders.values() if a.client_algo_id == client]
        found = max(matches, key=lambda a: a.algo_id) if matches else None
    if found is None:
        raise BinanceError(
            code, "Order does not exist." if code == -2013 else "Unknown order sent."
        )
    return found


def _algo_row(request: web.Request, account: Account, algo: AlgoOrder) -> dict[str, Any]:
    child = account.book.orders.get(algo.order_id) if algo.order_id else None
    return trade_wire.algo_json(spec_of(request, algo.symbol), algo, child)


async def query_algo_order(request: web.Request) -> web.Response:
    """GET /fapi/v1/algoOrder by algoId or clientAlgoId."""
    account, params = await signed(request)
    return web.json_response(_algo_row(request, account, _find_algo(request, account, params)))


async def cancel_algo_order(request: web.Request) -> web.Response:
    """DELETE /fapi/v1/algoOrder; -2011 for an unknown one or once it triggered or ended."""
    account, params = await signed(request)
    algo = _find_algo(request, account, params, -2011)
    engine_of(request).cancel_algo(account, algo, now_of(request))
    body = {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200"}
    return web.json_response({**body, "msg": "success"})


async def open_algo_orders(request: web.Request) -> web.Response:
    """GET /fapi/v1/openAlgoOrders: conditional orders waiting for their trigger."""
    account, params = await signed(request)
    symbol = symbol_param(request, params) if params.get("symbol") else None
    engine_of(request).advance(now_of(request))
    algos = sorted(account.book.open_algo_orders(symbol), key=lambda a: a.algo_id)
    return web.json_response([_algo_row(request, account, a) for a in algos])


async def all_algo_orders(request: web.Request) -> web.Response:
    """GET /fapi/v1/allAlgoOrders: a symbol's conditional orders, oldest first."""
    account, params = await signed(request)
    symbol = symbol_param(request, params)
    limit = list_limit(params)
    engine_of(request).advance(now_of(request))
    algos = [
        a
        for a in sorted(account.book.algo_orders.values(), key=lambda a: a.algo_id)
        if a.symbol == symbol and in_range(params, a.create_ms)
    ]
    return web.json_response([_algo_row(request, account, a) for a in algos[-limit:]])


async def cancel_all_algo(request: web.Request) -> web.Response:
    """DELETE /fapi/v1/algoOpenOrders for one symbol."""
    account, params = await signed(request)
    symbol = symbol_param(request, params)
    engine, now = engine_of(request), now_of(request)
    engine.advance(now)
    for algo in account.book.open_algo_orders(symbol):
        engine.cancel_algo(account, algo, now)
    return web.json_response({"code": 200, "msg": "success"})


def add_algo_routes(app: web.Application) -> None:
    """Register the Algo Order API on `app` (after the order routes, whose limits it shares)."""
    app.router.add_post("/fapi/v1/algoOrder", new_algo_order)
    app.router.add_get("/fapi/v1/algoOrder", query_algo_order)
    app.router.add_delete("/fapi/v1/algoOrder", cancel_algo_order)
    app.router.add_get("/fapi/v1/openAlgoOrders", open_algo_orders)
    app.router.add_get("/fapi/v1/allAlgoOrders", all_algo_orders)
    app.router.add_delete("/fapi/v1/algoOpenOrders", cancel_all_algo)
