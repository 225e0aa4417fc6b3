"""sma_cruce: long from a golden cross of two simple moving averages, short from a death cross."""

from __future__ import annotations

import numpy as np
from numba import njit

from core.errors import StrategyError
from core.models import Candle, CrossKind, Crossover
from estrategias.base import MODE, LiveStrategy, Param, Strategy, Velas, as_velas, restrict_sides
from indicadores import sma
from indicadores.cache import memoized

# Averages closer than this (relative to the largest average) count as equal: summation-order
# noise must not flip a side.
TIE = 1e-12


@memoized
def _first_known(line: np.ndarray) -> int:
    """The first bar where an indicator line is a number (they are NaN only while warming up)."""
    known = ~np.isnan(line)
    return int(np.argmax(known)) if known.any() else len(line)


@memoized
def _tie(slow: np.ndarray) -> float:
    """How far apart the averages may be and still tie (it depends on the slow line only, so a
    sweep computes it once per window)."""
    body = slow[_first_known(slow) :]
    return TIE * max(abs(float(body.max())), abs(float(body.min()))) if len(body) else 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def _sides(fast, slow, tie, out):  # type: ignore[no-untyped-def]
    """Write into `out` the side of fast against slow (+1 above slow + tie, -1 below slow -
    tie; a tie keeps the previous side; NaN compares false, so nothing before both lines
    exist); return the first bar whose close flipped a side to the other, or len(out)."""
    n = len(out)
    # Branch-free first: sides flip too often for a branch to be predicted, and ties are rare.
    zeros = 0
    for j in range(n):
        side = (fast[j] > slow[j] + tie) - (fast[j] < slow[j] - tie)
        out[j] = side
        zeros += side == 0
    first = 0
    while first < n and out[first] == 0:
        first += 1
    if zeros > first:  # ties after the first side
        for j in range(first + 1, n):
            if out[j] == 0:
                out[j] = out[j - 1]
    for j in range(first + 1, n):
        if out[j] != out[j - 1]:
            return j
    return n


def _cross(fast: np.ndarray, slow: np.ndarray) -> tuple[np.ndarray, int]:
    """`cross_sides` and its first crossing, from one compiled pass."""
    out = np.zeros(len(slow), dtype=np.int8)
    if not len(slow) or np.isnan(slow[-1]):  # indicators are NaN only during their warm-up
        return out, len(out)
    return out, int(_sides(fast, slow, _tie(slow), out))


def cross_sides(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    """`cross_state` as int8, the form the strategies build positions from."""
    return _cross(fast, slow)[0]


def cross_state(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    """+1 while fast is above slow, -1 below; a tie keeps the previous side; 0 before both exist."""
    return cross_sides(fast, slow).astype(np.float64)


def crossings(state: np.ndarray) -> np.ndarray:
    """Indices of the bars whose close flipped a `cross_state` from one side to the other."""
    changed = np.flatnonzero(state[1:] != state[:-1])
    return changed[state[changed] != 0] + 1


class SmaCruce(Strategy):
    name = "sma_cruce"
    description = (
        "Cruce de medias móviles simples: largo cuando la rápida cruza por encima de la lenta "
        "(cruce alcista), corto cuando cruza por debajo (cruce bajista); sin posición hasta el "
        "primer cruce."
    )
    params = (
        Param("rapida", int, 10, 1, 500, description="periodo de la media rápida"),
        Param("lenta", int, 30, 2, 2000, description="periodo de la media lenta"),
        MODE,
    )

    def _validate(self) -> None:
        if self.p["rapida"] >= self.p["lenta"]:
            raise StrategyError(
                f"rapida ({self.p['rapida']}) must be smaller than lenta ({self.p['lenta']})"
            )

    @property
    def warmup(self) -> int:
        return int(self.p["lenta"])

    def _averages(self, velas: Velas) -> tuple[np.ndarray, np.ndarray]:
        return sma(velas.close, self.p["rapida"]), sma(velas.close, self.p["lenta"])

    def _positions(self, velas: Velas) -> np.ndarray:
        # Flat until the first cross, as backtesting.py's SmaCross or freqtrade's crossed_above:
        # the side the averages already had when both appeared is no signal.
        state, first_cross = _cross(*self._averages(velas))
        state[:first_cross] = 0
        return state

    def live(self, history: int | None = None) -> LiveStrategy:
        return LiveSmaCruce(self, history)

    def events(self, data: object, symbol: str, interval: str) -> list[Crossover]:
        """The strategy's events are its crossovers (see `cruces`)."""
        return self.cruces(data, symbol, interval)

    def cruces(self, data: object, symbol: str, interval: str) -> list[Crossover]:
        """Every crossover in the candles: the bar whose close flipped the averages' order."""
        velas = as_velas(data)
        fast, slow = self._averages(velas)
        state = cross_state(fast, slow)
        return [
            Crossover(
                symbol=symbol, interval=interval, open_time=int(velas.open_time[i]),
                kind=CrossKind.GOLDEN if state[i] > 0 else CrossKind.DEATH,
                price=float(velas.close[i]), fast=float(fast[i]), slow=float(slow[i]),
                strategy=self.name,
            )
            for i in crossings(state)
        ]  # fmt: skip


class LiveSmaCruce(LiveStrategy):
    """The bounded-history runner, plus the side taken at the last cross it saw.

    Positions start at the first cross, so a history that has scrolled past every cross would
    read flat while the averages kept their side. The history therefore runs with both sides
    (its decision is the averages' side once it holds a cross), the last non-flat decision is
    remembered, and `modo` is applied afterwards, as the batch applies it.
    """

    def __init__(self, strategy: SmaCruce, history: int | None = None) -> None:
        super().__init__(type(strategy)(**{**strategy.p, "modo": "ambos"}), history)
        self.mode = strategy.p["modo"]
        self._side = 0.0

    def update(self, candle: Candle) -> float:
        """Add a closed candle; return the target position decided at its close."""
        self._side = super().update(candle) or self._side
        return float(restrict_sides(np.array([self._side]), self.mode)[0])
