"""An exchange broker's trades as paper trades: built from the exchange's own fills (userTrades:
prices, commissions, realised PnL), with the stop and take-profit triggers the broker places.

Pure bookkeeping, no I/O: the broker feeds it fills and funding, it answers equity and the
trades to report (as core.broker.paper.PaperTrade, so paper and exchange trades are recorded
alike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import numpy as np

from core.broker.paper import PaperTrade, trade_from_json, trade_json
from core.exchange.trading_types import Fill
from core.fills import Costs, levels
from core.models import Side


@dataclass(frozen=True, slots=True)
class FillSummary:
    """The fills of one order, summed: side +1 buy / -1 sell, volume-weighted price."""

    order_id: int
    side: float
    quantity: float
    price: float
    fees: float
    realized: float
    time: int


def summarize(fills: list[Fill]) -> FillSummary:
    """One order's fills as one (ValueError when there are none)."""
    if not fills:
        raise ValueError("no fills to summarize")
    quantity = sum(f.qty for f in fills)
    notional = sum(f.qty * f.price for f in fills)
    return FillSummary(
        fills[0].order_id, 1.0 if fills[0].side is Side.BUY else -1.0, float(quantity),
        float(notional / quantity), float(sum(f.commission for f in fills)),
        float(sum(f.realized_pnl for f in fills)), max(f.time for f in fills),
    )  # fmt: skip


def on_tick(price: float, tick: Decimal, up: bool) -> Decimal:
    """`price` on the tick grid, rounded up or down."""
    value = Decimal(repr(price))
    if not tick:
        return value
    rounding = ROUND_CEILING if up else ROUND_FLOOR
    return (value / tick).to_integral_value(rounding) * tick


def protection_levels(
    entry: float,
    side: float,
    stop: float | np.ndarray | None,
    take: float | np.ndarray | None,
    costs: Costs,
    tick: Decimal,
) -> tuple[Decimal | None, Decimal | None, float]:
    """(stop trigger, take-profit trigger, liquidation) of a trade entered at `entry`: a float
    distance is a fraction of the entry, an np.ndarray one an absolute distance (as
    core.fills.levels reads them); triggers rounded to the tick away from the market."""
    raw_stop, raw_take, liquidation = levels(entry, side, stop, take, costs)
    stop_level = float(np.asarray(raw_stop).item())
    take_level = float(np.asarray(raw_take).item())
    stop_price = on_tick(stop_level, tick, up=side < 0) if math.isfinite(stop_level) else None
    take_price = on_tick(take_level, tick, up=side > 0) if math.isfinite(take_level) else None
    return stop_price, take_price, float(np.asarray(liquidation).item())


class TradeBook:
    """The broker's open trade, its closed trades' compounding, and what to report next."""

    def __init__(self, capital: float, interval_ms: int) -> None:
        self.capital, self.interval_ms = capital, interval_ms
        self.bar, self.last_open = -1, 0
        self.trade: PaperTrade | None = None
        self.equity_before_trade = capital
        self._entry_fees = 0.0
        self._funding = 0.0
        self._outbox: list[PaperTrade] = []

    def candle(self, open_time: int) -> None:
        """A bot's candle has closed: later fills belong to the bars after it."""
        self.bar += 1
        self.last_open = open_time

    def _when(self, time_ms: int) -> tuple[int, int]:
        """(bar index, candle open time) of an exchange instant."""
        open_time = time_ms - time_ms % self.interval_ms
        if not self.last_open:  # before the first candle: no bar to count from
            return max(self.bar, 0), open_time
        return self.bar + (open_time - self.last_open) // self.interval_ms, open_time

    def open(
        self, fill: FillSummary, stop: Decimal | None, take: Decimal | None, liquidation: float
    ) -> PaperTrade:
        """The trade an entry's fills opened."""
        bar, open_time = self._when(fill.time)
        self.trade = PaperTrade(
            bar, open_time, fill.side, fill.price, fill.quantity,
            _level(stop, -fill.side), _level(take, fill.side), liquidation,
        )  # fmt: skip
        self._entry_fees, self._funding = fill.fees, 0.0
        self._outbox.append(self.trade)
        return self.trade

    def adopt(self, side: float, quantity: float, price: float, time_ms: int) -> PaperTrade:
        """A position found on the exchange with no trade of ours: followed from now on."""
        bar, open_time = self._when(time_ms)
        self.trade = PaperTrade(bar, open_time, side, price, quantity, -side * math.inf,
                                side * math.inf, math.nan)  # fmt: skip
        self._entry_fees, self._funding = 0.0, 0.0
        self._outbox.append(self.trade)
        return self.trade

    def protect(self, stop: Decimal | None, take: Decimal | None) -> None:
        """The triggers now on the exchange for the open trade."""
        if self.trade is not None:
            side = self.trade.side
            self.trade = replace(self.trade, stop=_level(stop, -side), take=_level(take, side))

    def close(self, fill: FillSummary, reason: str) -> PaperTrade | None:
        """The trade a closing order's fills ended (None when none was open)."""
        trade = self.trade
        if trade is None:
            return None
        bar, open_time = self._when(fill.time)
        fees = self._entry_fees + fill.fees
        pnl = fill.realized - fees - self._funding
        closed = replace(
            trade, exit_bar=bar, exit_time=open_time, exit_price=fill.price, reason=reason,
            pnl=pnl, fees=fees, funding=self._funding,
            trade_return=pnl / self.equity_before_trade,
        )  # fmt: skip
        self.equity_before_trade += pnl
        self.trade = None
        self._outbox.append(closed)
        return closed

    def fund(self, paid: float) -> None:
        """Funding paid (negative: received) while the trade is open."""
        if self.trade is not None:
            self._funding += paid

    def equity(self, mark: float) -> float:
        """Capital plus closed PnL, plus the open trade's PnL at `mark` less its costs so far."""
        trade = self.trade
        if trade is None:
            return self.equity_before_trade
        gain = trade.side * trade.quantity * (mark - trade.entry_price)
        return self.equity_before_trade + gain - self._entry_fees - self._funding

    def snapshot(self) -> dict[str, Any]:
        """The open trade and the compounding (JSON-ready): a restart then reports the trade
        with its own entry, fees and funding instead of adopting the bare position."""
        return {
            "bar": self.bar, "last_open": self.last_open,
            "trade": None if self.trade is None else trade_json(self.trade),
            "equity_before_trade": self.equity_before_trade,
            "entry_fees": self._entry_fees, "funding": self._funding,
        }  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from `snapshot()`'s output."""
        self.bar, self.last_open = int(state["bar"]), int(state["last_open"])
        self.trade = None if state["trade"] is None else trade_from_json(state["trade"])
        self.equity_before_trade = float(state["equity_before_trade"])
        self._entry_fees, self._funding = float(state["entry_fees"]), float(state["funding"])

    def drain(self) -> list[PaperTrade]:
        """The trades opened or closed since the last call, in order."""
        out, self._outbox = self._outbox, []
        return out


def _level(price: Decimal | None, direction: float) -> float:
    return direction * math.inf if price is None else float(price)
