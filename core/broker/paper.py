"""The paper broker's market: a bar-by-bar twin of the backtester's simulation.

`PaperSimulator.step` takes one closed candle and the decision taken at its close, and does
what `backtesting.engine.simulate` does at that bar: the previous decision fills at this bar's
open (slippage, taker fee), stops, take-profits and liquidation are checked on its high and low
with the same pessimistic rule, funding is charged when the position was held at its open, and
trades compound on equity. Every price and amount comes from `core.fills` — the functions the
backtester calls — so a paper run equals the backtest of the same candles (a test proves it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from core.broker import Decision
from core.costs import funding_payment
from core.fills import (
    EXIT_REASONS,
    EXIT_SIGNAL,
    EXIT_STOP,
    EXIT_TRAILING,
    NO_EXIT,
    Costs,
    bar_exit,
    entry_price,
    exit_price,
    levels,
    trade_fees,
    trade_return,
    trailing_stop,
)


@dataclass(frozen=True, slots=True)
class Bar:
    """One closed candle as the simulator needs it."""

    open_time: int
    open: float
    high: float
    low: float
    close: float


@dataclass(frozen=True, slots=True)
class PaperTrade:
    """A paper trade: entered at a bar's open; the exit fields are set once it closed."""

    entry_bar: int
    entry_time: int
    side: float  # the decision held: +1 long, -1 short
    entry_price: float
    quantity: float
    stop: float
    take: float
    liquidation: float
    exit_bar: int | None = None
    exit_time: int | None = None
    exit_price: float | None = None
    reason: str | None = None
    pnl: float | None = None
    fees: float | None = None
    funding: float | None = None
    trade_return: float | None = None
    # With a trailing stop: the best price before the bar being processed (the entry at first).
    extreme: float | None = None

    @property
    def is_open(self) -> bool:
        return self.exit_bar is None


def _scalar(value: object) -> float:
    """The one number of a 0-d or 1-element array (what core.fills returns for one trade)."""
    return float(np.asarray(value).item())


