"""/velas: stored candles for the chart (downloading them when missing) with indicator overlays."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from flask import Blueprint

from app.api import RequestError, operation, time_param
from app.schemas import VelasQuery
from app.services import services
from core.errors import ExchangeError
from core.intervals import interval_ms
from data.updater import obtener_datos_historicos
from indicadores import atr, bollinger, ema, estocastico, macd, obv, rsi, sma, vwap, wma

bp = Blueprint("velas", __name__)
# name -> (default period, function of (candles, period) -> array or NamedTuple)
OVERLAYS: dict[str, tuple[int, Any]] = {
    "sma": (20, lambda v, p: sma(v["close"], p)),
    "ema": (20, lambda v, p: ema(v["close"], p)),
    "wma": (20, lambda v, p: wma(v["close"], p)),
    "rsi": (14, lambda v, p: rsi(v["close"], p)),
    "atr": (14, lambda v, p: atr(v["high"], v["low"], v["close"], p)),
    "bollinger": (20, lambda v, p: bollinger(v["close"], p)),
    "macd": (26, lambda v, p: macd(v["close"])),
    "estocastico": (14, lambda v, p: estocastico(v["high"], v["low"], v["close"], p)),
    "vwap": (1, lambda v, p: vwap(v["open_time"], v["high"], v["low"], v["close"], v["volume"])),
    "obv": (1, lambda v, p: obv(v["close"], v["volume"])),
}


def _specs(text: str | None) -> list[tuple[str, str, int]]:
    specs = []
    for item in filter(None, (text or "").split(",")):
        name, _, period = item.partition(":")
        if name not in OVERLAYS:
            raise RequestError(
                400, f"unknown indicator {name!r}", {"indicadores": f"one of {', '.join(OVERLAYS)}"}
            )
        value = int(period) if period else OVERLAYS[name][0]
        if not 1 <= value <= 1000:
            raise RequestError(400, f"{item}: the period must be 1-1000", {"indicadores": item})
        specs.append((item, name, value))
    return specs


def _clean(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(x) else x for x in values.tolist()]


def _series(result: Any, keep: int) -> Any:
    if isinstance(result, tuple):
        return {
            field: _clean(values[-keep:])
            for field, values in zip(getattr(result, "_fields"), result, strict=True)  # noqa: B009
        }
    return _clean(result[-keep:])


def _read(query: VelasQuery, start: int | None, end: int | None) -> pd.DataFrame:
    """Candles of [start, end) (at most `limit`), or the latest `limit` without a start."""
    return services().db.candles.read_frame(
        query.symbol, query.interval, start, end, query.limit, latest=start is None
    )


def _fill(query: VelasQuery, start: int | None, end: int | None, warmup: int) -> str | None:
    """Download what the requested window lacks; a warning instead of an error when the
    exchange cannot be reached, so stored candles are still served."""
    db, url = services().db, services().settings.binance_rest_url
    step = interval_ms(query.interval)
    try:
        # Without an end, the window runs to the exchange's now (the demo clock may run fast).
        stop = end if end is not None else services().rest().server_time()
        if start is None:
            start = stop - (query.limit + 1) * step  # the latest `limit` closed candles
        else:
            # At most `limit` candles are returned, so never download beyond them.
            stop = min(stop, start + (query.limit + 1) * step)
            end = stop
        start -= warmup * step  # the indicators' warm-up candles too
        if not db.candles.find_gaps(query.symbol, query.interval, start, stop):
            return None
        obtener_datos_historicos([query.symbol], [query.interval], db, start, end, rest_url=url)
    except ExchangeError as error:
        return f"exchange unreachable, stored candles only: {error}"
    return None


@operation(
    bp,
    "/velas",
    "GET",
    "Candles with optional indicator overlays",
    query=VelasQuery,
    statuses=(400, 502),
)
def candles(query: VelasQuery):  # type: ignore[no-untyped-def]
    specs = _specs(query.indicadores)
    start, end = time_param(query.start, "start"), time_param(query.end, "end")
    if start is not None and end is not None and start >= end:
        raise RequestError(400, "start must be before end", {"end": "not after start"})
    warmup = 3 * max((period for _, _, period in specs), default=0)
    warning = _fill(query, start, end, warmup)
    frame = _read(query, start, end)
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    full = columns
    if warmup and len(frame):
        # Earlier candles feed the indicators' warm-up, so the visible window has no NaN head.
        history = services().db.candles.read_frame(
            query.symbol, query.interval, end=int(columns["open_time"][0]), limit=warmup
        )
        full = {c: np.concatenate((history[c].to_numpy(), columns[c])) for c in columns}
    rows = zip(
        *(columns[c].tolist() for c in ("open_time", "open", "high", "low", "close", "volume")),
        strict=True,
    )
    return {
        "symbol": query.symbol,
        "interval": query.interval,
        "aviso": warning,
        "velas": [{"open_time": t, "open": o, "high": h, "low": lo, "close": c, "volume": v,
                   "closed": True} for t, o, h, lo, c, v in rows],
        "indicadores": {label: _series(OVERLAYS[name][1](full, period), len(frame))
                        for label, name, period in specs},
    }  # fmt: skip
