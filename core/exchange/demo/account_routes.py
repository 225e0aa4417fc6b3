"""The demo exchange's account API: signed balance, account, positions, leverage, margin type,
brackets, position mode; the API-key-only listen keys; the public premium index."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web

from core.exchange.demo.accounts import Account, Accounts, MarginType
from core.exchange.demo.auth import api_key_of, verify
from core.exchange.demo.brackets import brackets_of, max_notional
from core.exchange.demo.errors import BinanceError, illegal_digits, mandatory_missing
from core.exchange.demo.market import DemoClock, DemoMarket
from core.exchange.demo.premium import mark_price, premium_index

_ZERO = "0.00000000"


@dataclass(slots=True)
class AccountDesk:
    """What the account routes serve: the accounts, the demo clock and market, the seed."""

    accounts: Accounts
    clock: DemoClock
    market: DemoMarket
    seed: int


DESK = web.AppKey("account_desk", AccountDesk)


async def _signed(request: web.Request) -> tuple[Account, dict[str, str]]:
    """The signed request's account and parameters (BinanceError as Binance would answer)."""
    desk = request.app[DESK]
    body = await request.text() if request.method in ("POST", "PUT", "DELETE") else ""
    now = desk.clock.now_ms()
    key, params = verify(
        request.headers, request.rel_url.raw_query_string, body, desk.accounts.secrets, now
    )
    return desk.accounts.get(key, now), params


def _symbol(request: web.Request, params: dict[str, str]) -> str:
    """The mandatory listed `symbol`: -1102 without it, -1121 for an unknown one."""
    symbol = params.get("symbol", "")
    if not symbol:
        raise mandatory_missing("symbol")
    if symbol not in request.app[DESK].market.symbols:
        raise BinanceError(-1121, "Invalid symbol.")
    return symbol


def _maybe_symbol(request: web.Request, params: dict[str, str]) -> str | None:
    """The optional `symbol`, checked when sent."""
    return _symbol(request, params) if params.get("symbol") else None


def _usdt(amount: Decimal) -> str:
    return f"{amount:.8f}"


def _alias(account: Account) -> str:
    return hashlib.sha256(account.api_key.encode()).hexdigest()[:8]


def _balance_rows(account: Account) -> list[dict[str, Any]]:
    wallet = _usdt(account.wallet_balance)
    return [
        {
            "accountAlias": _alias(account),
            "asset": "USDT",
            "balance": wallet,
            "crossWalletBalance": wallet,
            "crossUnPnl": _ZERO,
            "availableBalance": wallet,
            "maxWithdrawAmount": wallet,
            "marginAvailable": True,
            "updateTime": account.update_ms,
        }
    ]


async def balance(request: web.Request) -> web.Response:
    """GET /fapi/v2/balance and /fapi/v3/balance."""
    account, _ = await _signed(request)
    return web.json_response(_balance_rows(account))


def _totals(account: Account) -> dict[str, Any]:
    wallet = _usdt(account.wallet_balance)
    return {
        "totalInitialMargin": _ZERO,
        "totalMaintMargin": _ZERO,
        "totalWalletBalance": wallet,
        "totalUnrealizedProfit": _ZERO,
        "totalMarginBalance": wallet,
        "totalPositionInitialMargin": _ZERO,
        "totalOpenOrderInitialMargin": _ZERO,
        "totalCrossWalletBalance": wallet,
        "totalCrossUnPnl": _ZERO,
        "availableBalance": wallet,
        "maxWithdrawAmount": wallet,
    }


def _asset(account: Account) -> dict[str, Any]:
    wallet = _usdt(account.wallet_balance)
    return {
        "asset": "USDT",
        "walletBalance": wallet,
        "unrealizedProfit": _ZERO,
        "marginBalance": wallet,
        "maintMargin": _ZERO,
        "initialMargin": _ZERO,
        "positionInitialMargin": _ZERO,
        "openOrderInitialMargin": _ZERO,
        "crossWalletBalance": wallet,
        "crossUnPnl": _ZERO,
        "availableBalance": wallet,
        "maxWithdrawAmount": wallet,
        "marginAvailable": True,
        "updateTime": account.update_ms,
    }


