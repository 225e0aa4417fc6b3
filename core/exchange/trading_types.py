"""Trading domain types and their strict parsers of Binance's order and account JSON.

Prices and quantities are Decimal, exactly as the exchange wrote them. A payload that lacks a
field, or holds a value of the wrong kind, raises MalformedPayloadError naming it: a parser never
fills a gap with zero. Sides and order types reuse core.models' enums by member name, which is
Binance's wire word (`Side["BUY"]`, `OrderType["STOP_MARKET"]`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

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
from core.models import OrderState, OrderType, Side, TimeInForce


class OrderStatus(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"
    REJECTED = "REJECTED"


class AlgoStatus(StrEnum):
    NEW = "NEW"
    TRIGGERING = "TRIGGERING"
    TRIGGERED = "TRIGGERED"
    FINISHED = "FINISHED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


class ExecutionType(StrEnum):
    NEW = "NEW"
    TRADE = "TRADE"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    CALCULATED = "CALCULATED"  # a liquidation
    AMENDMENT = "AMENDMENT"


class WorkingType(StrEnum):
    MARK_PRICE = "MARK_PRICE"
    CONTRACT_PRICE = "CONTRACT_PRICE"


class MarginType(StrEnum):
    ISOLATED = "ISOLATED"
    CROSSED = "CROSSED"


_ORDER_STATES = {
    OrderStatus.NEW: OrderState.OPEN,
    OrderStatus.PARTIALLY_FILLED: OrderState.PARTIAL,
    OrderStatus.FILLED: OrderState.FILLED,
    OrderStatus.CANCELED: OrderState.CANCELED,
    OrderStatus.EXPIRED: OrderState.EXPIRED,
    OrderStatus.EXPIRED_IN_MATCH: OrderState.EXPIRED,
    OrderStatus.REJECTED: OrderState.REJECTED,
}


def order_state(status: OrderStatus) -> OrderState:
    """Kryptelion's state of an order the exchange reports in `status`."""
    return _ORDER_STATES[status]


# ---- what the REST API answers --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExchangeOrder:
    """An order as `/fapi/v1/order` (and openOrders) reports it; times in epoch ms."""

    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    status: OrderStatus
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    avg_price: Decimal
    reduce_only: bool
    close_position: bool
    time_in_force: TimeInForce
    update_time: int

    @property
    def state(self) -> OrderState:
        return order_state(self.status)


