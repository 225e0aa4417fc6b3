"""Pre-trade checks and account limits: pure decisions on an injected clock, no I/O.

Every order intent passes `check_order`, every candle and fill `check_account`. Exits (reduce-only
or close-position) are judged on their own correctness and the exchange filters only, never on
the account's limits, so a paused or reducing bot can still protect and close its positions.
The types live in core.risk_types (to keep both modules small) and are re-exported here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from core.costs import bracket_index
from core.errors import FilterError, InvalidOrderError
from core.exchange.limits import ORDERS_1M, ORDERS_10S
from core.intervals import interval_ms
from core.models import OrderType, Side
from core.risk_types import (
    ACCEPTED,
    DEFAULT_ORDERS_1M,
    DEFAULT_ORDERS_10S,
    MAX_LEVERAGE,
    SETTING_FIELDS,
    AccountVerdict,
    AccountView,
    EquityMarks,
    LeverageTier,
    MarketView,
    OrderIntent,
    PositionView,
    Purpose,
    RiskDecision,
    RiskReason,
    RiskSettings,
    TradingMode,
    refuse,
)
from core.rules import check_order as check_filters
from core.rules import check_price

__all__ = [
    "ACCEPTED",
    "SETTING_FIELDS",
    "AccountVerdict",
    "AccountView",
    "EquityMarks",
    "LeverageTier",
    "MarketView",
    "OrderIntent",
    "OrderThrottle",
    "PositionView",
    "Purpose",
    "RiskDecision",
    "RiskReason",
    "RiskSettings",
    "TradingMode",
    "check_account",
    "check_order",
]

TEN_SECONDS_MS, MINUTE_MS = 10_000, 60_000
# Relative slack for float comparisons of quantities and money (a fill of 0.1 + 0.2 ...).
_EPS = 1e-9
# Types that become a market order once triggered, for the exchange filters.
_MARKET_LIKE = frozenset(
    {OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET,
     OrderType.TRAILING_STOP_MARKET}
)  # fmt: skip


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.2f} %"


@dataclass(frozen=True, slots=True)
class AccountUsage:
    """How much of each account limit is used: the day's loss and the drawdown as fractions
    (negative for a gain or at the peak), the open positions and their notional in USDT."""

    daily_loss: float
    drawdown: float
    positions: int
    exposure: float

    def public(self) -> dict[str, float | int]:
        """The usage under its public names (the limits' own words, as `GET /bots/<id>`)."""
        return {
            "perdida_diaria": max(self.daily_loss, 0.0), "drawdown": max(self.drawdown, 0.0),
            "posiciones": self.positions, "exposicion": self.exposure,
        }  # fmt: skip


def account_usage(account: AccountView) -> AccountUsage:
    start, peak, equity = account.day_start_equity, account.peak_equity, account.equity
    return AccountUsage(
        (start - equity) / start if start > 0 else 0.0,
        (peak - equity) / peak if peak > 0 else 0.0,
        sum(1 for p in account.positions if p.quantity > 0),
        sum(p.notional for p in account.positions),
    )


def _loss_reasons(settings: RiskSettings, account: AccountView) -> list[RiskReason]:
    """The breakers that pause: the day's loss and the drawdown from the peak."""
    reasons = []
    start, peak, equity = account.day_start_equity, account.peak_equity, account.equity
    used = account_usage(account)
    if settings.max_daily_loss is not None and start > 0:
        loss = used.daily_loss
        if loss >= settings.max_daily_loss - _EPS:
            message = (
                f"Pérdida diaria de {start - equity:.2f} USDT ({_pct(loss)} del capital a las "
                f"00:00 UTC, {start:.2f}): alcanza el límite del {_pct(settings.max_daily_loss)}"
            )
            values = {
                "perdida": start - equity,
                "fraccion": loss,
                "limite": settings.max_daily_loss,
            }
            reasons.append(RiskReason("perdida_diaria", message, {**values, "capital_dia": start}))
    if settings.max_drawdown is not None and peak > 0:
        drawdown = used.drawdown
        if drawdown >= settings.max_drawdown - _EPS:
            message = (
                f"Drawdown de {_pct(drawdown)} desde el máximo de {peak:.2f} USDT: alcanza el "
                f"límite del {_pct(settings.max_drawdown)}"
            )
            values = {"drawdown": drawdown, "limite": settings.max_drawdown, "maximo": peak}
            reasons.append(RiskReason("drawdown_maximo", message, values))
    return reasons


def _exposure_reasons(settings: RiskSettings, account: AccountView) -> list[RiskReason]:
    """Positions or exposure above their limit (adopted positions, a rising mark price)."""
    reasons = []
    used = account_usage(account)
    count = used.positions
    if settings.max_open_positions is not None and count > settings.max_open_positions:
        message = f"{count} posiciones abiertas superan el máximo de {settings.max_open_positions}"
        values = {"posiciones": count, "limite": settings.max_open_positions}
        reasons.append(RiskReason("max_posiciones", message, values))
    exposure = used.exposure
    if settings.max_exposure is not None and exposure > settings.max_exposure * (1 + _EPS):
        message = (
            f"Exposición de {exposure:.2f} USDT supera el máximo de {settings.max_exposure:.2f}"
        )
        limits = {"exposicion": exposure, "limite": settings.max_exposure}
        reasons.append(RiskReason("max_exposicion", message, limits))
    return reasons


def _feed_reasons(settings: RiskSettings, market: MarketView, now_ms: int) -> list[RiskReason]:
    """The stale-data guard: a reconnecting stream, or a last closed candle over two intervals
    old (plus the grace a closed kline takes to arrive)."""
    if not market.connected:
        return [RiskReason("mercado_desconectado", "El stream de mercado se está reconectando")]
    limit = 2 * interval_ms(market.interval) + settings.stale_grace_ms
    last = market.last_closed_open_time
    if last is None or now_ms - last > limit:
        age = None if last is None else now_ms - last
        message = (
            "Sin velas cerradas todavía"
            if age is None
            else f"La última vela cerrada tiene {age / 1000:.0f} s (límite {limit / 1000:.0f} s)"
        )
        values = {"edad_ms": age, "limite_ms": limit, "intervalo": market.interval}
        return [RiskReason("datos_obsoletos", message, values)]
    return []


def _cooldown_reasons(
    settings: RiskSettings, account: AccountView, now_ms: int
) -> list[RiskReason]:
    stop_out = account.last_stop_out_ms
    if stop_out is None or now_ms >= stop_out + settings.cooldown_ms:
        return []
    until = stop_out + settings.cooldown_ms
    message = f"Enfriamiento tras un stop: sin entradas durante {(until - now_ms) / 1000:.0f} s más"
    values = {
        "restante_ms": until - now_ms,
        "hasta_ms": until,
        "enfriamiento_ms": settings.cooldown_ms,
    }
    return [RiskReason("enfriamiento", message, values)]


def check_account(
    settings: RiskSettings, account: AccountView, market: MarketView, now_ms: int
) -> AccountVerdict:
    """What the account's limits allow at `now_ms`, evaluated on every candle and fill.

    The day's loss and the drawdown pause (a person resumes); too many positions or too much
    exposure, stale data and a cooldown after a stop-out allow only orders that reduce.
    """
    pausing = _loss_reasons(settings, account)
    reducing = [
        *_exposure_reasons(settings, account),
        *_feed_reasons(settings, market, now_ms),
        *_cooldown_reasons(settings, account, now_ms),
    ]
    if pausing:
        return AccountVerdict(TradingMode.PAUSE, (*pausing, *reducing))
    if reducing:
        return AccountVerdict(TradingMode.REDUCE_ONLY, tuple(reducing))
    return AccountVerdict(TradingMode.OPERATE)


def _side_word(side: Side) -> str:
    return "larga" if side is Side.BUY else "corta"


def _check_reduce(intent: OrderIntent, account: AccountView) -> RiskDecision:
    """A reduce-only or close-position intent must shrink the position, never grow or flip it."""
    position = account.position(intent.symbol)
    if position is None:
        return refuse(
            "sin_posicion", f"No hay posición en {intent.symbol} que reducir", simbolo=intent.symbol
        )
    held: dict[str, float | str] = {
        "posicion": position.quantity,
        "lado_posicion": _side_word(position.side),
    }
    if position.side is intent.side:
        message = f"Una {intent.side.value} aumentaría la posición {held['lado_posicion']}"
        return refuse("solo_reducir_invalido", message, **held)
    if not intent.close_position and intent.quantity > position.quantity * (1 + _EPS):
        message = (
            f"La cantidad {intent.quantity:g} supera la posición de {position.quantity:g}: "
            "la invertiría"
        )
        return refuse("solo_reducir_invalido", message, cantidad=intent.quantity, **held)
    return ACCEPTED


def _check_leverage(
    intent: OrderIntent, settings: RiskSettings, account: AccountView, notional: float
) -> RiskDecision:
    """The settings' cap, then the cap of the bracket the grown position falls in."""
    leverage, cap = intent.leverage, settings.max_leverage
    if not 1 <= leverage <= (cap or MAX_LEVERAGE):
        message = f"Apalancamiento {leverage:g}x fuera de [1, {cap or MAX_LEVERAGE:g}]x"
        return refuse("apalancamiento_maximo", message, apalancamiento=leverage, limite=cap)
    if not account.brackets:
        return ACCEPTED
    position = account.position(intent.symbol)
    total = notional + (position.notional if position else 0.0)
    try:
        tier = account.brackets[int(bracket_index(total, account.brackets))]
    except InvalidOrderError:
        last = account.brackets[-1].cap
        message = f"Una posición de {total:.2f} USDT supera el último tramo ({last:g} USDT)"
        return refuse("nocional_fuera_de_tramos", message, nocional=total, tope=last)
    if leverage > tier.initial_leverage:
        message = (
            f"Apalancamiento {leverage:g}x supera el máximo {tier.initial_leverage}x del tramo "
            f"de una posición de {total:.2f} USDT"
        )
        return refuse("apalancamiento_tramo", message, apalancamiento=leverage,
                       limite=tier.initial_leverage, nocional=total)  # fmt: skip
    return ACCEPTED


def _check_size(
    intent: OrderIntent, settings: RiskSettings, account: AccountView, notional: float
) -> RiskDecision:
    """Order notional, open positions, total exposure and free margin."""
    limit = settings.max_order_notional
    if limit is not None and notional > limit * (1 + _EPS):
        message = f"Nocional de {notional:.2f} USDT supera el máximo por orden de {limit:.2f}"
        return refuse("nocional_maximo", message, nocional=notional, limite=limit)
    count = sum(1 for p in account.positions if p.quantity > 0)
    limit_count = settings.max_open_positions
    if account.position(intent.symbol) is None and limit_count is not None and count >= limit_count:
        message = f"Ya hay {count} posiciones abiertas (máximo {limit_count})"
        return refuse("max_posiciones", message, posiciones=count, limite=limit_count)
    exposure = sum(p.notional for p in account.positions) + notional
    if settings.max_exposure is not None and exposure > settings.max_exposure * (1 + _EPS):
        message = (
            f"La exposición llegaría a {exposure:.2f} USDT (máximo {settings.max_exposure:.2f})"
        )
        return refuse("max_exposicion", message, exposicion=exposure, limite=settings.max_exposure)
    needed = notional / intent.leverage
    if needed > account.free_margin * (1 + _EPS):
        message = (
            f"La orden necesita {needed:.2f} USDT de margen y hay {account.free_margin:.2f} libres"
        )
        return refuse("margen_insuficiente", message, necesario=needed, libre=account.free_margin)
    return ACCEPTED


def _check_entry(
    intent: OrderIntent,
    settings: RiskSettings,
    account: AccountView,
    market: MarketView,
    now_ms: int,
) -> RiskDecision:
    verdict = check_account(settings, account, market, now_ms)
    if verdict.reason is not None:
        return RiskDecision(False, verdict.reason)
    position = account.position(intent.symbol)
    if position is not None and position.side is not intent.side:
        message = f"Entrada en contra de la posición {_side_word(position.side)}: cerrarla antes"
        return refuse("entrada_contra_posicion", message, posicion=position.quantity)
    price = intent.price if intent.type.needs_price else intent.trigger_price or market.last_price
    if price is None:
        return refuse("precio_desconocido", "Sin precio con el que valorar la orden")
    notional = intent.quantity * price
    decision = _check_leverage(intent, settings, account, notional)
    return decision if not decision.accepted else _check_size(intent, settings, account, notional)


def _check_exchange_filters(
    intent: OrderIntent, account: AccountView, market: MarketView
) -> RiskDecision:
    """The symbol's filters through core.rules, as the exchange will apply them."""
    rules, kind = account.rules, intent.type
    market_like = kind in _MARKET_LIKE
    # A market order is priced at its trigger or the last price; PERCENT_PRICE bounds a limit
    # order around the last price (a stop-limit's band is the exchange's to judge at trigger).
    reference = (intent.trigger_price or market.last_price) if market_like else None
    if kind is OrderType.LIMIT:
        reference = market.last_price
    try:
        if intent.trigger_price is not None:
            check_price(rules, Decimal(str(intent.trigger_price)), None, "precio_disparo")
        if not intent.close_position:
            filter_kind = OrderType.MARKET if market_like else OrderType.LIMIT
            check_filters(rules, filter_kind, intent.quantity, intent.price, reference,
                          account.open_orders)  # fmt: skip
    except FilterError as error:
        # Binance waives MIN_NOTIONAL for reduce-only orders (-4164 "unless you choose reduce
        # only"), and it is the last filter core.rules checks.
        if intent.reduces and error.filter_name == "MIN_NOTIONAL":
            return ACCEPTED
        limits = {key: str(value) for key, value in error.limits.items()}
        message = f"El exchange rechazaría la orden ({error.filter_name}): {error}"
        return refuse("filtro_exchange", message, filtro=error.filter_name, campo=error.field,
                       **limits)  # fmt: skip
    return ACCEPTED


def check_order(
    intent: OrderIntent,
    settings: RiskSettings,
    account: AccountView,
    market: MarketView,
    now_ms: int,
) -> RiskDecision:
    """Accept `intent`, or refuse it with the first reason (a code, a Spanish message, values).

    An intent that reduces (reduce-only or close-position) is judged on shrinking the position
    and on the exchange filters only, so exits pass while paused or reducing; an exit purpose
    must reduce. An entry also needs the account to be operating (`check_account`), to go with
    the position, and to fit the notional, leverage (settings and brackets), positions, exposure
    and free-margin limits.
    """
    if intent.symbol != account.rules.symbol:
        message = f"La orden es de {intent.symbol} y las reglas de {account.rules.symbol}"
        return refuse("simbolo_distinto", message, simbolo=intent.symbol)
    if intent.purpose.is_exit and not intent.reduces:
        message = f"Una orden de {intent.purpose.value} debe ser solo reducir o cerrar posición"
        return refuse("salida_sin_solo_reducir", message, proposito=intent.purpose.value)
    if intent.reduces:
        decision = _check_reduce(intent, account)
    else:
        decision = _check_entry(intent, settings, account, market, now_ms)
    return decision if not decision.accepted else _check_exchange_filters(intent, account, market)


class OrderThrottle:
    """The orders sent in the last 10 s and minute, on an injected clock (epoch ms).

    Entries stop at the settings' budget; exits, stops and take-profits may use the rest of
    Binance's limits, so an account busy entering can still protect its positions.
    """

    def __init__(self, clock: Callable[[], int], per_10s: int = DEFAULT_ORDERS_10S,
                 per_minute: int = DEFAULT_ORDERS_1M) -> None:  # fmt: skip
        RiskSettings(orders_10s=per_10s, orders_1m=per_minute)  # the same bounds
        self._clock = clock
        self._windows = ((TEN_SECONDS_MS, per_10s, ORDERS_10S, deque[int]()),
                         (MINUTE_MS, per_minute, ORDERS_1M, deque[int]()))  # fmt: skip

    @classmethod
    def from_settings(cls, settings: RiskSettings, clock: Callable[[], int]) -> OrderThrottle:
        return cls(clock, settings.orders_10s, settings.orders_1m)

    def counts(self) -> tuple[int, int]:
        """Orders sent in the last 10 s and in the last minute."""
        self._prune(self._clock())
        return len(self._windows[0][3]), len(self._windows[1][3])

    def _prune(self, now: int) -> None:
        for span, _, _, sent in self._windows:
            while sent and sent[0] <= now - span:
                sent.popleft()

    def acquire(self, purpose: Purpose = Purpose.ENTRY) -> RiskDecision:
        """Count one order now and accept it, or refuse it ("limite_ordenes", with the window,
        the count and when to retry) without counting it."""
        now = self._clock()
        self._prune(now)
        for span, budget, hard, sent in self._windows:
            limit = hard if purpose.is_exit else budget
            if len(sent) >= limit:
                window = f"{span // 1000} s"
                retry = sent[len(sent) - limit] + span - now
                message = (
                    f"{len(sent)} órdenes en {window}: límite {limit}; reintentar en {retry} ms"
                )
                return refuse("limite_ordenes", message, ventana=window, enviadas=len(sent),
                               limite=limit, reintentar_ms=retry)  # fmt: skip
        for _, _, _, sent in self._windows:
            sent.append(now)
        return ACCEPTED
