"""The risk manager's vocabulary (core.risk): its settings, what it is shown, what it answers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from core.costs import MarginTier
from core.errors import RiskSettingsError
from core.exchange.limits import ORDERS_1M, ORDERS_10S
from core.intervals import floor_open
from core.models import OrderType, Side
from core.rules import SymbolRules

# Our own order budget, a fifth under Binance's, so other clients of the account keep room.
DEFAULT_ORDERS_10S, DEFAULT_ORDERS_1M = ORDERS_10S * 4 // 5, ORDERS_1M * 4 // 5
MAX_LEVERAGE = 125  # the most any Binance USDT-M symbol allows
# A closed kline reaches us a little after its close: the slack before data counts as stale.
DEFAULT_STALE_GRACE_MS = 5_000


class Purpose(StrEnum):
    """Why an order is sent; the values are the public JSON words (`proposito`)."""

    ENTRY = "entrada"
    EXIT = "salida"
    STOP = "stop"
    TAKE_PROFIT = "toma_ganancias"

    @property
    def is_exit(self) -> bool:
        return self is not Purpose.ENTRY


class TradingMode(StrEnum):
    """What the account's limits allow now (nautilus' ACTIVE / REDUCING / HALTED)."""

    OPERATE = "operar"
    REDUCE_ONLY = "solo_reducir"
    PAUSE = "pausar"


class LeverageTier(MarginTier, Protocol):
    """A leverage bracket that also states the most leverage allowed in it."""

    @property
    def initial_leverage(self) -> int: ...


# The public (JSON, CLI) name of each setting, so an error can point at it.
SETTING_FIELDS = {
    "max_order_notional": "max_nocional_orden",
    "max_leverage": "max_apalancamiento",
    "max_open_positions": "max_posiciones",
    "max_exposure": "max_exposicion",
    "max_daily_loss": "max_perdida_diaria",
    "max_drawdown": "max_drawdown",
    "cooldown_ms": "enfriamiento_ms",
    "orders_10s": "ordenes_10s",
    "orders_1m": "ordenes_1m",
    "stale_grace_ms": "gracia_datos_ms",
}
# (lowest, highest, lowest included) of each setting; None settings are limits switched off.
_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "max_order_notional": (0, math.inf, False),
    "max_leverage": (1, MAX_LEVERAGE, True),
    "max_open_positions": (1, math.inf, True),
    "max_exposure": (0, math.inf, False),
    "max_daily_loss": (0, 1, False),
    "max_drawdown": (0, 1, False),
    "cooldown_ms": (0, math.inf, True),
    "orders_10s": (1, ORDERS_10S, True),
    "orders_1m": (1, ORDERS_1M, True),
    "stale_grace_ms": (0, math.inf, True),
}


_WHOLE = frozenset(
    {"max_open_positions", "cooldown_ms", "orders_10s", "orders_1m", "stale_grace_ms"}
)


@dataclass(frozen=True, slots=True)
class RiskSettings:
    """A bot's risk limits; None switches a limit off.

    `max_order_notional` and `max_exposure` in USDT (the exposure is the sum of the open
    positions' notionals); `max_daily_loss` a fraction of the equity at 00:00 UTC,
    `max_drawdown` a fraction of the equity peak; `orders_10s` / `orders_1m` the throttle, at
    most Binance's per-account limits.
    """

    max_order_notional: float | None = None
    max_leverage: float | None = None
    max_open_positions: int | None = None
    max_exposure: float | None = None
    max_daily_loss: float | None = None
    max_drawdown: float | None = None
    cooldown_ms: int = 0
    orders_10s: int = DEFAULT_ORDERS_10S
    orders_1m: int = DEFAULT_ORDERS_1M
    stale_grace_ms: int = DEFAULT_STALE_GRACE_MS

    def __post_init__(self) -> None:
        for name, (low, high, closed) in _BOUNDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RiskSettingsError(
                    SETTING_FIELDS[name], f"{SETTING_FIELDS[name]}: {value!r} is not a number"
                )
            inside = (low <= value if closed else low < value) and value <= high
            whole = name not in _WHOLE or float(value).is_integer()
            if not (math.isfinite(value) and inside and whole):
                wanted = f"{'[' if closed else '('}{low:g}, {high:g}]"
                wanted += ", a whole number" if name in _WHOLE else ", finite"
                public = SETTING_FIELDS[name]
                raise RiskSettingsError(public, f"{public}: {value!r} is not in {wanted}")


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the bot means to send. `price` is the limit price, `trigger_price` the stop's;
    `leverage` the symbol's leverage the position is (to be) held at."""

    symbol: str
    side: Side
    quantity: float
    type: OrderType = OrderType.MARKET
    purpose: Purpose = Purpose.ENTRY
    price: float | None = None
    trigger_price: float | None = None
    reduce_only: bool = False
    close_position: bool = False
    leverage: float = 1.0

    def __post_init__(self) -> None:
        # Accept the plain words too ("compra", "mercado", "salida"), as core.models.Order does.
        for name, kind in (("side", Side), ("type", OrderType), ("purpose", Purpose)):
            object.__setattr__(self, name, kind(getattr(self, name)))

    @property
    def reduces(self) -> bool:
        return self.reduce_only or self.close_position


@dataclass(frozen=True, slots=True)
class PositionView:
    """An open position (one-way mode): `side` BUY is long; `mark_price` when known."""

    symbol: str
    side: Side
    quantity: float
    entry_price: float
    leverage: float = 1.0
    mark_price: float | None = None

    @property
    def notional(self) -> float:
        return self.quantity * (self.mark_price or self.entry_price)


@dataclass(frozen=True, slots=True)
class AccountView:
    """The account as the risk manager needs it, for the symbol being traded.

    `equity` is wallet plus unrealised PnL (fees and funding already paid from the wallet);
    `day_start_equity` and `peak_equity` come from `EquityMarks`; `open_orders` counts the
    symbol's open orders; `brackets` the symbol's leverage tiers, lowest first.
    """

    equity: float
    day_start_equity: float
    peak_equity: float
    free_margin: float
    rules: SymbolRules
    positions: tuple[PositionView, ...] = ()
    open_orders: int = 0
    brackets: Sequence[LeverageTier] = ()
    last_stop_out_ms: int | None = None

    def position(self, symbol: str) -> PositionView | None:
        return next((p for p in self.positions if p.symbol == symbol and p.quantity > 0), None)


@dataclass(frozen=True, slots=True)
class MarketView:
    """The market feed of the bot's stream: the last closed candle and whether it is live."""

    interval: str
    last_closed_open_time: int | None
    connected: bool
    last_price: float | None = None


@dataclass(frozen=True, slots=True)
class EquityMarks:
    """The equity at the start of the UTC day and its peak, rolled forward on each update."""

    day_start_ms: int
    day_start_equity: float
    peak_equity: float

    @classmethod
    def start(cls, now_ms: int, equity: float) -> EquityMarks:
        return cls(floor_open(now_ms, "1d"), equity, equity)

    def update(self, now_ms: int, equity: float) -> EquityMarks:
        """The marks after seeing `equity` at `now_ms`: a new day (00:00 UTC) restarts the
        day's equity from it; the peak only rises."""
        day = floor_open(now_ms, "1d")
        start = equity if day > self.day_start_ms else self.day_start_equity
        return EquityMarks(max(day, self.day_start_ms), start, max(self.peak_equity, equity))


Values = Mapping[str, float | int | str | None]


@dataclass(frozen=True, slots=True)
class RiskReason:
    """Why a limit acted: a machine `code`, a Spanish `message` and the numbers involved."""

    code: str
    message: str
    values: Values = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {"codigo": self.code, "mensaje": self.message, "valores": dict(self.values)}


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The risk manager's answer to one order intent: accepted, or refused with a reason."""

    accepted: bool
    reason: RiskReason | None = None

    @property
    def code(self) -> str | None:
        return None if self.reason is None else self.reason.code

    def as_json(self) -> dict[str, object]:
        reason = self.reason.as_json() if self.reason else {"codigo": None}
        return {"aceptada": self.accepted, **reason}


ACCEPTED = RiskDecision(True)


def refuse(code: str, message: str, **values: float | int | str | None) -> RiskDecision:
    """A refusal with `code`, a Spanish `message` and the numbers behind it."""
    return RiskDecision(False, RiskReason(code, message, values))


@dataclass(frozen=True, slots=True)
class AccountVerdict:
    """What the account's limits allow, with every reason (the pausing ones first)."""

    mode: TradingMode
    reasons: tuple[RiskReason, ...] = ()

    @property
    def reason(self) -> RiskReason | None:
        return self.reasons[0] if self.reasons else None

    @property
    def allows_entries(self) -> bool:
        return self.mode is TradingMode.OPERATE

    def as_json(self) -> dict[str, object]:
        return {"modo": self.mode.value, "motivos": [r.as_json() for r in self.reasons]}
