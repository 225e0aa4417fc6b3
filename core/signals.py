"""The live decision path: closed candles of one stream -> strategy signals and crossover events.

Pure and deterministic (no I/O): the bridge fans its output out, the bot acts on it. Strategies
come in through the `Decider` protocol, so `core` never imports `estrategias`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from core.errors import StrategyError
from core.models import Candle, Crossover, Signal

_SIDES = {1.0: "largo", 0.0: "plano", -1.0: "corto"}


class LiveDecider(Protocol):
    """A strategy's incremental runner, fed each closed candle once, oldest first."""

    def update(self, candle: Candle) -> float:
        """The target position decided at `candle`'s close (-1 short, 0 flat, +1 long)."""
        ...

    def events(self) -> Sequence[Crossover]:
        """The strategy's own events at the candle last updated (e.g. a crossover), or none."""
        ...


class Decider(Protocol):
    """What the live path needs from a strategy (`estrategias.base.Strategy` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def warmup(self) -> int:
        """Candles needed before the first non-flat decision."""
        ...

    def live(self) -> LiveDecider: ...


@dataclass(frozen=True, slots=True)
class PositionChange:
    """A signal and the position it replaces."""

    signal: Signal
    previous: float


@dataclass(frozen=True, slots=True)
class Decisions:
    """What one closed candle produced: position changes (in strategy order) and events."""

    candle: Candle
    changes: tuple[PositionChange, ...] = ()
    crossovers: tuple[Crossover, ...] = ()

    @property
    def signals(self) -> tuple[Signal, ...]:
        return tuple(change.signal for change in self.changes)


def _side(position: float) -> str:
    return _SIDES.get(position, f"{position:g}")


class LiveSignals:
    """The strategies of one (symbol, interval), fed closed candles in order.

    `prime` replays history without emitting anything; `on_closed` returns a `PositionChange` for
    every strategy whose target position moved at that candle and the events the strategies
    found there. A strategy's position before its first candle counts as flat.
    """

    def __init__(self, symbol: str, interval: str, strategies: Sequence[Decider]) -> None:
        """Raises StrategyError when two strategies share a name (positions are keyed by it)."""
        names = [strategy.name for strategy in strategies]
        if len(set(names)) != len(names):
            raise StrategyError(f"strategy names must be unique, got {', '.join(names)}")
        self.symbol, self.interval = symbol, interval
        self._runners = [(strategy.name, strategy.live()) for strategy in strategies]
        self._warmup = max((strategy.warmup for strategy in strategies), default=0)
        self._positions: dict[str, float] = {}
        self._last: int | None = None

    @property
    def warmup(self) -> int:
        """Closed candles to prime with before the slowest strategy can decide."""
        return self._warmup

    @property
    def positions(self) -> dict[str, float]:
        """Each strategy's current target position (a copy), once it has seen a candle."""
        return dict(self._positions)

    @property
    def last_open_time(self) -> int | None:
        """Open time of the last candle taken, None before any."""
        return self._last

    def prime(self, candles: Iterable[Candle]) -> None:
        """Feed history (closed candles, oldest first) without emitting signals or events.

        Raises StrategyError as `on_closed` does.
        """
        for candle in candles:
            self._advance(candle)

    def on_closed(self, candle: Candle) -> Decisions:
        """The decisions at `candle`'s close: position changes and the strategies' events.

        Raises StrategyError for a candle of another stream, not closed, not after the last one
        (out of order or duplicated), or with a NaN or infinite price; nothing is changed then.
        """
        moves = self._advance(candle)
        changes = []
        crossovers: list[Crossover] = []
        for name, runner in self._runners:
            events = list(runner.events())
            crossovers += events
            if name in moves:
                changes.append(self._change(candle, name, moves[name], events))
        return Decisions(candle, tuple(changes), tuple(crossovers))

    def _advance(self, candle: Candle) -> dict[str, float]:
        """Update every runner; the previous position of each one that moved, by name."""
        self._check(candle)
        self._last = candle.open_time
        moved = {}
        for name, runner in self._runners:
            position = runner.update(candle)
            before = self._positions.get(name, 0.0)
            self._positions[name] = position
            if position != before:
                moved[name] = before
        return moved

    def _check(self, candle: Candle) -> None:
        stream = (candle.symbol, candle.interval)
        if stream != (self.symbol, self.interval):
            raise StrategyError(
                f"candle of {' '.join(stream)} fed to the {self.symbol} {self.interval} signals"
            )
        if not candle.closed:
            raise StrategyError(f"candle {candle.open_time} is not closed (still open)")
        if self._last is not None and candle.open_time <= self._last:
            why = "a duplicate of" if candle.open_time == self._last else "older than"
            raise StrategyError(f"candle {candle.open_time} is {why} the last one ({self._last})")
        prices = (candle.open, candle.high, candle.low, candle.close)
        if not all(math.isfinite(price) for price in prices):
            raise StrategyError(f"candle {candle.open_time} has a NaN or infinite price")

    def _change(
        self, candle: Candle, name: str, previous: float, events: list[Crossover]
    ) -> PositionChange:
        position = self._positions[name]
        why = [f"cruce {event.kind.value}" for event in events]
        reason = "; ".join([*why, f"{_side(previous)} -> {_side(position)}"])
        signal = Signal(
            symbol=self.symbol,
            interval=self.interval,
            open_time=candle.open_time,
            strategy=name,
            position=position,
            price=candle.close,
            reason=reason,
        )
        return PositionChange(signal, previous)
