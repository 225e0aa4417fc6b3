"""The demo exchange's account API: signed balance, account, positions, leverage, margin type,
brackets, position mode; the API-key-only listen keys; the public premium index."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from core.exchange.demo import margin, trade_wire
from core.exchange.demo.accounts import Account, Accounts, MarginType
from core.exchange.demo.auth import api_key_of, verify
from core.exchange.demo.brackets import brackets_of, max_notional
from core.exchange.demo.errors import BinanceError, illegal_digits, mandatory_missing
from core.exchange.demo.market import DemoClock, DemoMarket
from core.exchange.demo.matching import MatchingEngine
from core.exchange.demo.orders import Position
from core.exchange.demo.premium import premium_index
from core.exchange.demo.symbols import SymbolSpec
from core.exchange.demo.trade_wire import usdt


@dataclass(slots=True)
class AccountDesk:
    """What the trading routes serve: accounts, the demo clock and market, the engine, the seed."""

    accounts: Accounts
    clock: DemoClock
    market: DemoMarket
    seed: int
    engine: MatchingEngine


DESK = web.AppKey("account_desk", AccountDesk)


async def signed(request: web.Request) -> tuple[Account, dict[str, str]]:
    """The signed request's account and parameters (BinanceError as Binance would answer).

    The timestamp may be on the demo clock (what /fapi/v1/time says) or on the local wall
    clock: they differ only when the demo runs fast or starts in the past, and a client that
    never synchronised its clock must still trade there.
    """
    desk = request.app[DESK]
    body = await request.text() if request.method in ("POST", "PUT", "DELETE") else ""
    now = desk.clock.now_ms()
    key, params = verify(
        request.headers,
        request.rel_url.raw_query_string,
        body,
        desk.accounts.secrets,
        now,
        wall_ms=int(time.time() * 1000),
    )
    return desk.accounts.get(key, now), params


def symbol_param(request: web.Request, params: dict[str, str]) -> str:
    """The mandatory listed `symbol`: -1102 without it, -1121 for an unknown one."""
    symbol = params.get("symbol", "")
    if not symbol:
        raise mandatory_missing("symbol")
    if symbol not in request.app[DESK].market.symbols:
        raise BinanceError(-1121, "Invalid symbol.")
    return symbol


def _maybe_symbol(request: web.Request, params: dict[str, str]) -> str | None:
    """The optional `symbol`, checked when sent."""
    return symbol_param(request, params) if params.get("symbol") else None


@dataclass(frozen=True, slots=True)
class _Margins:
    """An account's money at one instant, as every balance endpoint reports it."""

    wallet: float
    cross_wallet: float  # the wallet less the isolated positions' own wallets
    unrealised: float  # cross positions only
    position_margin: float
    order_margin: float
    maintenance: float
    available: float


def _margins(request: web.Request, account: Account) -> _Margins:
    desk = request.app[DESK]
    now = desk.clock.now_ms()
    desk.engine.advance(now)
    mark = desk.engine.mark(now)
    specs = desk.engine.specs
    positions = [p for p in account.book.positions.values() if p.amount]
    held = sum(margin.position_margin(account, specs[p.symbol], p) for p in positions)
    orders = sum(
        margin.order_margin(account, specs[o.symbol], o) for o in account.book.open_orders()
    )
    maintenance = sum(_maintenance(specs[p.symbol], p, mark(p.symbol)) for p in positions)
    unrealised = margin.cross_unrealised(account, specs, mark)
    available = margin.available_balance(account, specs, mark)
    cross = margin.cross_wallet(account, specs)
    return _Margins(account.wallet_balance, cross, unrealised, held, orders, maintenance, available)


def _maintenance(spec: SymbolSpec, position: Position, mark: float) -> float:
    """The position's maintenance margin at `mark` (its bracket's rate less the bracket's cum)."""
    notional = margin.steps_to_quantity(spec, abs(position.amount)) * mark
    rate, cum = margin.maintenance_tier(position.symbol, notional)
    return max(0.0, notional * rate - cum)


def _alias(account: Account) -> str:
    return hashlib.sha256(account.api_key.encode()).hexdigest()[:8]


def _balance_rows(account: Account, money: _Margins) -> list[dict[str, Any]]:
    available = usdt(max(0.0, money.available))
    return [
        {
            "accountAlias": _alias(account),
            "asset": "USDT",
            "balance": usdt(money.wallet),
            "crossWalletBalance": usdt(money.cross_wallet),
            "crossUnPnl": usdt(money.unrealised),
            "availableBalance": available,
            "maxWithdrawAmount": available,
            "marginAvailable": True,
            "updateTime": account.update_ms,
        }
    ]


async def balance(request: web.Request) -> web.Response:
    """GET /fapi/v2/balance and /fapi/v3/balance."""
    account, _ = await signed(request)
    return web.json_response(_balance_rows(account, _margins(request, account)))