def _account_position(account: Account, symbol: str) -> dict[str, Any]:
    config = account.config(symbol)
    return {
        "symbol": symbol,
        "initialMargin": "0",
        "maintMargin": "0",
        "unrealizedProfit": _ZERO,
        "positionInitialMargin": "0",
        "openOrderInitialMargin": "0",
        "leverage": str(config.leverage),
        "isolated": config.margin_type is MarginType.ISOLATED,
        "entryPrice": "0.0",
        "breakEvenPrice": "0.0",
        "maxNotional": str(max_notional(symbol, config.leverage)),
        "bidNotional": "0",
        "askNotional": "0",
        "positionSide": "BOTH",
        "positionAmt": "0",
        "updateTime": 0,
    }


async def account_v2(request: web.Request) -> web.Response:
    """GET /fapi/v2/account: totals, the USDT asset and a zero position per symbol."""
    account, _ = await _signed(request)
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
        **_totals(account),
        "assets": [_asset(account)],
        "positions": [_account_position(account, symbol) for symbol in symbols],
    }
    return web.json_response(body)


async def account_v3(request: web.Request) -> web.Response:
    """GET /fapi/v3/account: totals, the USDT asset, positions only where one is open (none)."""
    account, _ = await _signed(request)
    return web.json_response({**_totals(account), "assets": [_asset(account)], "positions": []})


def _position_risk(account: Account, symbol: str, mark: str) -> dict[str, Any]:
    config = account.config(symbol)
    return {
        "symbol": symbol,
        "positionAmt": "0",
        "entryPrice": "0.0",
        "breakEvenPrice": "0.0",
        "markPrice": mark,
        "unRealizedProfit": _ZERO,
        "liquidationPrice": "0",
        "leverage": str(config.leverage),
        "maxNotionalValue": str(max_notional(symbol, config.leverage)),
        "marginType": "isolated" if config.margin_type is MarginType.ISOLATED else "cross",
        "isolatedMargin": _ZERO,
        "isAutoAddMargin": "false",
        "positionSide": "BOTH",
        "notional": "0",
        "isolatedWallet": "0",
        "updateTime": 0,
    }


async def position_risk_v2(request: web.Request) -> web.Response:
    """GET /fapi/v2/positionRisk: a row per symbol (or the one asked for), zero positions."""
    account, params = await _signed(request)
    desk = request.app[DESK]
    symbol = _maybe_symbol(request, params)
    now = desk.clock.now_ms()
    rows = []
    for name in [symbol] if symbol else list(desk.market.symbols):
        mark = mark_price(desk.market, name, now)
        if mark is not None:
            rows.append(_position_risk(account, name, mark))
    return web.json_response(rows)


async def position_risk_v3(request: web.Request) -> web.Response:
    """GET /fapi/v3/positionRisk: only open positions, so none until the demo matches orders."""
    _, params = await _signed(request)
    _maybe_symbol(request, params)
    return web.json_response([])


async def change_leverage(request: web.Request) -> web.Response:
    """POST /fapi/v1/leverage → {leverage, maxNotionalValue, symbol}; -4028 out of range."""
    account, params = await _signed(request)
    symbol = _symbol(request, params)
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
    account, params = await _signed(request)
    symbol = _symbol(request, params)
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
    _, params = await _signed(request)
    symbol = _maybe_symbol(request, params)
    if symbol:
        return web.json_response(_brackets_entry(symbol))
    return web.json_response([_brackets_entry(s) for s in request.app[DESK].market.symbols])


async def position_mode(request: web.Request) -> web.Response:
    """GET /fapi/v1/positionSide/dual: the demo trades in one-way mode only."""
    await _signed(request)
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
