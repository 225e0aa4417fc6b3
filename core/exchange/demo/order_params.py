"""Parameters of the demo's order endpoints, checked as Binance checks them, into engine units."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from core.exchange.demo.errors import BinanceError, illegal_digits, mandatory_missing
from core.exchange.demo.orders import ALGO_TYPES, REGULAR_TYPES, side_sign
from core.exchange.demo.symbols import SymbolSpec

CLIENT_ID = re.compile(r"[\.A-Z\:/a-z0-9_-]{1,36}")
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTX", "GTD")
WORKING_TYPES = ("CONTRACT_PRICE", "MARK_PRICE")
GTD_MIN_AHEAD_MS = 600_000
_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
_WHOLE = re.compile(r"[0-9]{1,20}")
_LEGAL = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"


def text(params: Mapping[str, str], name: str) -> str:
    """A mandatory parameter (-1102 when missing or empty)."""
    value = params.get(name, "")
    if not value:
        raise mandatory_missing(name)
    return value


def whole(params: Mapping[str, str], name: str) -> int | None:
    """An optional whole number (-1100 for anything else)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _WHOLE.fullmatch(raw):
        raise illegal_digits(name)
    return int(raw)


def flag(params: Mapping[str, str], name: str) -> bool:
    """A "true"/"false" parameter (any case), false when absent."""
    raw = params.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return raw == "true"


def _decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _DECIMAL.fullmatch(raw):
        raise BinanceError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '{_LEGAL}'."
        )
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise illegal_digits(name) from None


def _units(value: Decimal, decimals: int) -> int:
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise BinanceError(-1111, "Precision is over the maximum defined for this asset.")
    return int(scaled)


def price_units(spec: SymbolSpec, params: Mapping[str, str], name: str) -> int | None:
    """An optional price in the symbol's units: on its tick, within its PRICE_FILTER."""
    value = _decimal(params, name)
    if value is None:
        return None
    units = _units(value, spec.price_decimals)
    if units <= 0:
        raise BinanceError(-4001, "Price less than 0.")
    if value < Decimal(spec.min_price):
        raise BinanceError(-4013, "Price less than min price.")
    if value > Decimal(spec.max_price):
        raise BinanceError(-4002, "Price greater than max price.")
    if units % spec.tick_units:
        raise BinanceError(-4014, "Price not increased by tick size.")
    return units


def quantity_steps(
    spec: SymbolSpec, params: Mapping[str, str], market: bool, name: str = "quantity"
) -> int | None:
    """An optional quantity in steps, within LOT_SIZE (MARKET_LOT_SIZE for market orders)."""
    value = _decimal(params, name)
    if value is None:
        return None
    steps = _units(value, spec.qty_decimals)
    if steps <= 0:
        raise BinanceError(-4003, "Quantity less than or equal to zero.")
    if value > Decimal(spec.market_max_qty if market else spec.max_qty):
        raise BinanceError(-4005, "Quantity greater than max quantity.")
    return steps


def side(params: Mapping[str, str]) -> str:
    value = text(params, "side")
    if value not in ("BUY", "SELL"):
        raise BinanceError(-1117, "Invalid side.")
    return value


def one_way(params: Mapping[str, str]) -> None:
    """The demo trades in one-way mode: a hedge-mode positionSide is -4061."""
    if params.get("positionSide", "BOTH") != "BOTH":
        raise BinanceError(-4061, "Order's position side does not match user's setting.")


def regular_type(params: Mapping[str, str]) -> str:
    value = text(params, "type")
    if value in ALGO_TYPES:
        raise BinanceError(
            -4120,
            "Order type not supported for this endpoint. Please use the Algo Order API "
            "endpoints instead.",
        )
    if value not in REGULAR_TYPES:
        raise BinanceError(-1116, "Invalid orderType.")
    return value


def algo_type(params: Mapping[str, str]) -> str:
    if text(params, "algoType") != "CONDITIONAL":
        raise BinanceError(-1130, "Data sent for parameter 'algoType' is not valid.")
    value = text(params, "type")
    if value not in ALGO_TYPES:
        raise BinanceError(-1116, "Invalid orderType.")
    return value


def time_in_force(params: Mapping[str, str], required: bool) -> str:
    raw = params.get("timeInForce", "")
    if not raw:
        if required:
            raise mandatory_missing("timeInForce")
        return "GTC"
    if raw not in TIME_IN_FORCE:
        raise BinanceError(-1115, "Invalid timeInForce.")
    return raw


def good_till(params: Mapping[str, str], tif: str, now_ms: int) -> int:
    """goodTillDate of a GTD order: more than 600 s ahead (0 for any other time in force)."""
    value = whole(params, "goodTillDate")
    if tif != "GTD":
        return 0
    if value is None:
        raise mandatory_missing("goodTillDate")
    if value <= now_ms + GTD_MIN_AHEAD_MS:
        raise BinanceError(-1130, "Data sent for parameter 'goodTillDate' is not valid.")
    return value


def working_type(params: Mapping[str, str]) -> str:
    value = params.get("workingType", "CONTRACT_PRICE")
    if value not in WORKING_TYPES:
        raise BinanceError(-1130, "Data sent for parameter 'workingType' is not valid.")
    return value


def client_id(params: Mapping[str, str], name: str, default: str) -> str:
    value = params.get(name, "") or default
    if not CLIENT_ID.fullmatch(value):
        raise BinanceError(-4015, "Client order id is not valid.")
    return value


def callback_rate(params: Mapping[str, str]) -> str:
    """A trailing stop's callbackRate: 0.1 to 10 (percent) with at most one decimal."""
    value = _decimal(params, "callbackRate")
    if value is None:
        raise mandatory_missing("callbackRate")
    if not Decimal("0.1") <= value <= Decimal("10") or value != value.quantize(Decimal("0.1")):
        raise BinanceError(-1130, "Data sent for parameter 'callbackRate' is not valid.")
    return str(value.normalize()) if value != value.to_integral_value() else str(int(value))


def check_notional(spec: SymbolSpec, steps: int, units: int, reduce_only: bool) -> None:
    """MIN_NOTIONAL: -4164 for an order worth less than the minimum (unless reduce-only)."""
    notional = Decimal(steps * units).scaleb(-spec.quote_decimals)
    if not reduce_only and notional < Decimal(spec.min_notional):
        raise BinanceError(
            -4164,
            f"Order's notional must be no smaller than {spec.min_notional} "
            "(unless you choose reduce only).",
        )


def check_percent_price(side: str, units: int, market_units: int) -> None:
    """PERCENT_PRICE: a limit within +5 % / -5 % of the mark price (-4016 / -4024)."""
    if side == "BUY" and units * 100 > market_units * 105:
        raise BinanceError(-4016, "Limit price can't be higher than the multiplier-up price.")
    if side == "SELL" and units * 100 < market_units * 95:
        raise BinanceError(-4024, "Limit price can't be lower than the multiplier-down price.")


def check_post_only(side: str, tif: str, units: int, market_units: int) -> None:
    """-5022 for a post-only (GTX) limit that would take liquidity at `market_units`."""
    if tif == "GTX" and side_sign(side) * (market_units - units) <= 0:
        raise BinanceError(
            -5022,
            "Due to the order could not be executed as maker, the Post Only order will be "
            "rejected.",
        )
