"""Binance's JSON shapes of the demo's trading state: REST orders, algo orders, trades,
positions, and the user data stream's ORDER_TRADE_UPDATE, ACCOUNT_UPDATE and ALGO_UPDATE."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.exchange.demo import margin
from core.exchange.demo.accounts import Account
from core.exchange.demo.brackets import max_notional
from core.exchange.demo.orders import AlgoOrder, Fill, Order, Position
from core.exchange.demo.symbols import SymbolSpec

STP_MODE = "EXPIRE_MAKER"


def fixed(units: int, decimals: int) -> str:
    """An integer amount in units of 10**-decimals as Binance's fixed-point string."""
    if decimals == 0:
        return str(units)
    whole, fraction = divmod(abs(units), 10**decimals)
    return f"{'-' if units < 0 else ''}{whole}.{fraction:0{decimals}d}"


def usdt(amount: float) -> str:
    """A USDT amount with Binance's 8 decimals (never "-0.00000000")."""
    text = f"{amount:.8f}"
    return "0.00000000" if text == "-0.00000000" else text


def price(spec: SymbolSpec, units: int) -> str:
    return fixed(units, spec.price_decimals)


def quantity(spec: SymbolSpec, steps: int) -> str:
    return fixed(steps, spec.qty_decimals)


def average(spec: SymbolSpec, cum_quote: int, executed: int) -> str:
    """Average fill price (cum quote over executed) with 8 decimals; "0.00000000" before any."""
    if not executed:
        return usdt(0.0)
    return usdt(margin.units_to_price(spec, 1) * cum_quote / executed)


def order_json(spec: SymbolSpec, order: Order) -> dict[str, Any]:
    """A regular order as GET/POST/DELETE/PUT /fapi/v1/order answer it."""
    return {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": order.status,
        "clientOrderId": order.client_id,
        "price": price(spec, order.price),
        "avgPrice": average(spec, order.cum_quote, order.executed),
        "origQty": quantity(spec, order.quantity),
        "executedQty": quantity(spec, order.executed),
        "cumQty": quantity(spec, order.executed),
        "cumQuote": fixed(order.cum_quote, spec.quote_decimals),
        "timeInForce": order.time_in_force,
        "type": order.type,
        "reduceOnly": order.reduce_only,
        "closePosition": order.close_position,
        "side": order.side,
        "positionSide": "BOTH",
        "stopPrice": price(spec, order.stop_price),
        "workingType": order.working_type,
        "priceProtect": False,
        "origType": order.orig_type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": STP_MODE,
        "goodTillDate": order.good_till,
        "time": order.time_ms,
        "updateTime": order.update_ms,
    }


def algo_json(spec: SymbolSpec, algo: AlgoOrder, child: Order | None) -> dict[str, Any]:
    """A conditional order as /fapi/v1/algoOrder and /fapi/v1/openAlgoOrders answer it."""
    return {
        "algoId": algo.algo_id,
        "clientAlgoId": algo.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": algo.order_type,
        "symbol": algo.symbol,
        "side": algo.side,
        "positionSide": "BOTH",
        "timeInForce": algo.time_in_force,
        "quantity": quantity(spec, algo.quantity),
        "algoStatus": algo.status,
        "triggerPrice": price(spec, algo.trigger_price),
        "price": price(spec, algo.price),
        "icebergQuantity": None,
        "selfTradePreventionMode": STP_MODE,
        "workingType": algo.working_type,
        "priceMatch": "NONE",
        "closePosition": algo.close_position,
        "priceProtect": False,
        "reduceOnly": algo.reduce_only,
        "activatePrice": price(spec, algo.activate_price) if algo.activate_price else "",
        "callbackRate": algo.callback_rate,
        "createTime": algo.create_ms,
        "updateTime": algo.update_ms,
        "triggerTime": algo.trigger_ms,
        "goodTillDate": algo.good_till,
        "actualOrderId": str(algo.order_id) if algo.order_id else "",
        "executedQty": quantity(spec, child.executed if child else 0),
        "avgPrice": average(spec, child.cum_quote, child.executed) if child else usdt(0.0),
    }


def fill_json(spec: SymbolSpec, fill: Fill) -> dict[str, Any]:
    """One GET /fapi/v1/userTrades row."""
    return {
        "buyer": fill.side == "BUY",
        "commission": usdt(fill.commission),
        "commissionAsset": "USDT",
        "id": fill.trade_id,
        "maker": fill.maker,
        "orderId": fill.order_id,
        "price": price(spec, fill.price),
        "qty": quantity(spec, fill.quantity),
        "quoteQty": fixed(fill.price * fill.quantity, spec.quote_decimals),
        "realizedPnl": usdt(fill.realized_pnl),
        "side": fill.side,
        "positionSide": "BOTH",
        "symbol": fill.symbol,
        "time": fill.time_ms,
    }