def _totals(money: _Margins) -> dict[str, Any]:
    available = usdt(max(0.0, money.available))
    return {
        "totalInitialMargin": usdt(money.position_margin + money.order_margin),
        "totalMaintMargin": usdt(money.maintenance),
        "totalWalletBalance": usdt(money.wallet),
        "totalUnrealizedProfit": usdt(money.unrealised),
        "totalMarginBalance": usdt(money.wallet + money.unrealised),
        "totalPositionInitialMargin": usdt(money.position_margin),
        "totalOpenOrderInitialMargin": usdt(money.order_margin),
        "totalCrossWalletBalance": usdt(money.cross_wallet),
        "totalCrossUnPnl": usdt(money.unrealised),
        "availableBalance": available,
        "maxWithdrawAmount": available,
    }


def _asset(account: Account, money: _Margins) -> dict[str, Any]:
    available = usdt(max(0.0, money.available))
    return {
        "asset": "USDT",
        "walletBalance": usdt(money.wallet),
        "unrealizedProfit": usdt(money.unrealised),
        "marginBalance": usdt(money.wallet + money.unrealised),
        "maintMargin": usdt(money.maintenance),
        "initialMargin": usdt(money.position_margin + money.order_margin),
        "positionInitialMargin": usdt(money.position_margin),
        "openOrderInitialMargin": usdt(money.order_margin),
        "crossWalletBalance": usdt(money.cross_wallet),
        "crossUnPnl": usdt(money.unrealised),
        "availableBalance": available,
        "maxWithdrawAmount": available,
        "marginAvailable": True,
        "updateTime": account.update_ms,
    }


def _account_position(request: web.Request, account: Account, symbol: str) -> dict[str, Any]:
    desk = request.app[DESK]
    spec = desk.market.symbols[symbol]
    config = account.config(symbol)
    position = account.book.position(symbol)
    now = desk.clock.now_ms()
    mark_units = desk.market.price_at(symbol, now) or 0
    mark = margin.units_to_price(spec, mark_units)
    initial = margin.position_margin(account, spec, position)
    orders = sum(margin.order_margin(account, spec, o) for o in account.book.open_orders(symbol))
    bids = sum(o.remaining * o.price for o in account.book.open_orders(symbol) if o.side == "BUY")
    asks = sum(o.remaining * o.price for o in account.book.open_orders(symbol) if o.side == "SELL")
    return {
        "symbol": symbol,
        "initialMargin": usdt(initial + orders),
        "maintMargin": usdt(_maintenance(spec, position, mark)),
        "unrealizedProfit": usdt(margin.unrealised(spec, position, mark)),
        "positionInitialMargin": usdt(initial),
        "openOrderInitialMargin": usdt(orders),
        "leverage": str(config.leverage),
        "isolated": config.margin_type is MarginType.ISOLATED,
        "entryPrice": usdt(position.entry),
        "breakEvenPrice": usdt(trade_wire.break_even(spec, position)),
        "maxNotional": str(max_notional(symbol, config.leverage)),
        "bidNotional": trade_wire.fixed(bids, spec.quote_decimals),
        "askNotional": trade_wire.fixed(asks, spec.quote_decimals),
        "positionSide": "BOTH",
        "positionAmt": trade_wire.quantity(spec, position.amount),
        "updateTime": position.update_ms,
    }


def _account_body(request: web.Request, account: Account) -> dict[str, Any]:
    money = _margins(request, account)
    return {**_totals(money), "assets": [_asset(account, money)]}


async def account_v2(request: web.Request) -> web.Response:
    """GET /fapi/v2/account: totals, the USDT asset and a position row per symbol."""
    account, _ = await signed(request)
    symbols = request.app[DESK].market.symbols
    body = {
        "feeTier": 0,
        "feeBurn": False,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
        **_account_body(request, account),
        "positions": [_account_position(request, account, symbol) for symbol in symbols],
    }
    return web.json_response(body)


async def account_v3(request: web.Request) -> web.Response:
    """GET /fapi/v3/account: totals, the USDT asset, positions only where one is open."""
    account, _ = await signed(request)
    opened = [p.symbol for p in account.book.positions.values() if p.amount]
    rows = [_account_position(request, account, symbol) for symbol in sorted(opened)]
    return web.json_response({**_account_body(request, account), "positions": rows})


def _position_rows(request: web.Request, account: Account, symbols: list[str]) -> list[Any]:
    desk = request.app[DESK]
    now = desk.clock.now_ms()
    desk.engine.advance(now)
    mark = desk.engine.mark(now)
    rows = []
    for name in symbols:
        units = desk.market.price_at(name, now)
        if units is None:
            continue
        position = account.book.position(name)
        liquidation = margin.liquidation_price(account, desk.engine.specs, position, mark)
        rows.append(
            trade_wire.position_risk(account, desk.engine.specs, position, units, liquidation)
        )
    return rows


async def position_risk_v2(request: web.Request) -> web.Response:
    """GET /fapi/v2/positionRisk: a row per symbol (or the one asked for), open or not."""
    account, params = await signed(request)
    symbol = _maybe_symbol(request, params)
    symbols = [symbol] if symbol else list(request.app[DESK].market.symbols)
    return web.json_response(_position_rows(request, account, symbols))


