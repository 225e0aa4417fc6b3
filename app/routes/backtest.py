"""/backtest, /backtest/<id>, /backtests: run a strategy over history and keep the result."""

from __future__ import annotations

from flask import Blueprint, Response

from app.api import operation
from app.backtests import run_json, submit_backtest
from app.schemas import BacktestIn, BacktestsQuery
from app.services import services

bp = Blueprint("backtest", __name__)


@operation(
    bp,
    "/backtest",
    "POST",
    "Run a backtest (downloads missing candles first, up to BACKTEST_MAX_DOWNLOAD)",
    body=BacktestIn,
    statuses=(201, 400, 404, 415, 422, 502, 503),
)
def create_backtest(body: BacktestIn):  # type: ignore[no-untyped-def]
    status, payload = submit_backtest(services(), body)
    return Response(payload, status, mimetype="application/json")


@operation(
    bp, "/backtest/<int:run_id>", "GET", "A stored backtest with trades and equity", statuses=(404,)
)
def get_backtest(run_id: int):  # type: ignore[no-untyped-def]
    return run_json(services().db.backtests.get(run_id))


@operation(
    bp,
    "/backtests",
    "GET",
    "Stored backtests, newest first (summaries)",
    query=BacktestsQuery,
    statuses=(400,),
)
def list_backtests(query: BacktestsQuery):  # type: ignore[no-untyped-def]
    db = services().db
    runs = db.backtests.find(limit=query.limit, offset=query.offset)
    return {
        "backtests": [run_json(r, with_details=False) for r in runs],
        "total": db.backtests.count(),
        "limit": query.limit,
        "offset": query.offset,
    }
