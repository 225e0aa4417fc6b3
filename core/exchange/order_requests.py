"""What Kryptelion sends: deterministic client ids and the checked order and algo order requests.

Prices and quantities are Decimal and go on the wire as plain digits, never an exponent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from core.errors import InvalidOrderError
from core.exchange.trading_types import WorkingType
from core.models import CLIENT_ORDER_ID_PATTERN, ORDER_FIELDS, Order, OrderType, Side, TimeInForce

PLAIN_TYPES = frozenset({OrderType.LIMIT, OrderType.MARKET})
MAX_CLIENT_ID = 36


def client_order_id(*parts: object) -> str:
    """A deterministic `newClientOrderId`/`clientAlgoId` from `parts` (e.g. bot, candle ms,
    purpose): characters outside Binance's pattern dropped, the non-empty parts joined by "-";
    over 36 characters, a readable prefix, "_" and 10 hex of a SHA-256 of the full id.
    Raises ValueError when no part has a usable character."""
    cleaned = ("".join(ch for ch in str(part) if _id_char(ch)) for part in parts)
    allowed = "-".join(part for part in cleaned if part)
    if not allowed:
        raise ValueError(f"client order id parts {parts!r} hold no usable character")
    if len(allowed) <= MAX_CLIENT_ID:
        return allowed
    digest = hashlib.sha256(allowed.encode()).hexdigest()[:10]
    return f"{allowed[: MAX_CLIENT_ID - 11]}_{digest}"


def _id_char(ch: str) -> bool:
    return CLIENT_ORDER_ID_PATTERN.fullmatch(ch) is not None


def check_client_id(value: str, field: str = "client_order_id") -> str:
    """`value` if it matches Binance's client id pattern; else InvalidOrderError naming it."""
    if not isinstance(value, str) or not CLIENT_ORDER_ID_PATTERN.fullmatch(value):
        name = ORDER_FIELDS["client_order_id"]
        raise InvalidOrderError(
            name, f"{name} ({field}): {value!r} does not match {CLIENT_ORDER_ID_PATTERN.pattern}"
        )
    return value


def _wire(value: Decimal) -> str:
    """A Decimal as Binance reads it: plain digits, never an exponent."""
    return format(value, "f")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A LIMIT or MARKET order for `/fapi/v1/order`; `client_order_id` makes it idempotent."""

    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    client_order_id: str
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None  # LIMIT only; GTC when None
    reduce_only: bool = False
    good_till_date: int | None = None

    def __post_init__(self) -> None:
        if self.type not in PLAIN_TYPES:
            name = ORDER_FIELDS["type"]
            raise InvalidOrderError(name, f"{name}: {self.type.name} goes to AlgoOrderRequest")
        if self.type is OrderType.MARKET and self.time_in_force is not None:
            name = ORDER_FIELDS["time_in_force"]
            raise InvalidOrderError(name, f"{name}: not allowed for a MARKET order")
        check_client_id(self.client_order_id)
        # Building a core Order runs the one checker of field combinations (InvalidOrderError).
        Order(self.symbol, self.side, float(self.quantity), _float(self.price), self.type,
              reduce_only=self.reduce_only, time_in_force=self.tif,
              good_till_date=self.good_till_date)  # fmt: skip

    @property
    def tif(self) -> TimeInForce:
        return self.time_in_force or TimeInForce.GTC

    def params(self) -> dict[str, str]:
        """The request's Binance parameters."""
        out = {"symbol": self.symbol, "side": self.side.name, "type": self.type.name,
               "quantity": _wire(self.quantity),
               "newClientOrderId": self.client_order_id}  # fmt: skip
        if self.type is OrderType.LIMIT:
            out["price"] = _wire(self.price or Decimal(0))
            out["timeInForce"] = self.tif.value
        if self.good_till_date is not None:
            out["goodTillDate"] = str(self.good_till_date)
        if self.reduce_only:
            out["reduceOnly"] = "true"
        return out


@dataclass(frozen=True, slots=True)
class AlgoOrderRequest:
    """A conditional order for `/fapi/v1/algoOrder` (algoType CONDITIONAL).

    `quantity` is None with `close_position`; `callback_rate` is in percent.
    """

    symbol: str
    side: Side
    type: OrderType
    client_algo_id: str
    quantity: Decimal | None = None
    trigger_price: Decimal | None = None
    price: Decimal | None = None
    working_type: WorkingType = WorkingType.CONTRACT_PRICE
    close_position: bool = False
    reduce_only: bool = False
    activate_price: Decimal | None = None
    callback_rate: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    good_till_date: int | None = None

    def __post_init__(self) -> None:
        if not self.type.is_conditional:
            name = ORDER_FIELDS["type"]
            raise InvalidOrderError(name, f"{name}: {self.type.name} goes to OrderRequest")
        check_client_id(self.client_algo_id, "client_algo_id")
        if self.close_position == (self.quantity is not None):
            name = ORDER_FIELDS["quantity"]
            raise InvalidOrderError(name, f"{name}: send it exactly when not closing the position")
        Order(self.symbol, self.side, float(self.quantity or 0), _float(self.price), self.type,
              reduce_only=self.reduce_only, close_position=self.close_position,
              trigger_price=_float(self.trigger_price), callback_rate=_float(self.callback_rate),
              activation_price=_float(self.activate_price), time_in_force=self.time_in_force,
              good_till_date=self.good_till_date)  # fmt: skip

    def params(self) -> dict[str, str]:
        """The request's Binance parameters."""
        out = {"algoType": "CONDITIONAL", "symbol": self.symbol, "side": self.side.name,
               "type": self.type.name, "clientAlgoId": self.client_algo_id,
               "workingType": self.working_type.value}  # fmt: skip
        for key, value in (("quantity", self.quantity), ("triggerPrice", self.trigger_price),
                           ("price", self.price), ("activatePrice", self.activate_price),
                           ("callbackRate", self.callback_rate)):  # fmt: skip
            if value is not None:
                out[key] = _wire(value)
        if self.price is not None:
            out["timeInForce"] = self.time_in_force.value
        if self.good_till_date is not None:
            out["goodTillDate"] = str(self.good_till_date)
        if self.close_position:
            out["closePosition"] = "true"
        if self.reduce_only:
            out["reduceOnly"] = "true"
        return out


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