async def position_risk_v3(request: web.Request) -> web.Response:
    """GET /fapi/v3/positionRisk: only open positions (of one symbol when asked)."""
    account, params = await signed(request)
    symbol = _maybe_symbol(request, params)
    opened = sorted(p.symbol for p in account.book.positions.values() if p.amount)
    symbols = [s for s in opened if symbol in (None, s)]
    return web.json_response(_position_rows(request, account, symbols))


async def change_leverage(request: web.Request) -> web.Response:
    """POST /fapi/v1/leverage → {leverage, maxNotionalValue, symbol}; -4028 out of range."""
    account, params = await signed(request)
    symbol = symbol_param(request, params)
    raw = params.get("leverage", "")
    if not raw:
        raise mandatory_missing("leverage")
    if not raw.isdigit() or len(raw) > 20:
        raise illegal_digits("leverage")
    leverage = request.app[DESK].accounts.set_leverage(account, symbol, int(raw))
    return web.json_response(
        {
            "leverage": leverage,
            "maxNotionalValue": str(max_notional(symbol, leverage)),
            "symbol": symbol,
        }
    )


async def change_margin_type(request: web.Request) -> web.Response:
    """POST /fapi/v1/marginType (ISOLATED | CROSSED); -4046 when it is already that."""
    account, params = await signed(request)
    symbol = symbol_param(request, params)
    try:
        margin_type = MarginType(params.get("marginType", "").upper())
    except ValueError:
        raise mandatory_missing("marginType") from None
    request.app[DESK].accounts.set_margin_type(account, symbol, margin_type)
    return web.json_response({"code": 200, "msg": "success"})


def _brackets_entry(symbol: str) -> dict[str, Any]:
    return {"symbol": symbol, "brackets": [b.as_json() for b in brackets_of(symbol)]}


async def leverage_bracket(request: web.Request) -> web.Response:
    """GET /fapi/v1/leverageBracket: every symbol's tiers, or one symbol's as an object."""
    _, params = await signed(request)
    symbol = _maybe_symbol(request, params)
    if symbol:
        return web.json_response(_brackets_entry(symbol))
    return web.json_response([_brackets_entry(s) for s in request.app[DESK].market.symbols])


async def position_mode(request: web.Request) -> web.Response:
    """GET /fapi/v1/positionSide/dual: the demo trades in one-way mode only."""
    await signed(request)
    return web.json_response({"dualSidePosition": False})


async def premium(request: web.Request) -> web.Response:
    """GET /fapi/v1/premiumIndex (public): mark price and funding of one symbol or all."""
    desk = request.app[DESK]
    params = dict(request.query)
    symbol = _maybe_symbol(request, params)
    now = desk.clock.now_ms()
    if symbol:
        entry = premium_index(desk.market, desk.seed, symbol, now)
        if entry is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return web.json_response(entry)
    entries = [premium_index(desk.market, desk.seed, s, now) for s in desk.market.symbols]
    return web.json_response([e for e in entries if e is not None])


async def _listen_account(request: web.Request) -> tuple[Account, str | None]:
    """The account of the API key header (no signature) and the `listenKey` sent, if any."""
    desk = request.app[DESK]
    key = api_key_of(request.headers, desk.accounts.secrets)
    form = await request.post() if request.method != "GET" else {}
    value = request.query.get("listenKey") or form.get("listenKey")
    return desk.accounts.get(key, desk.clock.now_ms()), value if isinstance(value, str) else None


async def listen_key(request: web.Request) -> web.Response:
    """POST/PUT/DELETE /fapi/v1/listenKey: open (or extend), keep alive, close; -1125 unknown."""
    desk = request.app[DESK]
    account, value = await _listen_account(request)
    now = desk.clock.now_ms()
    if request.method == "POST":
        return web.json_response({"listenKey": desk.accounts.open_listen_key(account, now)})
    if request.method == "PUT":
        return web.json_response({"listenKey": desk.accounts.keep_alive(account, value, now)})
    desk.accounts.close_listen_key(account, value, now)
    return web.json_response({})


def add_account_routes(app: web.Application, desk: AccountDesk) -> None:
    """Register the account API on `app`, serving `desk`."""
    app[DESK] = desk
    app.router.add_get("/fapi/v2/balance", balance)
    app.router.add_get("/fapi/v3/balance", balance)
    app.router.add_get("/fapi/v2/account", account_v2)
    app.router.add_get("/fapi/v3/account", account_v3)
    app.router.add_get("/fapi/v2/positionRisk", position_risk_v2)
    app.router.add_get("/fapi/v3/positionRisk", position_risk_v3)
    app.router.add_post("/fapi/v1/leverage", change_leverage)
    app.router.add_post("/fapi/v1/marginType", change_margin_type)
    app.router.add_get("/fapi/v1/leverageBracket", leverage_bracket)
    app.router.add_get("/fapi/v1/positionSide/dual", position_mode)
    app.router.add_get("/fapi/v1/premiumIndex", premium)
    for method in ("POST", "PUT", "DELETE"):
        app.router.add_route(method, "/fapi/v1/listenKey", listen_key)
