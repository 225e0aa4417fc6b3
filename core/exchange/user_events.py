"""User data stream events (orders, account, algo orders, key expiry) and their strict parsers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from core.exchange.binance_fields import (
    Json,
    choice,
    dec,
    flag,
    integer,
    named,
    opt_dec,
    opt_int,
    raw,
    rows,
    text,
)
from core.exchange.trading_types import (
    AlgoStatus,
    ExecutionType,
    OrderStatus,
    WorkingType,
    order_state,
)
from core.models import OrderState, OrderType, Side, TimeInForce


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """ORDER_TRADE_UPDATE: an order's new state and, for TRADE, the fill that caused it.

    `commission`/`commission_asset` are None when the event carries none; `activation_price`
    and `callback_rate` only come with trailing stops.
    """

    event_time: int
    transaction_time: int
    symbol: str
    client_order_id: str
    side: Side
    type: OrderType
    original_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal
    avg_price: Decimal
    stop_price: Decimal
    execution_type: ExecutionType
    status: OrderStatus
    order_id: int
    last_qty: Decimal
    cum_qty: Decimal
    last_price: Decimal
    commission: Decimal | None
    commission_asset: str | None
    trade_time: int
    trade_id: int
    maker: bool
    reduce_only: bool
    working_type: WorkingType
    position_side: str
    close_position: bool
    activation_price: Decimal | None
    callback_rate: Decimal | None
    realized_pnl: Decimal

    @property
    def state(self) -> OrderState:
        return order_state(self.status)


def parse_order_update(event: Json) -> OrderUpdate:
    w, o = "ORDER_TRADE_UPDATE", raw(event, "o", "ORDER_TRADE_UPDATE")
    return OrderUpdate(
        event_time=integer(event, "E", w), transaction_time=integer(event, "T", w),
        symbol=text(o, "s", w), client_order_id=text(o, "c", w), side=named(Side, o, "S", w),
        type=named(OrderType, o, "o", w), original_type=named(OrderType, o, "ot", w),
        time_in_force=choice(TimeInForce, o, "f", w), quantity=dec(o, "q", w),
        price=dec(o, "p", w), avg_price=dec(o, "ap", w), stop_price=dec(o, "sp", w),
        execution_type=choice(ExecutionType, o, "x", w), status=choice(OrderStatus, o, "X", w),
        order_id=integer(o, "i", w), last_qty=dec(o, "l", w), cum_qty=dec(o, "z", w),
        last_price=dec(o, "L", w), commission=opt_dec(o, "n", w),
        commission_asset=None if o.get("N") in (None, "") else text(o, "N", w),
        trade_time=integer(o, "T", w),
        trade_id=integer(o, "t", w), maker=flag(o, "m", w), reduce_only=flag(o, "R", w),
        working_type=choice(WorkingType, o, "wt", w), position_side=text(o, "ps", w),
        close_position=flag(o, "cp", w), activation_price=opt_dec(o, "AP", w),
        callback_rate=opt_dec(o, "cr", w), realized_pnl=dec(o, "rp", w),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class BalanceChange:
    asset: str
    wallet_balance: Decimal
    cross_wallet_balance: Decimal
    balance_change: Decimal


@dataclass(frozen=True, slots=True)
class PositionChange:
    symbol: str
    amount: Decimal
    entry_price: Decimal
    accumulated_realized: Decimal
    unrealized_pnl: Decimal
    margin_type: str
    isolated_wallet: Decimal
    position_side: str


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """ACCOUNT_UPDATE: the balances and positions that changed, and why (`reason`, e.g. ORDER,
    FUNDING_FEE)."""

    event_time: int
    transaction_time: int
    reason: str
    balances: tuple[BalanceChange, ...]
    positions: tuple[PositionChange, ...]


def parse_account_update(event: Json) -> AccountUpdate:
    w, a = "ACCOUNT_UPDATE", raw(event, "a", "ACCOUNT_UPDATE")

    def balance(b: Json) -> BalanceChange:
        return BalanceChange(text(b, "a", w), dec(b, "wb", w), dec(b, "cw", w), dec(b, "bc", w))

    def position(p: Json) -> PositionChange:
        return PositionChange(
            text(p, "s", w), dec(p, "pa", w), dec(p, "ep", w), dec(p, "cr", w), dec(p, "up", w),
            text(p, "mt", w), dec(p, "iw", w), text(p, "ps", w),
        )  # fmt: skip

    return AccountUpdate(
        integer(event, "E", w), integer(event, "T", w), text(a, "m", w),
        tuple(rows(raw(a, "B", w), balance, w)), tuple(rows(raw(a, "P", w), position, w)),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AlgoUpdate:
    """ALGO_UPDATE: a conditional order's new status; once triggered, `actual_order_id` names
    the order it spawned, with that order's average price and filled quantity."""

    event_time: int
    transaction_time: int
    client_algo_id: str
    algo_id: int
    algo_type: str
    order_type: OrderType
    symbol: str
    side: Side
    position_side: str
    time_in_force: TimeInForce
    quantity: Decimal
    status: AlgoStatus
    actual_order_id: int | None
    avg_price: Decimal | None
    executed_qty: Decimal | None
    trigger_price: Decimal | None
    price: Decimal | None
    working_type: WorkingType
    close_position: bool
    reduce_only: bool


def parse_algo_update(event: Json) -> AlgoUpdate:
    w, o = "ALGO_UPDATE", raw(event, "o", "ALGO_UPDATE")
    return AlgoUpdate(
        event_time=integer(event, "E", w), transaction_time=integer(event, "T", w),
        client_algo_id=text(o, "caid", w), algo_id=integer(o, "aid", w),
        algo_type=text(o, "at", w), order_type=named(OrderType, o, "o", w),
        symbol=text(o, "s", w), side=named(Side, o, "S", w), position_side=text(o, "ps", w),
        time_in_force=choice(TimeInForce, o, "f", w), quantity=dec(o, "q", w),
        status=choice(AlgoStatus, o, "X", w), actual_order_id=opt_int(o, "ai", w),
        avg_price=opt_dec(o, "ap", w), executed_qty=opt_dec(o, "aq", w),
        trigger_price=opt_dec(o, "tp", w), price=opt_dec(o, "p", w),
        working_type=choice(WorkingType, o, "wt", w), close_position=flag(o, "cp", w),
        reduce_only=flag(o, "R", w),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ListenKeyExpired:
    """listenKeyExpired: the stream's key lapsed (the key itself is a secret: not kept)."""

    event_time: int


UserEvent = OrderUpdate | AccountUpdate | AlgoUpdate | ListenKeyExpired
_EVENT_PARSERS: dict[str, Callable[[Json], UserEvent]] = {
    "ORDER_TRADE_UPDATE": parse_order_update,
    "ACCOUNT_UPDATE": parse_account_update,
    "ALGO_UPDATE": parse_algo_update,
    "listenKeyExpired": lambda event: ListenKeyExpired(integer(event, "E", "listenKeyExpired")),
}


def parse_user_event(event: Json) -> UserEvent | None:
    """The domain event of a user-stream message; None for event types Kryptelion does not use
    (MARGIN_CALL, TRADE_LITE, ACCOUNT_CONFIG_UPDATE, …). Raises MalformedPayloadError."""
    parser = _EVENT_PARSERS.get(text(event, "e", "user stream event"))
    return None if parser is None else parser(event)