class PaperSimulator:
    """Positions, fills and equity of one strategy on one market, one closed bar at a time.

    `stop_loss` / `take_profit` are fractions of the entry price for every trade; otherwise
    `step` may give absolute distances decided at each close (an ATR multiple, say), used by a
    trade entered at the next open — the backtester's two forms.
    """

    def __init__(
        self,
        capital: float,
        costs: Costs,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        trailing: float | None = None,
    ) -> None:
        self.capital, self.costs = capital, costs
        self.stop_loss, self.take_profit = stop_loss, take_profit
        self.trailing = trailing
        self.bar = -1
        self.start_time: int | None = None  # open time of the first bar it traded
        self.closed: list[PaperTrade] = []
        self.trade: PaperTrade | None = None
        self.ambiguous_bars = 0
        self._growth = 1.0  # the product of (1 + return) of the closed trades
        self._held = 0.0  # the decision the current bar is held under
        # The decision, stop and take distances taken at the last close.
        self._pending: tuple[float, float | None, float | None] = (0.0, None, None)
        self._funding_units = 0.0  # funding per unit of a long since the entry, summed

    def on_candle(self, bar: Bar, decision: Decision) -> list[PaperTrade]:
        """The Broker face of `step`: a bot's decision at `bar`'s close."""
        return self.step(
            bar,
            decision.target,
            decision.stop_distance,
            decision.take_distance,
            decision.funding_rate,
        )

    def snapshot(self) -> dict[str, Any]:
        """Everything a restart needs to continue exactly (JSON-ready); closed trades are the
        recorder's, only their compounding is kept here."""
        return {
            "bar": self.bar,
            "start_time": self.start_time,
            "growth": self._growth,
            "held": self._held,
            "pending": list(self._pending),
            "funding_units": self._funding_units,
            "ambiguous_bars": self.ambiguous_bars,
            "trade": trade_json(self.trade) if self.trade else None,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from `snapshot()`'s output."""
        self.bar, self._growth, self._held = int(state["bar"]), state["growth"], state["held"]
        self.start_time = state["start_time"]
        decision, stop, take = state["pending"]
        self._pending = (float(decision), stop, take)
        self._funding_units = float(state["funding_units"])
        self.ambiguous_bars = int(state["ambiguous_bars"])
        self.trade = trade_from_json(state["trade"]) if state["trade"] else None

    def equity(self, mark: float) -> float:
        """Equity at `mark`: compounded capital, plus the open trade's PnL less its entry fee
        and funding so far (what the backtester's equity curve shows at a close)."""
        equity = self.equity_before_trade
        trade = self.trade
        if trade is None:
            return equity
        entry_fee = trade.quantity * trade.entry_price * self.costs.taker_fee
        funding = trade.side * trade.quantity * self._funding_units
        gain = trade.side * trade.quantity * (mark - trade.entry_price)
        return equity + gain - entry_fee - funding

    @property
    def side(self) -> float:
        """The open trade's side, 0 when flat (a stopped trade leaves the decision held)."""
        return self.trade.side if self.trade else 0.0

    @property
    def equity_before_trade(self) -> float:
        """Equity the next (or current) trade is sized on: capital compounded by closed trades."""
        return self.capital * self._growth

    def step(
        self,
        bar: Bar,
        target: float,
        stop_distance: float | None = None,
        take_distance: float | None = None,
        funding_rate: float = 0.0,
    ) -> list[PaperTrade]:
        """Process one closed bar and store the decision taken at its close.

        Returns the trades opened or closed during this bar, in order (exits first).
        """
        self.bar += 1
        if self.start_time is None:
            self.start_time = bar.open_time
        changed: list[PaperTrade] = []
        decision, pending_stop, pending_take = self._pending
        if decision != self._held:
            if self.trade is not None:
                changed.append(self._close(bar, EXIT_SIGNAL))
            if decision != 0:
                changed.append(self._open(bar, decision, pending_stop, pending_take))
            self._held = decision
        if self.trade is not None:
            if self.bar > self.trade.entry_bar:
                self._funding_units += _scalar(funding_payment(1.0, 1.0, bar.open, funding_rate))
            changed.extend(self._intrabar(bar))
        self._pending = (float(target), stop_distance, take_distance)
        return changed

    def close_now(self, bar: Bar, reason: str = "cierre") -> PaperTrade | None:
        """Close the open trade at `bar`'s open as a signal exit fills (slippage, taker fee):
        a person stopping the bot with its position closed. Returns the closed trade with
        `reason`, None when flat. The decision held stays, as after a stop-out, so the strategy
        re-enters only on a new signal."""
        if self.trade is None:
            return None
        closed = replace(self._close(bar, EXIT_SIGNAL), reason=reason)
        self.closed[-1] = closed
        return closed

    def _open(self, bar: Bar, side: float, stop_distance, take_distance) -> PaperTrade:  # type: ignore[no-untyped-def]
        costs = self.costs
        entry = _scalar(entry_price(bar.open, side, costs))
        stop, take, liquidation = levels(
            entry,
            side,
            self.stop_loss if self.stop_loss is not None else _absolute(stop_distance),
            self.take_profit if self.take_profit is not None else _absolute(take_distance),
            costs,
        )
        quantity = self.equity_before_trade * costs.exposure / entry
        self.trade = PaperTrade(
            self.bar, bar.open_time, side, entry, quantity,
            _scalar(stop), _scalar(take), _scalar(liquidation),
            extreme=None if self.trailing is None else entry,
        )  # fmt: skip
        self._funding_units = 0.0
        return self.trade

    def _intrabar(self, bar: Bar) -> list[PaperTrade]:
        trade = self.trade
        assert trade is not None
        stop, trails = trade.stop, False
        if self.trailing is not None and trade.extreme is not None:
            level, nearer = trailing_stop(trade.side, trade.stop, trade.extreme, self.trailing)
            stop, trails = _scalar(level), bool(nearer)
        kind, ambiguous = bar_exit(trade.side, bar.high, bar.low, stop, trade.take,
                                   trade.liquidation)  # fmt: skip
        if int(kind) == NO_EXIT:
            if trade.extreme is not None:  # the bar is complete: the best price moves on
                best = (
                    max(trade.extreme, bar.high) if trade.side > 0 else min(trade.extreme, bar.low)
                )
                self.trade = replace(trade, extreme=best)
            return []
        self.ambiguous_bars += int(bool(ambiguous))
        kind = EXIT_TRAILING if int(kind) == EXIT_STOP and trails else int(kind)
        return [self._close(bar, kind, stop)]

    def _close(self, bar: Bar, kind: int, stop: float | None = None) -> PaperTrade:
        """Close the trade in `bar` (a signal exit at its open, any other at its level; `stop`
        the level a stop exit was exposed to, the trade's own stop by default)."""
        trade, costs = self.trade, self.costs
        assert trade is not None
        side, entry = trade.side, trade.entry_price
        level = trade.stop if stop is None else stop
        fill = _scalar(
            exit_price(bar.open, bar.close, side, kind, level, trade.take, trade.liquidation, costs)
        )
        funding_fraction = side * self._funding_units / entry * costs.exposure
        result = _scalar(trade_return(entry, fill, side, kind, funding_fraction, costs))
        equity_before = self.equity_before_trade
        closed = replace(
            trade,
            exit_bar=self.bar,
            exit_time=bar.open_time,
            exit_price=fill,
            reason=EXIT_REASONS[kind],
            pnl=equity_before * result,
            fees=_scalar(trade_fees(trade.quantity, entry, fill, kind, costs)),
            funding=funding_fraction * equity_before,
            trade_return=result,
        )
        self._growth *= 1 + result  # the same product, in the same order, as the backtester's
        self.closed.append(closed)
        self.trade = None
        return closed


def _absolute(distance: float | None) -> np.ndarray | None:
    """An absolute price distance in the form `core.fills.levels` reads as absolute."""
    return None if distance is None else np.array([distance])


def trade_json(trade: PaperTrade) -> dict[str, Any]:
    """The trade as JSON: a stop or target that is not set (infinitely far) is null, and so is
    a liquidation price nobody knows (an adopted position's)."""
    data = asdict(trade)
    for name in ("stop", "take", "liquidation"):
        if not math.isfinite(data[name]):
            data[name] = None
    return data


def trade_from_json(data: dict[str, Any]) -> PaperTrade:
    side = float(data["side"])
    unset = {"stop": -side * math.inf, "take": side * math.inf, "liquidation": math.nan}
    values: dict[str, Any] = dict(data)
    for name, far in unset.items():
        if values[name] is None:
            values[name] = far
    return PaperTrade(**values)
