"""/senales: a strategy's signals over the stored history, computed as the backtester does, so
the chart shows them for the candles it loaded and not only from the next live crossover on."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from flask import Blueprint

from app.api import RequestError, operation
from app.routes.bots import build_strategy
from app.schemas import SenalesPage, SenalesQuery
from app.services import services
from core.errors import StrategyError
from estrategias.base import Strategy, Velas

bp = Blueprint("senales", __name__)
SIDES = {1.0: "largo", 0.0: "plano", -1.0: "corto"}


def _params(text: str | None) -> dict[str, Any]:
    """The `params` query parameter as a JSON object; 422 naming `params` otherwise."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise RequestError(422, "params: not valid JSON", {"params": "not valid JSON"}) from None
    if not isinstance(value, dict):
        raise RequestError(422, "params must be a JSON object", {"params": "not a JSON object"})
    return value


def position_changes(
    strategy: Strategy, velas: Velas, symbol: str, interval: str
) -> list[dict[str, Any]]:
    """One signal per candle whose target position differs from the previous one (flat before
    the first candle, as the live path counts it), with the strategy's events there."""
    positions = strategy.target_positions(velas)
    events: dict[int, list[str]] = {}
    for event in strategy.events(velas, symbol, interval):
        events.setdefault(event.open_time, []).append(f"cruce {event.kind.value}")
    previous = np.concatenate(([0.0], positions[:-1]))
    signals = []
    for i in np.flatnonzero(positions != previous).tolist():
        open_time = int(velas.open_time[i])
        move = f"{SIDES[float(previous[i])]} -> {SIDES[float(positions[i])]}"
        reason = "; ".join([*events.get(open_time, []), move])
        signals.append({
            "open_time": open_time, "posicion": float(positions[i]),
            "precio": float(velas.close[i]), "motivo": reason,
        })  # fmt: skip
    return signals


@operation(
    bp,
    "/senales",
    "GET",
    "A strategy's signals (target position changes) over the latest `limit` stored candles; "
    'params is a JSON object, e.g. {"rapida":9,"lenta":21}',
    query=SenalesQuery,
    response=SenalesPage,
    statuses=(400, 404, 422),
)
def signals(query: SenalesQuery):  # type: ignore[no-untyped-def]
    strategy = build_strategy(query.estrategia, _params(query.params))
    arrays = services().db.candles.read_arrays(query.symbol, query.interval, limit=query.limit)
    if not len(arrays.open_time):
        raise RequestError(
            404, f"no stored candles for {query.symbol} {query.interval}", {"symbol": "no candles"}
        )
    velas = Velas(*arrays)
    try:
        found = position_changes(strategy, velas, query.symbol, query.interval)
    except StrategyError as error:
        raise RequestError(422, f"estrategia: {error}", {"estrategia": str(error)}) from None
    return {
        "symbol": query.symbol, "interval": query.interval, "estrategia": strategy.name,
        "params": dict(strategy.p), "velas": len(velas.open_time), "senales": found,
    }  # fmt: skip
