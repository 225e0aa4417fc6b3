"""The demo exchange's trading state: orders, conditional (algo) orders, positions and fills.

Prices are integers in the symbol's price units and quantities in its step units, as in the
market model, so a fill at a price is exact; money (balances, fees, PnL) is float USDT, the
unit `core.costs` computes in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BUY, SELL = "BUY", "SELL"
OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
REGULAR_TYPES = frozenset({"LIMIT", "MARKET"})
ALGO_TYPES = frozenset(
    {"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}
)
# Algo statuses after which nothing more happens to the conditional order.
STOPS = frozenset({"STOP", "STOP_MARKET"})
TAKES = frozenset({"TAKE_PROFIT", "TAKE_PROFIT_MARKET"})
ALGO_DONE = frozenset({"FINISHED", "CANCELED", "EXPIRED", "REJECTED"})


def side_sign(side: str) -> int:
    """+1 for a buy, -1 for a sell."""
    return 1 if side == BUY else -1


@dataclass(slots=True)
class Order:
    """A regular order in the matching engine: LIMIT or MARKET (a liquidation is a MARKET
    executed as CALCULATED, its client id `autoclose-…`)."""

    order_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    quantity: int  # steps
    price: int  # price units; 0 for MARKET
    time_in_force: str
    reduce_only: bool
    time_ms: int
    sequence: int  # queue priority: lower fills first at the same instant; a modify renews it
    orig_type: str = ""
    close_position: bool = False
    stop_price: int = 0  # the trigger of the algo order that spawned it
    working_type: str = "CONTRACT_PRICE"
    good_till: int = 0
    activate_price: int = 0
    callback_rate: str = ""
    algo_id: int = 0  # the conditional order that spawned it
    status: str = "NEW"
    executed: int = 0
    cum_quote: int = 0  # sum of price units x steps filled: exact
    update_ms: int = 0

    def __post_init__(self) -> None:
        self.orig_type = self.orig_type or self.type
        self.update_ms = self.update_ms or self.time_ms

    @property
    def sign(self) -> int:
        return side_sign(self.side)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> int:
        return self.quantity - self.executed


@dataclass(slots=True)
class AlgoOrder:
    """A conditional order held until its trigger, then sent on as a regular order."""

    algo_id: int
    client_algo_id: str
    symbol: str
    side: str
    order_type: str
    quantity: int  # steps; 0 with close_position
    price: int  # the limit of STOP / TAKE_PROFIT; 0 for the market types
    trigger_price: int  # 0 for TRAILING_STOP_MARKET
    time_in_force: str
    working_type: str
    reduce_only: bool
    close_position: bool
    create_ms: int
    activate_price: int = 0
    callback_rate: str = ""  # percent, as sent (0.1 … 10)
    good_till: int = 0
    status: str = "NEW"
    update_ms: int = 0
    trigger_ms: int = 0
    order_id: int = 0  # the regular order it became
    activated: bool = False  # trailing: the activation price was reached
    extreme: int = 0  # trailing: best price since activation (highest for a sell)

    def __post_init__(self) -> None:
        self.update_ms = self.update_ms or self.create_ms

    @property
    def sign(self) -> int:
        return side_sign(self.side)

    @property
    def is_open(self) -> bool:
        return self.status == "NEW"

    @property
    def callback(self) -> float:
        """The trailing callback as a fraction (1 % → 0.01)."""
        return float(self.callback_rate) / 100 if self.callback_rate else 0.0


@dataclass(slots=True)
class Position:
    """A one-way position: signed amount in steps, average entry price in USDT."""

    symbol: str
    amount: int = 0
    entry: float = 0.0
    open_fees: float = 0.0  # commissions of the fills still open, for the break-even price
    realized: float = 0.0  # accumulated realised PnL (ACCOUNT_UPDATE's `cr`)
    update_ms: int = 0

    @property
    def side(self) -> int:
        return (self.amount > 0) - (self.amount < 0)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution, as GET /fapi/v1/userTrades lists it."""

    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: int
    quantity: int
    commission: float
    realized_pnl: float
    maker: bool
    time_ms: int


@dataclass(slots=True)
class Book:
    """One account's trading state."""

    orders: dict[int, Order] = field(default_factory=dict)
    algo_orders: dict[int, AlgoOrder] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    countdowns: dict[str, tuple[float, int]] = field(default_factory=dict)  # deadline, ms

    def position(self, symbol: str) -> Position:
        return self.positions.setdefault(symbol, Position(symbol))

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open and symbol in (None, o.symbol)]

    def open_algo_orders(self, symbol: str | None = None) -> list[AlgoOrder]:
        return [a for a in self.algo_orders.values() if a.is_open and symbol in (None, a.symbol)]


def algo_triggers(algo: AlgoOrder, prices: np.ndarray) -> np.ndarray:
    """Where the conditional order triggers along `prices` (trailing: from its carried state).

    A buy stop triggers at or above its price and a sell stop at or below; take-profits the
    other way round. A trailing sell triggers when the price falls `callback` below the best
    price since activation (a buy: rises above the lowest).
    """
    if algo.order_type in STOPS:
        return algo.sign * (prices - algo.trigger_price) >= 0
    if algo.order_type in TAKES:
        return algo.sign * (algo.trigger_price - prices) >= 0
    triggered = np.zeros(len(prices), dtype=bool)
    start, extreme = 0, algo.extreme
    if not algo.activated:
        reached = np.flatnonzero(algo.sign * (prices - algo.activate_price) <= 0)
        if not len(reached):
            return triggered
        start, extreme = int(reached[0]), int(prices[reached[0]])
    tail = prices[start:]
    if algo.sign < 0:
        best = np.maximum.accumulate(np.maximum(tail, extreme))
        triggered[start:] = tail <= best * (1 - algo.callback)
    else:
        best = np.minimum.accumulate(np.minimum(tail, extreme))
        triggered[start:] = tail >= best * (1 + algo.callback)
    return triggered