def parse_order(data: Json) -> ExchangeOrder:
    w = "order"
    return ExchangeOrder(
        order_id=integer(data, "orderId", w), client_order_id=text(data, "clientOrderId", w),
        symbol=text(data, "symbol", w), side=named(Side, data, "side", w),
        type=named(OrderType, data, "type", w), status=choice(OrderStatus, data, "status", w),
        price=dec(data, "price", w), orig_qty=dec(data, "origQty", w),
        executed_qty=dec(data, "executedQty", w), avg_price=dec(data, "avgPrice", w),
        reduce_only=flag(data, "reduceOnly", w), close_position=flag(data, "closePosition", w),
        time_in_force=choice(TimeInForce, data, "timeInForce", w),
        update_time=integer(data, "updateTime", w),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AlgoOrder:
    """A conditional order as `/fapi/v1/algoOrder` reports it; `actual_order_id` is the order
    it spawned once triggered (None before)."""

    algo_id: int
    client_algo_id: str
    symbol: str
    side: Side
    order_type: OrderType
    algo_status: AlgoStatus
    trigger_price: Decimal | None
    price: Decimal | None
    quantity: Decimal
    working_type: WorkingType
    close_position: bool
    reduce_only: bool
    activate_price: Decimal | None
    callback_rate: Decimal | None
    actual_order_id: int | None
    update_time: int


def parse_algo_order(data: Json) -> AlgoOrder:
    w = "algo order"
    return AlgoOrder(
        algo_id=integer(data, "algoId", w), client_algo_id=text(data, "clientAlgoId", w),
        symbol=text(data, "symbol", w), side=named(Side, data, "side", w),
        order_type=named(OrderType, data, "orderType", w),
        algo_status=choice(AlgoStatus, data, "algoStatus", w),
        trigger_price=opt_dec(data, "triggerPrice", w), price=opt_dec(data, "price", w),
        quantity=dec(data, "quantity", w), working_type=choice(WorkingType, data, "workingType", w),
        close_position=flag(data, "closePosition", w), reduce_only=flag(data, "reduceOnly", w),
        activate_price=opt_dec(data, "activatePrice", w),
        callback_rate=opt_dec(data, "callbackRate", w),
        actual_order_id=opt_int(data, "actualOrderId", w),
        update_time=integer(data, "updateTime", w),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Position:
    """One open position (`/fapi/v3/positionRisk`); `amount` < 0 is short."""

    symbol: str
    position_side: str
    amount: Decimal
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    liquidation_price: Decimal
    update_time: int


def parse_position(data: Json) -> Position:
    w = "position"
    return Position(
        symbol=text(data, "symbol", w), position_side=text(data, "positionSide", w),
        amount=dec(data, "positionAmt", w), entry_price=dec(data, "entryPrice", w),
        mark_price=dec(data, "markPrice", w), unrealized_pnl=dec(data, "unRealizedProfit", w),
        liquidation_price=dec(data, "liquidationPrice", w),
        update_time=integer(data, "updateTime", w),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Balance:
    """One asset of the futures wallet (`/fapi/v3/balance`)."""

    asset: str
    wallet_balance: Decimal
    cross_wallet_balance: Decimal
    cross_unrealized_pnl: Decimal
    available_balance: Decimal
    max_withdraw_amount: Decimal
    update_time: int


def parse_balance(data: Json) -> Balance:
    w = "balance"
    return Balance(
        asset=text(data, "asset", w), wallet_balance=dec(data, "balance", w),
        cross_wallet_balance=dec(data, "crossWalletBalance", w),
        cross_unrealized_pnl=dec(data, "crossUnPnl", w),
        available_balance=dec(data, "availableBalance", w),
        max_withdraw_amount=dec(data, "maxWithdrawAmount", w),
        update_time=integer(data, "updateTime", w),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """The account's totals in USDT (`/fapi/v2/account`)."""

    wallet_balance: Decimal
    unrealized_pnl: Decimal
    margin_balance: Decimal
    initial_margin: Decimal
    maint_margin: Decimal
    available_balance: Decimal


def parse_account(data: Json) -> AccountSummary:
    w = "account"
    return AccountSummary(
        wallet_balance=dec(data, "totalWalletBalance", w),
        unrealized_pnl=dec(data, "totalUnrealizedProfit", w),
        margin_balance=dec(data, "totalMarginBalance", w),
        initial_margin=dec(data, "totalInitialMargin", w),
        maint_margin=dec(data, "totalMaintMargin", w),
        available_balance=dec(data, "availableBalance", w),
    )


@dataclass(frozen=True, slots=True)
class Fill:
    """One of the account's trades (`/fapi/v1/userTrades`)."""

    id: int
    order_id: int
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    realized_pnl: Decimal
    maker: bool
    time: int


def parse_fill(data: Json) -> Fill:
    w = "user trade"
    return Fill(
        id=integer(data, "id", w), order_id=integer(data, "orderId", w),
        symbol=text(data, "symbol", w), side=named(Side, data, "side", w),
        price=dec(data, "price", w), qty=dec(data, "qty", w),
        commission=dec(data, "commission", w), commission_asset=text(data, "commissionAsset", w),
        realized_pnl=dec(data, "realizedPnl", w), maker=flag(data, "maker", w),
        time=integer(data, "time", w),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class LeverageBracket:
    """One notional tier of a symbol: its leverage cap and maintenance margin rate."""

    bracket: int
    initial_leverage: int
    notional_floor: Decimal
    notional_cap: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal


def parse_brackets(data: Json) -> tuple[str, tuple[LeverageBracket, ...]]:
    """(symbol, its tiers) from one `leverageBracket` entry."""
    w = "leverage bracket"

    def tier(row: Json) -> LeverageBracket:
        return LeverageBracket(
            integer(row, "bracket", w), integer(row, "initialLeverage", w),
            dec(row, "notionalFloor", w), dec(row, "notionalCap", w),
            dec(row, "maintMarginRatio", w), dec(row, "cum", w),
        )  # fmt: skip

    return text(data, "symbol", w), tuple(rows(raw(data, "brackets", w), tier, w))


@dataclass(frozen=True, slots=True)
class PremiumIndex:
    """Mark price and funding of a symbol (`/fapi/v1/premiumIndex`)."""

    symbol: str
    mark_price: Decimal
    index_price: Decimal
    last_funding_rate: Decimal
    next_funding_time: int
    time: int


def parse_premium(data: Json) -> PremiumIndex:
    w = "premium index"
    return PremiumIndex(
        text(data, "symbol", w), dec(data, "markPrice", w), dec(data, "indexPrice", w),
        dec(data, "lastFundingRate", w), integer(data, "nextFundingTime", w),
        integer(data, "time", w),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """What the exchange holds at `time` (local epoch ms): the truth a stream consumer adopts
    after every (re)connect, before any further live event."""

    open_orders: tuple[ExchangeOrder, ...]
    open_algo_orders: tuple[AlgoOrder, ...]
    positions: tuple[Position, ...]
    balances: tuple[Balance, ...]
    time: int
