"""/cruces and /ultimos_cruces: moving-average crossovers stored by the strategies."""

from __future__ import annotations

from flask import Blueprint

from app.api import operation, time_param
from app.schemas import CrucesQuery
from app.services import services
from core.models import Crossover

bp = Blueprint("cruces", __name__)


def crossover_json(c: Crossover) -> dict:
    return {
        "symbol": c.symbol,
        "interval": c.interval,
        "open_time": c.open_time,
        "tipo": c.kind.value,
        "precio": c.price,
        "rapida": c.fast,
        "lenta": c.slow,
        "estrategia": c.strategy,
    }


@operation(bp, "/cruces", "GET", "Crossovers, newest first", query=CrucesQuery, statuses=(400,))
def crossovers(query: CrucesQuery):  # type: ignore[no-untyped-def]
    since = time_param(query.since, "since")
    found = services().db.crossovers.find(query.symbol, query.interval, since, query.limit)
    return {"cruces": [crossover_json(c) for c in found]}


@operation(bp, "/ultimos_cruces", "GET", "The latest crossover of every symbol and interval")
def latest_crossovers():  # type: ignore[no-untyped-def]
    return {"cruces": [crossover_json(c) for c in services().db.crossovers.latest_per_stream()]}
