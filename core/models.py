"""Typed domain objects shared by every package: candles, orders, events, signals, trades."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Side(StrEnum):
    """Order side; the values are the public JSON words (`lado`)."""

    BUY = "compra"
    SELL = "venta"


class OrderType(StrEnum):
    LIMIT = "limite"
    MARKET = "mercado"


class OrderState(StrEnum):
    """Order lifecycle; the values are the public JSON words (`estado`)."""

    PENDING = "pendiente"
    OPEN = "abierta"
    PARTIAL = "parcial"
    FILLED = "ejecutada"
    CANCELED = "cancelada"
    REJECTED = "rechazada"
    EXPIRED = "expirada"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATES


_FINAL_STATES = frozenset(
    {OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED}
)


class CrossKind(StrEnum):
    GOLDEN = "alcista"
    DEATH = "bajista"


@dataclass(frozen=True, slots=True)
class Candle:
    """One kline; times in UTC epoch ms as Binance sends them."""

    symbol: str
    interval: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float = 0.0
    trades: int = 0
    taker_buy_base: float = 0.0
    taker_buy_quote: float = 0.0
    closed: bool = True


@dataclass(frozen=True, slots=True)
class Order:
    """An order as Kryptelion tracks it; `id` is None until stored."""

    symbol: str
    side: Side
    quantity: float
    price: float | None = None
    type: OrderType = OrderType.LIMIT
    state: OrderState = OrderState.PENDING
    filled_quantity: float = 0.0
    id: int | None = None
    client_order_id: str | None = None
    exchange_order_id: str | None = None
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One state transition of an order: who made it, when and why."""

    order_id: int | None
    from_state: OrderState | None
    to_state: OrderState
    at: int
    actor: str
    reason: str = ""
    filled_quantity: float = 0.0
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Crossover:
    """A moving-average crossover found by a strategy, stored for `/cruces`."""

    symbol: str
    interval: str
    open_time: int
    kind: CrossKind
    price: float
    fast: float
    slow: float
    strategy: str = "sma_cruce"
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """A strategy's target position (-1 short … 0 flat … +1 long) after a closed candle."""

    symbol: str
    interval: str
    open_time: int
    strategy: str
    position: float
    price: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Trade:
    """A completed (or force-closed) round trip of a backtest or a bot."""

    side: Side
    entry_time: int
    entry_price: float
    exit_time: int
    exit_price: float
    quantity: float
    pnl: float
    fees: float = 0.0
    funding: float = 0.0
    exit_reason: str = ""
    return_pct: float = 0.0


@dataclass(frozen=True, slots=True)
class BacktestRun:
    """A stored backtest: what was asked, what came out, and its trades."""

    symbol: str
    interval: str
    strategy: str
    params: dict[str, object]
    start_time: int
    end_time: int
    capital: float
    metrics: dict[str, object]
    trades: tuple[Trade, ...] = field(default_factory=tuple)
    equity: tuple[tuple[int, float], ...] = field(default_factory=tuple)
    created_at: int = 0
    id: int | None = None
