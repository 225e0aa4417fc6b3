"""The strategy registry: names to classes, validated construction, and their schemas."""

from __future__ import annotations

import difflib
from typing import Any

from core.errors import StrategyError
from estrategias.base import Strategy
from estrategias.macd_tendencia import MacdTendencia
from estrategias.ml_predictor import MlPredictor
from estrategias.rsi_reversion import RsiReversion
from estrategias.sma_cruce import SmaCruce

REGISTRY: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (SmaCruce, RsiReversion, MacdTendencia, MlPredictor)
}


def crear_estrategia(nombre: str, **params: Any) -> Strategy:
    """A strategy instance by name with validated parameters; StrategyError lists what exists."""
    try:
        cls = REGISTRY[nombre]
    except KeyError:
        hint = difflib.get_close_matches(nombre, REGISTRY, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise StrategyError(
            f"unknown strategy {nombre!r}{suggestion}; available: {', '.join(REGISTRY)}"
        ) from None
    return cls(**params)


def listar_estrategias() -> list[dict[str, Any]]:
    """Name, description and parameter schema of every strategy (for the API, UI, optimiser)."""
    return [cls().describe() for cls in REGISTRY.values()]
