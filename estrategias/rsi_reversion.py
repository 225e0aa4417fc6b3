"""rsi_reversion: buy oversold, sell overbought (Wilder's RSI), exit back at the middle level."""

from __future__ import annotations

import numpy as np

from core.errors import StrategyError
from estrategias.base import MODE, Param, Strategy, Velas
from indicadores import rsi


def _latest(condition: np.ndarray) -> np.ndarray:
    """Index of the most recent bar (up to each bar) where `condition` held, -1 before any."""
    index = np.where(condition, np.arange(len(condition)), -1)
    return np.maximum.accumulate(index)


class RsiReversion(Strategy):
    name = "rsi_reversion"
    description = (
        "Reversión a la media con RSI de Wilder: largo cuando el RSI cae bajo 'sobreventa', corto "
        "cuando supera 'sobrecompra'; cierra cuando el RSI vuelve a 'salida'."
    )
    params = (
        Param("periodo", int, 14, 2, 200, description="periodo del RSI"),
        Param("sobreventa", float, 30.0, 1.0, 49.0, description="umbral de entrada larga"),
        Param("sobrecompra", float, 70.0, 51.0, 99.0, description="umbral de entrada corta"),
        Param("salida", float, 50.0, 1.0, 99.0, description="nivel de cierre"),
        MODE,
    )

    def _validate(self) -> None:
        if not self.p["sobreventa"] <= self.p["salida"] <= self.p["sobrecompra"]:
            raise StrategyError("need sobreventa <= salida <= sobrecompra")

    @property
    def warmup(self) -> int:
        return int(self.p["periodo"]) + 1

    def _positions(self, velas: Velas) -> np.ndarray:
        value = rsi(velas.close, self.p["periodo"])
        known = ~np.isnan(value)
        # A long lasts from an oversold bar until the first bar at or above the exit level;
        # a short from an overbought bar until the first bar at or below it.
        long = _latest(known & (value < self.p["sobreventa"])) > _latest(
            known & (value >= self.p["salida"])
        )
        short = _latest(known & (value > self.p["sobrecompra"])) > _latest(
            known & (value <= self.p["salida"])
        )
        return long.astype(np.float64) - short.astype(np.float64)
