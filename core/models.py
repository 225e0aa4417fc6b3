"""Typed domain objects shared by every package: candles, orders, events, signals, trades."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum

from core.errors import DataError, InvalidOrderError


class Side(StrEnum):
    """Order side; the values are the public JSON words (`lado`)."""

    BUY = "compra"
    SELL = "venta"


class OrderType(StrEnum):
    """Binance's order types; the values are the public JSON words (`tipo`).

    STOP and TAKE_PROFIT are Binance's stop-limit and take-profit-limit orders (a limit order at
    `precio` once `precio_disparo` trades), the `_MARKET` ones become market orders; a trailing
    stop ("stop móvil") follows the price by `tasa_retroceso` percent.
    """

    LIMIT = "limite"
    MARKET = "mercado"
    STOP_MARKET = "stop_mercado"
    TAKE_PROFIT_MARKET = "toma_ganancias_mercado"
    STOP = "stop_limite"
    TAKE_PROFIT = "toma_ganancias_limite"
    TRAILING_STOP_MARKET = "stop_movil_mercado"

    @property
    def needs_price(self) -> bool:
        """A limit price (`precio`) is part of the order."""
        return self in _PRICED_TYPES

    @property
    def is_conditional(self) -> bool:
        """Waits for a trigger, so it goes to Binance's Algo Order API."""
        return self in _CONDITIONAL_TYPES


_PRICED_TYPES = frozenset({OrderType.LIMIT, OrderType.STOP, OrderType.TAKE_PROFIT})
_TRIGGERED_TYPES = frozenset(
    {OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET, OrderType.STOP, OrderType.TAKE_PROFIT}
)
_CONDITIONAL_TYPES = _TRIGGERED_TYPES | {OrderType.TRAILING_STOP_MARKET}
CLOSE_POSITION_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET})
# Binance's bounds of `callbackRate`, in percent.
CALLBACK_RATE_MIN, CALLBACK_RATE_MAX = 0.1, 10.0
# Binance's `newClientOrderId` / `clientAlgoId` pattern.
CLIENT_ORDER_ID_PATTERN = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


