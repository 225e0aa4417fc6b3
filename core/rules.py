"""A symbol's exchange filters and the one checker every order passes (API, risk, brokers)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from core.errors import FilterError
from core.models import OrderType

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """The filters Binance applies to new orders of one symbol (0 means "no such limit")."""

    symbol: str
    status: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_step_size: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    max_open_orders: int
    percent_up: Decimal
    percent_down: Decimal


def _dec(entry: dict[str, Any], key: str) -> Decimal:
    return Decimal(str(entry.get(key, "0")))


def parse_rules(info: dict[str, Any]) -> dict[str, SymbolRules]:
    """Every symbol's rules from an `exchangeInfo` answer, by symbol."""
    out = {}
    for entry in info.get("symbols", []):
        by_type = {f["filterType"]: f for f in entry.get("filters", [])}
        price = by_type.get("PRICE_FILTER", {})
        lot = by_type.get("LOT_SIZE", {})
        market = by_type.get("MARKET_LOT_SIZE", lot)
        percent = by_type.get("PERCENT_PRICE", {})
        out[entry["symbol"]] = SymbolRules(
            symbol=entry["symbol"],
            status=entry.get("status", "TRADING"),
            tick_size=_dec(price, "tickSize"),
            min_price=_dec(price, "minPrice"),
            max_price=_dec(price, "maxPrice"),
            step_size=_dec(lot, "stepSize"),
            min_qty=_dec(lot, "minQty"),
            max_qty=_dec(lot, "maxQty"),
            market_step_size=_dec(market, "stepSize"),
            market_min_qty=_dec(market, "minQty"),
            market_max_qty=_dec(market, "maxQty"),
            min_notional=_dec(by_type.get("MIN_NOTIONAL", {}), "notional"),
            max_open_orders=int(by_type.get("MAX_NUM_ORDERS", {}).get("limit", 0)),
            percent_up=_dec(percent, "multiplierUp"),
            percent_down=_dec(percent, "multiplierDown"),
        )
    return out


def _on_grid(value: Decimal, origin: Decimal, step: Decimal) -> bool:
    """True when `value` is `origin` plus a whole number of steps; a quotient too large for
    exact arithmetic (an absurd value) is off the grid."""
    if step == 0:
        return True
    with localcontext() as context:
        context.prec = 60
        try:
            return (value - origin) % step == 0
        except InvalidOperation:
            return False


def _check_range(
    name: str, field: str, value: Decimal, low: Decimal, high: Decimal, low_key: str, high_key: str
) -> None:
    if (low and value < low) or (high and value > high):
        raise FilterError(
            name,
            field,
            f"{field} {value} is outside [{low_key}, {high_key}] = [{low}, {high}]",
            {low_key: low, high_key: high},
        )


def check_quantity(rules: SymbolRules, order_type: OrderType, quantity: Decimal) -> None:
    """LOT_SIZE for limit orders, MARKET_LOT_SIZE for market orders."""
    if order_type is OrderType.MARKET:
        name, step = "MARKET_LOT_SIZE", rules.market_step_size
        low, high = rules.market_min_qty, rules.market_max_qty
    else:
        name, step, low, high = "LOT_SIZE", rules.step_size, rules.min_qty, rules.max_qty
    _check_range(name, "cantidad", quantity, low, high, "minQty", "maxQty")
    if not _on_grid(quantity, low, step):
        raise FilterError(
            name,
            "cantidad",
            f"cantidad {quantity} is not a multiple of stepSize",
            {"stepSize": step},
        )


def check_price(
    rules: SymbolRules, price: Decimal, reference: Decimal | None, field: str = "precio"
) -> None:
    """PRICE_FILTER (range and tick) and PERCENT_PRICE (band around the reference price) of the
    price in `field` (the order's price, or a trigger or activation price)."""
    _check_range(
        "PRICE_FILTER", field, price, rules.min_price, rules.max_price, "minPrice", "maxPrice"
    )
    if not _on_grid(price, rules.min_price, rules.tick_size):
        raise FilterError(
            "PRICE_FILTER",
            field,
            f"{field} {price} is not a multiple of tickSize",
            {"tickSize": rules.tick_size},
        )
    if reference is None or not rules.percent_up:
        return
    low, high = reference * rules.percent_down, reference * rules.percent_up
    if not low <= price <= high:
        raise FilterError(
            "PERCENT_PRICE",
            field,
            f"{field} {price} is outside [{low}, {high}], the band around the last price "
            f"{reference}",
            {"multiplierDown": rules.percent_down, "multiplierUp": rules.percent_up},
        )


def check_order(
    rules: SymbolRules,
    order_type: OrderType,
    quantity: float,
    price: float | None,
    reference_price: float | None = None,
    open_orders: int = 0,
) -> None:
    """Raise FilterError naming the first filter the exchange would refuse this order with.

    `reference_price` (the last trade or mark price, when known) prices market orders for
    MIN_NOTIONAL and bounds limit prices for PERCENT_PRICE; `open_orders` counts the symbol's
    orders still open.
    """
    if rules.status != "TRADING":
        raise FilterError("STATUS", "symbol", f"{rules.symbol} is {rules.status}, not TRADING", {})
    if rules.max_open_orders and open_orders >= rules.max_open_orders:
        raise FilterError(
            "MAX_NUM_ORDERS",
            "symbol",
            f"{rules.symbol} already has {open_orders} open orders",
            {"limit": rules.max_open_orders},
        )
    qty = Decimal(str(quantity))
    check_quantity(rules, order_type, qty)
    reference = None if reference_price is None else Decimal(str(reference_price))
    if order_type is OrderType.MARKET:
        fill_price = reference
    else:
        if price is None:
            raise FilterError("PRICE_FILTER", "precio", "precio is required for a limit order", {})
        fill_price = Decimal(str(price))
        check_price(rules, fill_price, reference)
    if fill_price is not None and fill_price * qty < rules.min_notional:
        raise FilterError(
            "MIN_NOTIONAL",
            "cantidad",
            f"precio x cantidad = {fill_price * qty} is below the minimum notional",
            {"notional": rules.min_notional},
        )
