"""macd_tendencia: long while the MACD line is above its signal line, short while below."""

from __future__ import annotations

import numpy as np

from core.errors import StrategyError
from estrategias.base import MODE, Param, Strategy, Velas
from estrategias.sma_cruce import cross_state
from indicadores import macd


class MacdTendencia(Strategy):
    name = "macd_tendencia"
    description = (
        "Seguimiento de tendencia con MACD: largo mientras la línea MACD está sobre su señal, "
        "corto mientras está debajo."
    )
    params = (
        Param("rapida", int, 12, 2, 200, description="EMA rápida"),
        Param("lenta", int, 26, 3, 400, description="EMA lenta"),
        Param("senal", int, 9, 2, 100, description="EMA de la señal"),
        MODE,
    )

    def _validate(self) -> None:
        if self.p["rapida"] >= self.p["lenta"]:
            raise StrategyError("rapida must be smaller than lenta")

    @property
    def warmup(self) -> int:
        return int(self.p["lenta"] + self.p["senal"])

    def _positions(self, velas: Velas) -> np.ndarray:
        line, signal, _ = macd(velas.close, self.p["rapida"], self.p["lenta"], self.p["senal"])
        return cross_state(line, signal)
