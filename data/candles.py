"""A run's candles: the one loader behind `POST /backtest`, `run.py backtest` and future jobs.

Ranges here are epoch ms, start inclusive and end exclusive; a user's typed end becomes one by
`core.intervals.end_ms` (a date alone includes that whole UTC day), so every entry point that
parses with it and loads with this module selects the same candles for the same input.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core.errors import DataError
from core.exchange.rest import BinanceRest
from core.intervals import DAY_MS, ms_to_iso
from core.repository import Database
from data.updater import DEFAULT_LOOKBACK_DAYS, obtener_datos_historicos

LOOKBACK_MS = DEFAULT_LOOKBACK_DAYS * DAY_MS
# A run needs a decision candle and the next one to fill it at.
MIN_CANDLES = 2


class NotEnoughCandlesError(DataError):
    """Fewer than MIN_CANDLES candles in a run's range: nothing to run on (the API's 404)."""

    def __init__(self, symbol: str, interval: str) -> None:
        super().__init__(f"no candles for {symbol} {interval} in that range")
        self.symbol = symbol
        self.interval = interval

    @property
    def detail(self) -> dict[str, str]:
        return {"symbol": self.symbol, "interval": self.interval}


@dataclass(frozen=True, slots=True)
class Download:
    """The candles a run downloads before reading: the range [start, end) and how many of its
    candles are not stored yet."""

    start: int
    end: int
    missing: int


def _read_range(start: int | None, end: int | None) -> tuple[int | None, int | None]:
    """The [start, end) a run reads: an end alone gets DEFAULT_LOOKBACK_DAYS before it; no
    dates at all stays (None, None), i.e. every stored candle."""
    if start is not None and end is not None and start >= end:
        raise DataError(f"start {ms_to_iso(start)} must be before end {ms_to_iso(end)}")
    if start is None and end is not None:
        return end - LOOKBACK_MS, end
    return start, end


def _window(
    db: Database, symbol: str, interval: str, start: int | None, end: int | None, rest_url: str
) -> tuple[int, int | None] | None:
    """The range a run downloads (a stop of None: up to the last closed candle) given its read
    range, or None when it uses what is stored: no dates and a stream already stored."""
    if start is not None:
        return start, end
    if db.candles.count(symbol, interval):
        return None
    return BinanceRest(rest_url).server_time() - LOOKBACK_MS, None


def missing_candles(
    db: Database,
    symbol: str,
    interval: str,
    start: int | None = None,
    end: int | None = None,
    *,
    rest_url: str,
) -> Download | None:
    """What `load_run_candles` with the same arguments would download, downloading nothing;
    None when it would use the stored candles as they are. Lets a caller refuse unbounded work
    up front. Raises DataError for a start not before the end."""
    window = _window(db, symbol, interval, *_read_range(start, end), rest_url)
    if window is None:
        return None
    first, stop = window
    stop = BinanceRest(rest_url).server_time() if stop is None else stop
    gaps = db.candles.find_gaps(symbol, interval, first, stop)
    return Download(first, stop, sum(gap.count for gap in gaps))


def load_run_candles(
    db: Database,
    symbol: str,
    interval: str,
    start: int | None = None,
    end: int | None = None,
    *,
    rest_url: str,
) -> pd.DataFrame:
    """The candles of [start, end) as columns open_time, open, high, low, close, volume, oldest
    first, after downloading the missing ones from the market at `rest_url`.

    Without dates: every stored candle of the stream, or the last DEFAULT_LOOKBACK_DAYS
    downloaded when it has none; an end alone: the DEFAULT_LOOKBACK_DAYS before it. Raises
    DataError for a start not before the end, NotEnoughCandlesError when the range holds fewer
    than MIN_CANDLES candles, and ExchangeError when the download fails.
    """
    start, end = _read_range(start, end)
    window = _window(db, symbol, interval, start, end, rest_url)
    if window is not None:
        obtener_datos_historicos([symbol], [interval], db, *window, rest_url=rest_url)
    # Only the columns the engine reads: half the work of the full stored row.
    frame = pd.DataFrame(db.candles.read_arrays(symbol, interval, start, end)._asdict())
    if len(frame) < MIN_CANDLES:
        raise NotEnoughCandlesError(symbol, interval)
    return frame
