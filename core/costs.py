"""The one cost model: fees, slippage, liquidation, maintenance margin, funding and PnL.

Used by the backtester and, next, by the paper broker and the demo exchange, so all three charge
the same. Pure numpy: every function takes floats or numpy arrays (broadcast element-wise) and
returns a float for floats and an array when its main argument is an array. `side` is +1 for a
long position or a buy and -1 for a short or a sell; quantities are positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import numpy as np

from core.errors import InvalidOrderError

TAKER_FEE = 0.0005  # Binance USDT-M base tier (VIP0), fraction of notional
MAKER_FEE = 0.0002
MAINTENANCE_MARGIN_RATE = 0.004  # BTCUSDT's first leverage bracket
FUNDING_INTERVAL_MS = 8 * 3_600_000  # instants at 00:00, 08:00 and 16:00 UTC
BASIS_POINTS = 10_000  # basis points in one unit

F = TypeVar("F", float, np.ndarray)


def fee(notional: F, rate: F | float) -> F:
    """Fee of a fill: `notional` (quantity x price) times `rate` (a fraction, 0.0005 = 0.05 %)."""
    return notional * rate


def apply_slippage(price: F, side: F | float, bps: float) -> F:
    """Fill price after `bps` basis points of slippage: a buy (+1) pays more, a sell (-1) less."""
    return price * (1 + side * (bps / BASIS_POINTS))


def liquidation_price(
    entry: F, side: F | float, leverage: F | float, mmr: float = MAINTENANCE_MARGIN_RATE
) -> F:
    """Isolated-margin liquidation price of a position opened at `entry` with `leverage`.

    Long: entry x (1 - 1/L) / (1 - mmr); short: entry x (1 + 1/L) / (1 + mmr), where `mmr` is
    the maintenance margin rate; funding and fees paid from the wallet do not move it.
    """
    # One expression for both sides: with side = -1 it is exactly the short formula.
    return entry * (1 - side / leverage) / (1 - side * mmr)


def margin_liquidation_price(
    entry: float, side: float, quantity: float, margin: float, mmr: float, cum: float = 0.0
) -> float:
    """Mark price at which a position's margin plus its unrealised PnL equals its maintenance.

    Solves margin + side x q x (P - entry) = q x P x mmr - cum for P: the general form Binance
    uses, where `margin` is the isolated wallet (isolated) or what the account can lose (cross)
    and `cum` the bracket's maintenance amount. With margin = q x entry / leverage and cum = 0 it
    is `liquidation_price`. A result <= 0 means the position cannot be liquidated.
    """
    return (side * quantity * entry - margin - cum) / (quantity * (side - mmr))


class MarginTier(Protocol):
    """One leverage bracket of `GET /fapi/v1/leverageBracket` (the demo exchange's `Bracket`).

    It covers notionals in [floor, cap); `cum` is what Binance subtracts so the maintenance
    margin is continuous across tiers.
    """

    @property
    def cap(self) -> float: ...

    @property
    def maint_margin_ratio(self) -> float: ...

    @property
    def cum(self) -> float: ...


def _caps(brackets: Sequence[MarginTier]) -> np.ndarray:
    caps = np.array([bracket.cap for bracket in brackets], dtype=np.float64)
    if len(caps) == 0 or np.any(np.diff(caps) <= 0):
        raise ValueError("brackets must be a non-empty sequence sorted by cap")
    return caps


def bracket_index(notional: F, brackets: Sequence[MarginTier]) -> int | np.ndarray:
    """Index of the bracket holding `|notional|`: the first whose cap is above it.

    Raises InvalidOrderError (field "notional") when a notional reaches the last cap: Binance
    refuses such a position. Raises ValueError for an empty or unsorted sequence of brackets.
    """
    index = np.asarray(np.searchsorted(_caps(brackets), np.abs(notional), side="right"))
    if np.any(index >= len(brackets)):
        cap = brackets[-1].cap
        raise InvalidOrderError(
            "notional", f"notional at or above the last bracket cap {cap}", {"cap": cap}
        )
    return index if isinstance(notional, np.ndarray) else int(index)


def maintenance_margin(notional: F, brackets: Sequence[MarginTier]) -> F:
    """Binance's maintenance margin: |notional| x maint_margin_ratio - cum of its bracket.

    Raises InvalidOrderError when a notional reaches the last bracket's cap.
    """
    index = bracket_index(notional, brackets)
    ratio = np.array([bracket.maint_margin_ratio for bracket in brackets])[index]
    cum = np.array([bracket.cum for bracket in brackets])[index]
    margin = np.abs(notional) * ratio - cum
    if isinstance(notional, np.ndarray):
        return margin
    return float(margin)


def funding_payment(side: F | float, quantity: F | float, price: F, rate: F | float) -> F:
    """Funding paid by a position at one funding instant: side x quantity x price x rate.

    Positive means the position pays (a long when the rate is positive), negative that it
    receives; `price` is the price at the instant (mark price live, the candle's open in a
    backtest).
    """
    # Grouped so that with scalar side and quantity an array costs two passes, not three.
    return side * quantity * (price * rate)


def funding_instants(
    start_ms: int, end_ms: int, interval_ms: int = FUNDING_INTERVAL_MS
) -> np.ndarray:
    """Funding instants in [start_ms, end_ms) as int64 ms: 00:00, 08:00 and 16:00 UTC."""
    first = -(-int(start_ms) // interval_ms) * interval_ms
    return np.arange(first, int(end_ms), interval_ms, dtype=np.int64)


def unrealised_pnl(side: F | float, quantity: F | float, entry: F | float, mark: F) -> F:
    """Unrealised PnL of a position on the `mark` price: side x quantity x (mark - entry)."""
    return side * quantity * (mark - entry)