def order_update(
    spec: SymbolSpec, order: Order, execution: str, now_ms: int, fill: Fill | None = None
) -> dict[str, Any]:
    """The ORDER_TRADE_UPDATE event of one change of `order` (`execution` is Binance's `x`)."""
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": now_ms,
        "T": now_ms,
        "o": {
            "s": order.symbol,
            "c": order.client_id,
            "S": order.side,
            "o": order.type,
            "f": order.time_in_force,
            "q": quantity(spec, order.quantity),
            "p": price(spec, order.price),
            "ap": average(spec, order.cum_quote, order.executed),
            "sp": price(spec, order.stop_price),
            "x": execution,
            "X": order.status,
            "i": order.order_id,
            "l": quantity(spec, fill.quantity if fill else 0),
            "z": quantity(spec, order.executed),
            "L": price(spec, fill.price if fill else 0),
            "n": usdt(fill.commission if fill else 0.0),
            "N": "USDT",
            "T": now_ms,
            "t": fill.trade_id if fill else 0,
            "b": "0",
            "a": "0",
            "m": fill.maker if fill else False,
            "R": order.reduce_only,
            "wt": order.working_type,
            "ot": order.orig_type,
            "ps": "BOTH",
            "cp": order.close_position,
            "AP": price(spec, order.activate_price),
            "cr": order.callback_rate or "0",
            "pP": False,
            "si": 0,
            "ss": 0,
            "rp": usdt(fill.realized_pnl if fill else 0.0),
            "V": STP_MODE,
            "pm": "NONE",
            "gtd": order.good_till,
        },
    }


def algo_update(
    spec: SymbolSpec, algo: AlgoOrder, now_ms: int, child: Order | None = None
) -> dict[str, Any]:
    """The ALGO_UPDATE event of one change of a conditional order."""
    return {
        "e": "ALGO_UPDATE",
        "T": now_ms,
        "E": now_ms,
        "o": {
            "caid": algo.client_algo_id,
            "aid": algo.algo_id,
            "at": "CONDITIONAL",
            "o": algo.order_type,
            "s": algo.symbol,
            "S": algo.side,
            "ps": "BOTH",
            "f": algo.time_in_force,
            "q": quantity(spec, algo.quantity),
            "X": algo.status,
            "ai": str(algo.order_id) if algo.order_id else "",
            "ap": average(spec, child.cum_quote, child.executed) if child else usdt(0.0),
            "aq": quantity(spec, child.executed if child else 0),
            "act": child.type if child else "",
            "tp": price(spec, algo.trigger_price),
            "p": price(spec, algo.price),
            "V": STP_MODE,
            "wt": algo.working_type,
            "pm": "NONE",
            "cp": algo.close_position,
            "pP": False,
            "R": algo.reduce_only,
            "tt": algo.trigger_ms,
            "gtd": algo.good_till,
        },
    }


def account_position(
    account: Account, specs: Mapping[str, SymbolSpec], position: Position, mark: float
) -> dict[str, Any]:
    """One `P` entry of ACCOUNT_UPDATE."""
    spec = specs[position.symbol]
    isolated = margin.is_isolated(account, position.symbol)
    return {
        "s": position.symbol,
        "pa": quantity(spec, position.amount),
        "ep": usdt(position.entry),
        "bep": usdt(break_even(spec, position)),
        "cr": usdt(position.realized),
        "up": usdt(margin.unrealised(spec, position, mark)),
        "mt": "isolated" if isolated else "cross",
        "iw": usdt(margin.position_margin(account, spec, position) if isolated else 0.0),
        "ps": "BOTH",
    }


def account_update(
    account: Account,
    reason: str,
    positions: list[dict[str, Any]],
    change: float,
    cross_wallet: float,
    now_ms: int,
) -> dict[str, Any]:
    """ACCOUNT_UPDATE: the USDT balance and the positions that changed, with the reason.

    `change` is Binance's `bc`: the balance change other than PnL and commission (funding).
    """
    wallet = usdt(account.wallet_balance)
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now_ms,
        "T": now_ms,
        "a": {
            "m": reason,
            "B": [{"a": "USDT", "wb": wallet, "cw": usdt(cross_wallet), "bc": usdt(change)}],
            "P": positions,
        },
    }


def break_even(spec: SymbolSpec, position: Position) -> float:
    """Entry price moved by the open fills' commissions: where closing at no fee breaks even."""
    if not position.amount:
        return 0.0
    held = margin.steps_to_quantity(spec, abs(position.amount))
    return position.entry + position.side * position.open_fees / held


def position_risk(
    account: Account,
    specs: Mapping[str, SymbolSpec],
    position: Position,
    mark_units: int,
    liquidation: float,
) -> dict[str, Any]:
    """One GET /fapi/v2|v3/positionRisk row."""
    spec = specs[position.symbol]
    config = account.config(position.symbol)
    isolated = margin.is_isolated(account, position.symbol)
    mark = margin.units_to_price(spec, mark_units)
    held = margin.steps_to_quantity(spec, position.amount)
    isolated_margin = margin.position_margin(account, spec, position) if isolated else 0.0
    unrealised = margin.unrealised(spec, position, mark)
    return {
        "symbol": position.symbol,
        "positionAmt": quantity(spec, position.amount),
        "entryPrice": usdt(position.entry),
        "breakEvenPrice": usdt(break_even(spec, position)),
        "markPrice": price(spec, mark_units),
        "unRealizedProfit": usdt(unrealised),
        "liquidationPrice": usdt(liquidation),
        "leverage": str(config.leverage),
        "maxNotionalValue": str(max_notional(position.symbol, config.leverage)),
        "marginType": "isolated" if isolated else "cross",
        "isolatedMargin": usdt(isolated_margin + unrealised if isolated else 0.0),
        "isAutoAddMargin": "false",
        "positionSide": "BOTH",
        "notional": usdt(held * mark),
        "isolatedWallet": usdt(isolated_margin),
        "updateTime": position.update_ms,
    }
