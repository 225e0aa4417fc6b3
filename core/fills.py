"""The one fill model of a trade: entry and exit prices, intrabar stop / take-profit /
liquidation, and the trade's return, shared by the vectorised backtester and the paper broker.

Every function is element-wise numpy: the backtester calls it on arrays of trades or bars, the
paper broker on the one trade it holds, so both compute the same floats the same way. `side`
is +1 long / -1 short; a trade enters at a bar's open, decided at the previous bar's close.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from core.costs import MAINTENANCE_MARGIN_RATE, apply_slippage, fee, liquidation_price
from core.errors import DataError

EXIT_SIGNAL, EXIT_STOP, EXIT_TAKE, EXIT_LIQUIDATION, EXIT_END, EXIT_TRAILING = 0, 1, 2, 3, 4, 5
EXIT_REASONS = ("senal", "stop_loss", "take_profit", "liquidacion", "fin", "stop_movil")
# A trailing stop's callback, as a fraction: Binance's TRAILING_STOP_MARKET takes 0.1 % to 10 %
# with one decimal (callbackRate 0.1 to 10), so steps of 0.001.
TRAILING_MIN, TRAILING_MAX = 0.001, 0.1
NO_EXIT = -1
ATR_PERIOD = 14
_ATR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*atr\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Costs:
    """Cost and risk settings: fees and margin rates as fractions, slippage in basis points."""

    taker_fee: float = 0.0004
    maker_fee: float = 0.0002
    slippage_bps: float = 0.0
    leverage: float = 1.0
    size: float = 1.0
    maintenance_margin: float = MAINTENANCE_MARGIN_RATE

    @property
    def exposure(self) -> float:
        """Notional per unit of equity: the margin fraction times the leverage."""
        return self.size * self.leverage


def entry_price(bar_open, side, costs: Costs):  # type: ignore[no-untyped-def]
    """Fill price of an entry at a bar's open, slippage against the trader."""
    return apply_slippage(bar_open, side, costs.slippage_bps)


def levels(entry, side, stop_distance, take_distance, costs: Costs):  # type: ignore[no-untyped-def]
    """(stop, take-profit, liquidation) price levels of trades entered at `entry`.

    A distance is None (never touched), a float (a fraction of the entry price) or an array of
    absolute price distances, one per trade.
    """
    liquidation = liquidation_price(entry, side, costs.leverage, costs.maintenance_margin)
    return (
        _level(entry, side, stop_distance, True),
        _level(entry, side, take_distance, False),
        liquidation,
    )


def _level(entry, side, distance, against: bool):  # type: ignore[no-untyped-def]
    direction = -side if against else side
    if distance is None:
        return direction * np.inf
    if isinstance(distance, float):
        return entry * (1 + direction * distance)
    return entry + direction * distance


def bar_exit(side, high, low, stop, take, liquidation):  # type: ignore[no-untyped-def]
    """Which level a bar touches: (kind or NO_EXIT, ambiguous) per element.

    Moving against the position the nearer of stop and liquidation is reached first; a bar that
    touches an adverse level and the take-profit is resolved pessimistically (adverse) and
    flagged as ambiguous.
    """
    adverse = np.where(side > 0, low, -high)
    favourable = np.where(side > 0, high, -low)
    hit_stop = adverse <= side * stop
    hit_liq = adverse <= side * liquidation
    hit_take = favourable >= side * take
    adverse_hit = hit_stop | hit_liq
    liq_first = hit_liq & (side * liquidation >= side * stop)
    kind = np.where(
        adverse_hit,
        np.where(liq_first, EXIT_LIQUIDATION, EXIT_STOP),
        np.where(hit_take, EXIT_TAKE, NO_EXIT),
    )
    return kind, adverse_hit & hit_take


def trailing_stop(side, stop, extreme, trailing):  # type: ignore[no-untyped-def]
    """The stop a bar is exposed to with a trailing stop: the trailing level — `trailing` (a
    fraction) behind `extreme`, the best price since the entry before this bar (the entry
    itself on the entry bar) — when it is nearer than the fixed `stop`; and whether it is.

    The level is raised only from completed bars: within a bar the order of its high and low is
    unknown, so its own high never tightens the stop it is tested against (no look-ahead)."""
    trail = extreme * (1 - side * trailing)
    nearer = side * trail > side * stop
    return np.where(nearer, trail, stop), nearer