class TimeInForce(StrEnum):
    """Binance's `timeInForce`; GTX is post-only, GTD needs `good_till_date`."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"
    GTD = "GTD"


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
    """An order as Kryptelion tracks it; `id` is None until stored.

    Every instance is a combination Binance accepts (see `check_order_fields`). A
    `close_position` order closes whatever position there is, so its `quantity` is 0.
    `callback_rate` is in percent; `good_till_date` in epoch ms.
    """

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
    reduce_only: bool = False
    close_position: bool = False
    trigger_price: float | None = None
    callback_rate: float | None = None
    activation_price: float | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    good_till_date: int | None = None
    algo_id: str | None = None
    # The bot that sent it (None for a manual order) and why: a core.risk_types.Purpose word.
    bot_id: int | None = None
    purpose: str | None = None

    def __post_init__(self) -> None:
        # Accept the plain words too ("GTC", "limite"), so `.value` always works downstream.
        for name, kind in (("type", OrderType), ("time_in_force", TimeInForce)):
            try:
                object.__setattr__(self, name, kind(getattr(self, name)))
            except ValueError:
                raise _refuse(name, f"{getattr(self, name)!r} is not one of {list(kind)}") from None
        check_order_fields(self)

    def public(self) -> dict[str, object]:
        """The order under its public (JSON) names, as `/ordenes` and the bridge show it."""
        return {
            "id": self.id or 0, "symbol": self.symbol, "lado": self.side, "tipo": self.type,
            "precio": self.price, "cantidad": self.quantity,
            "cantidad_ejecutada": self.filled_quantity, "estado": self.state,
            "creada": self.created_at, "actualizada": self.updated_at,
            "precio_disparo": self.trigger_price, "tasa_retroceso": self.callback_rate,
            "precio_activacion": self.activation_price, "solo_reducir": self.reduce_only,
            "cerrar_posicion": self.close_position, "tiempo_en_vigor": self.time_in_force,
            "vigencia_hasta": self.good_till_date, "id_cliente": self.client_order_id,
            "id_exchange": self.exchange_order_id, "id_algo": self.algo_id,
        }  # fmt: skip


# The public (JSON) name of each order field that validation can point at.
ORDER_FIELDS = {
    "type": "tipo",
    "quantity": "cantidad",
    "price": "precio",
    "trigger_price": "precio_disparo",
    "callback_rate": "tasa_retroceso",
    "activation_price": "precio_activacion",
    "reduce_only": "solo_reducir",
    "close_position": "cerrar_posicion",
    "time_in_force": "tiempo_en_vigor",
    "good_till_date": "vigencia_hasta",
    "client_order_id": "id_cliente",
}


def _refuse(name: str, message: str) -> InvalidOrderError:
    return InvalidOrderError(ORDER_FIELDS[name], f"{ORDER_FIELDS[name]}: {message}")


def _check_positive(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise _refuse(name, f"{value} is not a positive finite number")


def _check_present(order: Order, name: str, wanted: bool, why: str) -> None:
    """`name` must be set when `wanted`, and absent otherwise."""
    present = getattr(order, name) is not None
    if present != wanted:
        verb = "is required" if wanted else "is not allowed"
        raise _refuse(name, f"{verb} for tipo={order.type.value}{why}")


def check_order_fields(order: Order) -> None:
    """Raise InvalidOrderError (its `field` the public name) for a combination of type,
    prices and flags that Binance would refuse; return None for a valid order."""
    kind = order.type
    if order.close_position:
        if kind not in CLOSE_POSITION_TYPES:
            raise _refuse("close_position", "only on stop_mercado or toma_ganancias_mercado")
        if order.reduce_only:
            raise _refuse("reduce_only", "not allowed together with cerrar_posicion")
        if order.quantity != 0:
            raise _refuse("quantity", "must be 0 (omitted) with cerrar_posicion")
    elif not (math.isfinite(order.quantity) and order.quantity > 0):
        raise _refuse("quantity", f"{order.quantity} is not a positive finite quantity")
    for name in ("price", "trigger_price", "activation_price"):
        _check_positive(name, getattr(order, name))
    _check_present(order, "price", kind.needs_price, "")
    _check_present(order, "trigger_price", kind in _TRIGGERED_TYPES, "")
    trailing = kind is OrderType.TRAILING_STOP_MARKET
    _check_present(order, "callback_rate", trailing, "")
    if order.activation_price is not None and not trailing:
        raise _refuse("activation_price", f"is not allowed for tipo={kind.value}")
    rate = order.callback_rate
    if rate is not None and not CALLBACK_RATE_MIN <= rate <= CALLBACK_RATE_MAX:
        raise _refuse(
            "callback_rate", f"{rate} is outside [{CALLBACK_RATE_MIN}, {CALLBACK_RATE_MAX}] %"
        )
    gtd = order.time_in_force is TimeInForce.GTD
    _check_present(order, "good_till_date", gtd, f" and tiempo_en_vigor={order.time_in_force}")
    cid = order.client_order_id
    if cid is not None and not CLIENT_ORDER_ID_PATTERN.fullmatch(cid):
        raise _refuse(
            "client_order_id", f"{cid!r} does not match {CLIENT_ORDER_ID_PATTERN.pattern}"
        )


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


class BotStatus(StrEnum):
    """A bot's operating state (core.state's bot machine); the values are the public JSON words."""

    STOPPED = "detenido"
    STARTING = "iniciando"
    SYNCING = "sincronizando"
    TRADING = "operando"
    REDUCING = "reduciendo"
    PAUSED = "pausado"
    STOPPING = "deteniendo"
    ERROR = "error"


class BotTrigger(StrEnum):
    """What moves a bot from one state to another; the values are the public JSON words."""

    START = "iniciar"  # a person or `python run.py` resuming it
    STARTED = "iniciado"  # feeds and broker ready: reconcile before trading
    SYNCED = "sincronizado"  # database and exchange agree
    RESYNC = "resincronizar"  # user-stream reconnect, listen-key rotation, a mismatch
    REDUCE = "reducir"  # a risk limit allows only orders that shrink exposure
    CLEARED = "normalizar"  # the reduce-only reason passed
    PAUSE = "pausar"  # a breaker tripped or a person paused it
    RESUME = "reanudar"  # a person resumes a paused bot
    STOP = "parar"  # a person, Ctrl-C or the kill switch
    FINISHED = "finalizar"  # stopping is done
    FAIL = "fallar"  # a fatal error


@dataclass(frozen=True, slots=True)
class BotEvent:
    """One state transition of a bot, ready to store: from, to, what caused it, when, who."""

    bot_id: int | None
    from_state: BotStatus
    to_state: BotStatus
    trigger: BotTrigger
    at: int
    actor: str
    reason: str = ""
    id: int | None = None


class BotMode(StrEnum):
    """Where a bot's orders go (config's TRADING_MODES); the values are the public JSON words."""

    PAPER = "paper"  # simulated locally with the backtester's cost and fill model
    TESTNET = "testnet"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class Bot:
    """A stored bot: what it trades, how (mode, costs, risk limits) and where it stands; `id` is
    None until stored.

    The costs are `ejecutar_backtest`'s: fees as fractions of notional (`maker_fee` None means
    `taker_fee`), slippage in basis points, `size` the fraction of equity used as margin;
    `stop_loss` / `take_profit` a fraction ("0.02") or an ATR multiple ("3atr"), `funding_rate`
    a constant rate per 8 h. `risk` holds core.risk_types.RiskSettings' field names and values
    (the limits left out keep their defaults). `desired_running` is whether a person wants it
    running, so `python run.py` resumes it after a restart.
    """

    name: str
    strategy: str
    symbol: str
    interval: str
    params: dict[str, object] = field(default_factory=dict)
    mode: BotMode = BotMode.PAPER
    capital: float = 10_000.0
    taker_fee: float = 0.0004
    maker_fee: float | None = None
    slippage_bps: float = 0.0
    leverage: float = 1.0
    size: float = 1.0
    stop_loss: str | None = None
    take_profit: str | None = None
    funding_rate: float | None = None
    risk: dict[str, object] = field(default_factory=dict)
    trailing: float | None = None  # a trailing stop's callback fraction (core.fills)
    status: BotStatus = BotStatus.STOPPED
    status_reason: str = ""
    desired_running: bool = False
    created_at: int = 0
    updated_at: int = 0
    id: int | None = None

    def __post_init__(self) -> None:
        # Accept the plain words too ("paper", "detenido"), so `.value` always works downstream.
        object.__setattr__(self, "mode", BotMode(self.mode))
        object.__setattr__(self, "status", BotStatus(self.status))


@dataclass(frozen=True, slots=True)
class BotDecision:
    """What a bot's strategy asked for after one closed candle: its target position (-1 short …
    0 flat … +1 long) at the candle's close `price`, and why."""

    bot_id: int | None
    open_time: int
    position: float
    price: float
    reason: str = ""
    id: int | None = None


