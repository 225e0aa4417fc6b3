"""sma_cruce: long on a golden cross of two simple moving averages, short on a death cross."""

from __future__ import annotations

import numpy as np

from core.errors import StrategyError
from core.models import CrossKind, Crossover
from estrategias.base import MODE, Param, Strategy, Velas, as_velas
from indicadores import sma

# Averages closer than this (relative to the largest average) count as equal: summation-order
# noise must not flip a side.
TIE = 1e-12


def cross_state(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    """+1 while fast is above slow, -1 below; a tie keeps the previous side; 0 before both exist."""
    diff = fast - slow
    state = np.sign(diff)
    np.nan_to_num(state, copy=False)
    if not len(slow) or np.isnan(slow[-1]):  # indicators are NaN only during their warm-up
        return np.zeros_like(state)
    scale = max(abs(np.nanmax(slow)), abs(np.nanmin(slow)))
    tie = np.abs(diff) <= TIE * scale
    if tie.any():
        state[tie] = 0.0
        known = np.flatnonzero(state)
        if len(known) == 0:
            return state
        # Forward-fill the last non-tie side over ties (ties before the first side stay 0).
        index = np.zeros(len(state), dtype=np.int64)
        index[known] = known
        np.maximum.accumulate(index, out=index)
        filled = state[index]
        filled[: known[0]] = 0.0
        return filled
    return state


class SmaCruce(Strategy):
    name = "sma_cruce"
    description = (
        "Cruce de medias móviles simples: largo cuando la rápida cruza por encima de la lenta "
        "(cruce alcista), corto cuando cruza por debajo (cruce bajista)."
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
        return cross_state(*self._averages(velas))

    def cruces(self, data: object, symbol: str, interval: str) -> list[Crossover]:
        """Every crossover in the candles: the bar whose close flipped the averages' order."""
        velas = as_velas(data)
        fast, slow = self._averages(velas)
        state = cross_state(fast, slow)
        flips = np.flatnonzero((state[1:] != state[:-1]) & (state[:-1] != 0)) + 1
        return [
            Crossover(
                symbol=symbol, interval=interval, open_time=int(velas.open_time[i]),
                kind=CrossKind.GOLDEN if state[i] > 0 else CrossKind.DEATH,
                price=float(velas.close[i]), fast=float(fast[i]), slow=float(slow[i]),
                strategy=self.name,
            )
            for i in flips
        ]  # fmt: skip