def exit_price(bar_open, bar_close, side, kind, stop, take, liquidation, costs: Costs):  # type: ignore[no-untyped-def]
    """Fill price of each exit in its exit bar; stops that gap through fill at the (worse) open.

    A signal exit fills at the bar's open, a stop (a trailing one too) at its level (or the open
    if the bar opened beyond it) and a take-profit likewise, both with slippage except the
    limit-like take-profit; a liquidation at its level; the end of the data at the bar's close.
    """
    bps = costs.slippage_bps
    closing = -side  # an exit trades against the position: a long sells, a short buys
    signal = apply_slippage(bar_open, closing, bps)
    stop_fill = np.where(side > 0, np.minimum(bar_open, stop), np.maximum(bar_open, stop))
    stop_fill = apply_slippage(stop_fill, closing, bps)
    take_fill = np.where(side > 0, np.maximum(bar_open, take), np.minimum(bar_open, take))
    end_fill = apply_slippage(bar_close, closing, bps)
    stopped = (kind == EXIT_STOP) | (kind == EXIT_TRAILING)
    return np.select(
        [stopped, kind == EXIT_TAKE, kind == EXIT_LIQUIDATION, kind == EXIT_END],
        [stop_fill, take_fill, liquidation, end_fill],
        default=signal,
    )


def exit_fee_rate(kind, costs: Costs):  # type: ignore[no-untyped-def]
    """Fee rate of each exit: maker for a take-profit, taker otherwise."""
    return np.where(kind == EXIT_TAKE, costs.maker_fee, costs.taker_fee)


def trade_return(entry, exit_fill, side, kind, funding_fraction, costs: Costs):  # type: ignore[no-untyped-def]
    """Each trade's return on the equity it started with, after fees and funding.

    A liquidation loses the margin and the entry fee; `funding_fraction` is the funding paid as
    a fraction of that equity.
    """
    exposure = costs.exposure
    gross = (
        side * (exit_fill / entry - 1)
        - costs.taker_fee
        - fee(exit_fill, exit_fee_rate(kind, costs)) / entry
    )
    result = exposure * gross - funding_fraction
    liquidated = kind == EXIT_LIQUIDATION
    return np.where(
        liquidated, -costs.size * (1 + costs.leverage * costs.taker_fee) - funding_fraction, result
    )


def trade_fees(quantity, entry, exit_fill, kind, costs: Costs):  # type: ignore[no-untyped-def]
    """Entry plus exit fees in quote currency; a liquidation's exit fee is the maintenance
    margin left in the position."""
    liquidated = kind == EXIT_LIQUIDATION
    rate = np.where(liquidated, costs.maintenance_margin, exit_fee_rate(kind, costs))
    return fee(quantity * entry, costs.taker_fee) + fee(quantity * exit_fill, rate)


def check_distance(value: float | str | None, name: str) -> None:
    """Raise DataError unless `value` is None, a fraction in (0, 1) or 'N atr' (before any work)."""
    if isinstance(value, str):
        if not _ATR.match(value):
            raise DataError(f"{name} must be a fraction like 0.02 or an ATR multiple like '2atr'")
    elif value is not None and not 0 < float(value) < 1:
        raise DataError(f"{name} must be a fraction between 0 and 1 (0.02 = 2 %), got {value}")


def check_trailing(value: float | None, name: str = "trailing") -> None:
    """Raise DataError unless `value` is None or a callback fraction Binance accepts."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"{name} must be a fraction like 0.01, got {value!r}")
    steps = float(value) / TRAILING_MIN
    if not TRAILING_MIN <= float(value) <= TRAILING_MAX or abs(steps - round(steps)) > 1e-9:
        raise DataError(
            f"{name} must be between {TRAILING_MIN} and {TRAILING_MAX} in steps of "
            f"{TRAILING_MIN} (0.01 = 1 % behind the best price since the entry), got {value}"
        )


def atr_multiple(value: float | str | None) -> float | None:
    """N of an 'N atr' stop or target (None for a fraction or none); check_distance first."""
    match = _ATR.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None


def distance(value: float | str | None, name: str, atr):  # type: ignore[no-untyped-def]
    """A stop or target as `levels` takes it: None, a fraction of the entry price (0.02 = 2 %),
    or for 'N atr' N times `atr` (the per-bar ATR(ATR_PERIOD) the caller computed with
    indicadores, which core does not import)."""
    check_distance(value, name)
    if value is None:
        return None
    multiple = atr_multiple(value)
    return float(value) if multiple is None else multiple * atr
