"""The demo exchange's leverage brackets: notional tiers, their maximum leverage and maintenance."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class Bracket:
    """One notional tier [floor, cap): the most leverage allowed in it and its maintenance rate.

    `cum` is the maintenance amount Binance subtracts so the margin is continuous across tiers.
    """

    number: int
    floor: int
    cap: int
    initial_leverage: int
    maint_margin_ratio: float
    cum: float

    def as_json(self) -> dict[str, Any]:
        """The tier as /fapi/v1/leverageBracket writes it (numbers, not strings)."""
        return {
            "bracket": self.number,
            "initialLeverage": self.initial_leverage,
            "notionalCap": self.cap,
            "notionalFloor": self.floor,
            "maintMarginRatio": self.maint_margin_ratio,
            "cum": self.cum,
        }


def _tiers(rows: tuple[tuple[int, int, float], ...]) -> tuple[Bracket, ...]:
    """Brackets from (cap, max leverage, maintenance rate) rows; floors and cum derived."""
    brackets: list[Bracket] = []
    floor, cum, previous_rate = 0, 0.0, 0.0
    for number, (cap, leverage, rate) in enumerate(rows, start=1):
        cum = round(cum + floor * (rate - previous_rate), 8)
        brackets.append(Bracket(number, floor, cap, leverage, rate, cum))
        floor, previous_rate = cap, rate
    return tuple(brackets)


# Binance's BTCUSDT table (first tier 0.4 %, the backtester's default maintenance rate).
_MAJOR = _tiers((
    (50_000, 125, 0.004), (250_000, 100, 0.005), (3_000_000, 50, 0.01),
    (15_000_000, 20, 0.025), (30_000_000, 10, 0.05), (80_000_000, 5, 0.1),
    (100_000_000, 4, 0.125), (200_000_000, 3, 0.15), (300_000_000, 2, 0.25),
    (500_000_000, 1, 0.5),
))  # fmt: skip
_ALT = _tiers((
    (5_000, 50, 0.01), (25_000, 25, 0.02), (100_000, 20, 0.025), (250_000, 10, 0.05),
    (1_000_000, 5, 0.1), (1_500_000, 4, 0.125), (2_500_000, 3, 0.15), (5_000_000, 2, 0.25),
    (10_000_000, 1, 0.5),
))  # fmt: skip

BRACKETS: MappingProxyType[str, tuple[Bracket, ...]] = MappingProxyType(
    {"BTCUSDT": _MAJOR, "ETHUSDT": _MAJOR}
)


def brackets_of(symbol: str) -> tuple[Bracket, ...]:
    """The symbol's tiers, lowest notional first (the altcoin table for any not listed above)."""
    return BRACKETS.get(symbol, _ALT)


def max_leverage(symbol: str) -> int:
    """The highest leverage the symbol allows (its first tier's)."""
    return brackets_of(symbol)[0].initial_leverage


def max_notional(symbol: str, leverage: int) -> int:
    """The largest position notional allowed at `leverage`: the cap of the last tier allowing it."""
    allowed = [b.cap for b in brackets_of(symbol) if b.initial_leverage >= leverage]
    return allowed[-1] if allowed else 0
