"""The strategy interface: typed parameters, a batch hook and a live hook that must agree."""

from __future__ import annotations

import difflib
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from core.errors import StrategyError
from core.models import Candle, Crossover


class Velas(NamedTuple):
    """The candle columns a strategy sees, oldest first, closed candles only."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


COLUMNS = Velas._fields


def as_velas(data: Any) -> Velas:
    """Velas from a DataFrame or any mapping/NamedTuple of columns; DataError-like checks up front.

    Raises StrategyError for missing columns, NaN prices, or unsorted/duplicated open times.
    """
    if isinstance(data, Velas):
        return data
    getter = data.__getitem__ if isinstance(data, pd.DataFrame | Mapping) else data.__getattribute__
    try:
        columns = {name: np.asarray(getter(name)) for name in COLUMNS}
    except (KeyError, AttributeError) as error:
        raise StrategyError(f"candles need columns {', '.join(COLUMNS)}: missing {error}") from None
    velas = Velas(
        open_time=np.asarray(columns["open_time"], dtype=np.int64),
        **{name: np.asarray(columns[name], dtype=np.float64) for name in COLUMNS[1:]},
    )
    if len(velas.open_time) > 1 and not (velas.open_time[1:] > velas.open_time[:-1]).all():
        raise StrategyError("candles must be sorted by open_time with no duplicates")
    # NaN and infinities survive a sum, so four reductions check every price.
    if not np.isfinite(sum(float(column.sum()) for column in velas[1:5])):
        raise StrategyError("candles contain NaN or infinite prices")
    return velas


@dataclass(frozen=True, slots=True)
class Param:
    """One strategy parameter: its type, default and bounds (read by the UI and the optimiser)."""

    name: str
    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    description: str = ""

    def check(self, value: Any) -> Any:
        """`value` converted to the parameter's type; StrategyError saying what is allowed."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise StrategyError(f"{self.name} must be true or false, got {value!r}")
            return value
        try:
            # true is not 1 and NaN or infinity is no parameter value, whatever Python allows.
            if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
                raise ValueError
            if self.kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            converted = self.kind(value)
            if isinstance(converted, float) and not math.isfinite(converted):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise StrategyError(
                f"{self.name} must be {self.kind.__name__}, got {value!r}"
            ) from None
        if self.choices is not None and converted not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise StrategyError(f"{self.name} must be one of {allowed}, got {value!r}")
        if self.minimum is not None and converted < self.minimum:
            raise StrategyError(f"{self.name} must be >= {self.minimum}, got {value!r}")
        if self.maximum is not None and converted > self.maximum:
            raise StrategyError(f"{self.name} must be <= {self.maximum}, got {value!r}")
        return converted

    def schema(self) -> dict[str, Any]:
        """JSON description: name, type, default, bounds, choices, description."""
        return {
            "nombre": self.name,
            "tipo": {int: "int", float: "float", str: "str", bool: "bool"}[self.kind],
            "defecto": self.default,
            "minimo": self.minimum,
            "maximo": self.maximum,
            "opciones": list(self.choices) if self.choices is not None else None,
            "descripcion": self.description,
        }


MODE = Param(
    "modo",
    str,
    "ambos",
    choices=("ambos", "solo_largo", "solo_corto"),
    description="lados que opera",
)


def restrict_sides(positions: np.ndarray, mode: str) -> np.ndarray:
    """Positions with the side `mode` forbids set flat (solo_largo: no shorts, and vice versa)."""
    if mode == "solo_largo":
        return np.maximum(positions, 0)
    if mode == "solo_corto":
        return np.minimum(positions, 0)
    return positions


