"""obtener_datos_historicos: download closed candles into the database, resumable and idempotent."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from core.errors import DataError, ExchangeError
from core.exchange.klines import klines_to_frame
from core.exchange.limits import MAX_KLINES
from core.exchange.rest import BinanceRest, WeightLimiter
from core.intervals import check_interval, floor_open, interval_ms, ms_to_iso, next_open, to_ms
from core.repository import Database, Gap
from data.common import database_for, market_url

log = logging.getLogger(__name__)
DEFAULT_LOOKBACK_DAYS = 30
TimeLike = datetime | str | int | float


class DownloadError(ExchangeError):
    """Some streams failed; `summaries` tells what every stream (failed or not) did."""

    def __init__(self, message: str, summaries: dict[tuple[str, str], StreamSummary]) -> None:
        super().__init__(message)
        self.summaries = summaries


@dataclass
class StreamSummary:
    """What one (symbol, interval) download did."""

    symbol: str
    interval: str
    written: int = 0
    first_time: int | None = None
    last_time: int | None = None
    pages: int = 0
    gaps: list[Gap] = field(default_factory=list)
    error: str | None = None

    def as_row(self) -> dict[str, object]:
        """A flat, printable row (ISO times) for tables and logs."""
        return {
            "symbol": self.symbol,
            "interval": self.interval,
            "written": self.written,
            "first": ms_to_iso(self.first_time) if self.first_time is not None else "-",
            "last": ms_to_iso(self.last_time) if self.last_time is not None else "-",
            "pages": self.pages,
            "gaps": sum(g.count for g in self.gaps),
            "error": self.error or "",
        }


@dataclass(frozen=True)
class _Plan:
    symbol: str
    interval: str
    ranges: tuple[tuple[int, int], ...]
    check_from: int
    end: int


class _Downloader:
    """Fetches pages for many streams; one HTTP client per thread, one weight budget for all."""

    def __init__(self, base_url: str, page_size: int, workers: int) -> None:
        self.base_url = base_url
        self.limiter = WeightLimiter()
        self.page_size = page_size
        self.workers = workers
        self._local = threading.local()

    def rest(self) -> BinanceRest:
        if not hasattr(self._local, "rest"):
            self._local.rest = BinanceRest(self.base_url, self.limiter)
        return self._local.rest

    def windows(self, start: int, end: int, interval: str) -> list[tuple[int, int]]:
        """Page-sized [start, end) windows; known up front, so pages can be fetched in parallel."""
        if interval == "1M":
            return [(start, end)]
        span = interval_ms(interval) * self.page_size
        return [(s, min(s + span, end)) for s in range(start, end, span)]

    def page(self, symbol: str, interval: str, window: tuple[int, int], now: int) -> pd.DataFrame:
        start, end = window
        rows = self.rest().klines(symbol, interval, start, end - 1, self.page_size)
        frame = klines_to_frame(rows)
        # Only closed candles are stored; the exchange may return the open one last.
        keep = (
            (frame["open_time"] >= start) & (frame["open_time"] < end) & (frame["close_time"] < now)
        )
        return frame[keep].drop(columns="close_time")


def _parse_streams(
    symbols: Iterable[str] | str, intervals: Iterable[str] | str
) -> list[tuple[str, str]]:
    symbols = [symbols] if isinstance(symbols, str) else list(symbols)
    intervals = [intervals] if isinstance(intervals, str) else list(intervals)
    if not symbols or not intervals:
        raise DataError("give at least one symbol and one interval")
    for interval in intervals:
        check_interval(interval)
    return [(s.strip().upper(), i) for s in symbols for i in intervals]


def _listings(streams: list[tuple[str, str]], info: dict) -> dict[str, int]:
    """Listing time (ms) of each requested symbol; DataError naming those the market lacks."""
    listed = {
        s["symbol"]: int(s.get("onboardDate", 0))
        for s in info.get("symbols", [])
        if s.get("status", "TRADING") == "TRADING"
    }
    unknown = sorted({symbol for symbol, _ in streams} - listed.keys())
    if unknown:
        raise DataError(f"unknown symbol(s) {', '.join(unknown)} on this market")
    return listed


def _plan(
    db: Database, symbol: str, interval: str, start: int | None, end: int, lookback: int
) -> _Plan:
    if start is not None:
        ranges = tuple(
            (g.first_missing, next_open(g.last_missing, interval))
            for g in db.candles.find_gaps(symbol, interval, start, end)
        )
        return _Plan(symbol, interval, ranges, start, end)
    latest = db.candles.latest_open_time(symbol, interval)
    first = floor_open(end - lookback, interval) if latest is None else next_open(latest, interval)
    ranges = ((first, end),) if first < end else ()
    return _Plan(symbol, interval, ranges, first, end)


def _run_stream(
    loader: _Downloader, db: Database, plan: _Plan, now: int, position: int
) -> StreamSummary:
    summary = StreamSummary(plan.symbol, plan.interval)
    windows = [w for a, b in plan.ranges for w in loader.windows(a, b, plan.interval)]
    bar = tqdm(
        total=len(windows),
        desc=f"{plan.symbol} {plan.interval}",
        unit="page",
        position=position,
        leave=True,
        disable=None,
    )
    try:
        with ThreadPoolExecutor(loader.workers) as pool:
            # map() yields in window order, so pages are committed oldest first: a kill leaves
            # only a missing tail, which the next run resumes from.
            pages = pool.map(lambda w: loader.page(plan.symbol, plan.interval, w, now), windows)
            for frame in pages:
                summary.pages += 1
                bar.update()
                if frame.empty:
                    continue
                summary.written += db.candles.upsert(plan.symbol, plan.interval, frame)
                first, last = int(frame["open_time"].iloc[0]), int(frame["open_time"].iloc[-1])
                summary.first_time = first if summary.first_time is None else summary.first_time
                summary.last_time = last
    except ExchangeError as error:
        summary.error = str(error)
    finally:
        bar.close()
    earliest = db.candles.earliest_open_time(plan.symbol, plan.interval)
    if earliest is not None:
        summary.gaps = db.candles.find_gaps(
            plan.symbol, plan.interval, max(plan.check_from, earliest), plan.end
        )
    for gap in summary.gaps:
        log.warning(
            "%s %s: the exchange has no candles from %s to %s (%d missing)",
            plan.symbol,
            plan.interval,
            ms_to_iso(gap.first_missing),
            ms_to_iso(gap.last_missing),
            gap.count,
        )
    return summary


def obtener_datos_historicos(
    symbols: Iterable[str] | str,
    intervals: Iterable[str] | str,
    db: str | Path | Database | None = None,
    start_time: TimeLike | None = None,
    end_time: TimeLike | None = None,
    *,
    rest_url: str | None = None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    page_size: int = MAX_KLINES,
    workers: int = 4,
) -> dict[tuple[str, str], StreamSummary]:
    """Download the closed candles of every (symbol, interval) into `db`; return a summary of each.

    `db` is a SQLite file, a SQLAlchemy URL, a Database or None (DATABASE_URL); a bare file name
    such as "datos_historicos.db" is that file in DATA_DIR, i.e. the default database
    (`data.common.database_target`).
    Times are datetimes, ISO strings or epoch ms, UTC; the range is [start_time, end_time).
    Without `start_time` a stream continues after its newest stored candle, or starts
    `lookback_days` back when it has none; with it, only the candles missing in the range are
    fetched, so a rerun downloads nothing. `end_time=None` means up to the last closed candle.
    Pages are committed one by one, oldest first: a killed run leaves a consistent database and
    the next run continues. Holes in the exchange's own data are reported in `gaps`, not retried.
    Raises DataError for a bad symbol, interval or range (before downloading anything) and
    ExchangeError when the exchange stays unreachable or refuses a stream.
    """
    streams = _parse_streams(symbols, intervals)
    start = None if start_time is None else to_ms(start_time)
    end = None if end_time is None else to_ms(end_time)
    if start is not None and end is not None and start >= end:
        raise DataError(f"start_time {ms_to_iso(start)} must be before end_time {ms_to_iso(end)}")
    loader = _Downloader(rest_url or market_url(), page_size, workers)
    listed = _listings(streams, loader.rest().exchange_info())
    now = loader.rest().server_time()
    results: dict[tuple[str, str], StreamSummary] = {}
    with database_for(db) as database, ThreadPoolExecutor(min(len(streams), workers)) as pool:
        futures = {}
        for position, (symbol, interval) in enumerate(streams):
            stream_end = min(end if end is not None else now, floor_open(now, interval))
            # Nothing exists before the listing: never page through years of empty windows.
            first = None if start is None else max(start, floor_open(listed[symbol], interval))
            plan = _plan(database, symbol, interval, first, stream_end, lookback_days * 86_400_000)
            futures[symbol, interval] = pool.submit(
                _run_stream, loader, database, plan, now, position
            )
        results = {key: future.result() for key, future in futures.items()}
    failed = [f"{s.symbol} {s.interval}: {s.error}" for s in results.values() if s.error]
    if failed:
        raise DownloadError("download failed for " + "; ".join(failed), results)
    return results