@dataclass(frozen=True, slots=True)
class BotTrade:
    """A bot's round trip, stored when it opens and completed when it closes; the fields are a
    backtest `Trade`'s, the exit ones None while it is open."""

    bot_id: int | None
    side: Side
    entry_time: int
    entry_price: float
    quantity: float
    exit_time: int | None = None
    exit_price: float | None = None
    pnl: float = 0.0
    fees: float = 0.0
    funding: float = 0.0
    exit_reason: str = ""
    return_pct: float = 0.0
    id: int | None = None

    @property
    def open(self) -> bool:
        """No exit yet."""
        return self.exit_time is None

    def as_trade(self) -> Trade:
        """The closed trade in a backtest's shape; raises DataError while it is open."""
        if self.exit_time is None or self.exit_price is None:
            raise DataError(f"bot trade {self.id} is still open")
        return Trade(
            side=self.side,
            entry_time=self.entry_time,
            entry_price=self.entry_price,
            exit_time=self.exit_time,
            exit_price=self.exit_price,
            quantity=self.quantity,
            pnl=self.pnl,
            fees=self.fees,
            funding=self.funding,
            exit_reason=self.exit_reason,
            return_pct=self.return_pct,
        )


# What a person may ask the running bots (the public JSON words): `matar` is the kill switch.
BOT_COMMANDS = ("parar", "pausar", "reanudar", "matar")


@dataclass(frozen=True, slots=True)
class BotCommand:
    """A person's command to the bots, stored until the process hosting them applies it.

    `bot_id` None means every bot (`matar`); `close` also flattens the position when stopping;
    `done_at` stays None until applied, then `result` says what happened.
    """

    bot_id: int | None
    command: str
    close: bool = False
    created_at: int = 0
    done_at: int | None = None
    result: str = ""
    id: int | None = None

    def __post_init__(self) -> None:
        if self.command not in BOT_COMMANDS:
            raise DataError(f"command {self.command!r} is not one of {', '.join(BOT_COMMANDS)}")

    @property
    def pending(self) -> bool:
        """Not applied yet."""
        return self.done_at is None