class Strategy(ABC):
    """Turns closed candles into target positions: +1 long, -1 short, 0 flat.

    A strategy declaring the shared `MODE` parameter gets its sides restricted by the framework.

    The position decided at a candle's close is held from the next candle's open. Subclasses
    declare `name`, `description`, `params`, implement `_positions` (batch) and `warmup`; the
    live hook `LiveStrategy` reuses the batch code on a bounded history, so both give the same
    decisions by construction. Subclasses may override `live()` with an O(1) update, and
    `events` to report their own events (crossovers), which the live runner lists per candle.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[tuple[Param, ...]]

    def __init__(self, **values: Any) -> None:
        known = {p.name: p for p in self.params}
        for key in values:
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise StrategyError(
                    f"{self.name} has no parameter {key!r}{suggestion}; "
                    f"parameters: {', '.join(known)}"
                )
        self.p: dict[str, Any] = {
            name: param.check(values.get(name, param.default)) for name, param in known.items()
        }
        self._validate()

    def _validate(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Cross-parameter checks (e.g. fast < slow); raise StrategyError."""

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Candles needed before the first non-flat decision."""

    @abstractmethod
    def _positions(self, velas: Velas) -> np.ndarray:
        """Target position after each candle's close, same length as the candles."""

    def target_positions(self, data: Any) -> np.ndarray:
        """Checked batch decisions: float64 in {-1, 0, 1}, one per candle, flat during warm-up."""
        return self.decisions(data).astype(np.float64)

    def decisions(self, data: Any) -> np.ndarray:
        """`target_positions` in the dtype `_positions` gave (int8 for the built-in strategies):
        the optimiser simulates these directly, a byte a candle instead of eight. Read-only use:
        it may be the strategy's own array.

        `_positions` may return integers (int8 is cheapest: the check is then two reductions
        over a byte per candle) or floats.
        """
        velas = as_velas(data)
        raw = np.asarray(self._positions(velas))
        if raw.shape != velas.close.shape:
            raise StrategyError(
                f"{self.name} returned {raw.shape} positions for {velas.close.shape} candles"
            )
        if raw.dtype.kind in "biu":
            valid = not len(raw) or (raw.min() >= -1 and raw.max() <= 1)
        else:
            raw = raw.astype(np.float64, copy=False)
            valid = bool(((raw == 0.0) | (np.abs(raw) == 1.0)).all())
        if not valid:
            raise StrategyError(f"{self.name} returned positions outside -1, 0, 1")
        if "modo" in self.p:
            raw = restrict_sides(raw, self.p["modo"])
        return raw

    def events(self, data: Any, symbol: str, interval: str) -> list[Crossover]:
        """The strategy's own events in the candles (e.g. crossovers), oldest first; none here.

        Raises StrategyError as `target_positions` does for unusable candles.
        """
        as_velas(data)
        return []

    def live(self, history: int | None = None) -> LiveStrategy:
        """An incremental runner fed one closed candle at a time."""
        return LiveStrategy(self, history)

    def describe(self) -> dict[str, Any]:
        return {
            "nombre": self.name,
            "descripcion": self.description,
            "parametros": [p.schema() for p in self.params],
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.p.items())
        return f"{type(self).__name__}({args})"


class LiveStrategy:
    """Feeds closed candles one by one and returns the decision after each.

    It keeps the last `history` candles (default: 20x the warm-up, at least 5,000) and runs the
    batch code on them: identical to the batch decisions on the same candles, and for indicators
    with infinite memory (EMA, Wilder) the truncation error is below float precision.
    """

    def __init__(self, strategy: Strategy, history: int | None = None) -> None:
        self.strategy = strategy
        self.history = history or max(5_000, 20 * strategy.warmup)
        self._rows: deque[tuple[int, float, float, float, float, float]] = deque(
            maxlen=self.history
        )
        self._last: tuple[Candle, Velas] | None = None  # the candle last added, its history

    def update(self, candle: Candle) -> float:
        """Add a closed candle; return the target position decided at its close."""
        if not candle.closed:
            raise StrategyError("live strategies only take closed candles")
        if self._rows and candle.open_time <= self._rows[-1][0]:
            raise StrategyError(f"candle {candle.open_time} is not after the last one")
        self._rows.append(
            (candle.open_time, candle.open, candle.high, candle.low, candle.close, candle.volume)
        )
        table = np.array(self._rows, dtype=np.float64)
        velas = Velas(table[:, 0].astype(np.int64), *table[:, 1:].T)
        self._last = candle, velas
        return float(self.strategy.target_positions(velas)[-1])

    def events(self) -> list[Crossover]:
        """The strategy's events at the candle last added (none before the first candle)."""
        if self._last is None:
            return []
        candle, velas = self._last
        found = self.strategy.events(velas, candle.symbol, candle.interval)
        return [event for event in found if event.open_time == candle.open_time]
