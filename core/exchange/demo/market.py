"""The demo market: a clock that may run fast, and klines of any interval as pure functions."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from core.errors import DataError
from core.exchange.demo.model import (
    CLOSE,
    COLUMNS,
    HIGH,
    LOW,
    MINUTES_PER_DAY,
    OPEN,
    PROGRESS_STEPS,
    TRADES,
    VOLUME,
    DailyPath,
    MinuteProgress,
    day_minutes,
    minute_progress,
    partial_minute,
)
from core.exchange.demo.symbols import DAY_MS, SYMBOLS, SymbolSpec
from core.intervals import MINUTE_MS, check_interval, floor_open, interval_ms, next_open

HOUR_MS = 60 * MINUTE_MS
STEP_MS = MINUTE_MS // PROGRESS_STEPS  # how often the demo's last price moves
_DAY_INTERVALS = ("1d", "3d", "1w", "1M")
_TABLE_GROWTH_DAYS = 512


@dataclass(frozen=True, slots=True)
class DemoClock:
    """Demo time: `start_ms` when the clock started, then `speed` demo seconds per real second.

    Elapsed time is measured on the monotonic clock so a wall-clock adjustment can never make
    demo time run backwards (candles would un-close).
    """

    speed: float
    start_ms: int
    started_at: float  # time.monotonic() at start

    @classmethod
    def started(cls, speed: float = 1.0, start_ms: int | None = None) -> DemoClock:
        """A clock that starts now, at the wall time or at `start_ms` when given."""
        start = int(time.time() * 1000) if start_ms is None else start_ms
        return cls(speed, start, time.monotonic())

    def now_ms(self) -> int:
        """The demo instant in epoch ms."""
        return self.start_ms + int((time.monotonic() - self.started_at) * 1000 * self.speed)


@dataclass(frozen=True, slots=True)
class KlineBatch:
    """Consecutive klines of one symbol and interval; the last may still be open."""

    spec: SymbolSpec
    interval: str
    open_times: np.ndarray
    close_times: np.ndarray
    values: np.ndarray  # (n, 9) int64 in the symbol's price, step and quote units

    def __len__(self) -> int:
        return len(self.open_times)


@dataclass(slots=True)
class _Book:
    """Everything derived for one symbol: its daily path and lazily filled hour/day tables."""

    path: DailyPath
    hours: np.ndarray = field(default_factory=lambda: np.zeros((0, 24, COLUMNS), np.int64))
    days: np.ndarray = field(default_factory=lambda: np.zeros((0, COLUMNS), np.int64))
    filled: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


def _reduce(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Aggregate consecutive groups of kline rows; group g is rows[starts[g]:starts[g + 1]]."""
    out = np.empty((len(starts), COLUMNS), dtype=np.int64)
    ends = np.append(starts[1:], len(rows)) - 1
    out[:, OPEN] = rows[starts, OPEN]
    out[:, CLOSE] = rows[ends, CLOSE]
    out[:, HIGH] = np.maximum.reduceat(rows[:, HIGH], starts)
    out[:, LOW] = np.minimum.reduceat(rows[:, LOW], starts)
    out[:, VOLUME:] = np.add.reduceat(rows[:, VOLUME:], starts, axis=0)
    return out


def _combine(rows: np.ndarray, last: np.ndarray) -> np.ndarray:
    """One kline from closed rows (possibly none) followed by the still-open row `last`."""
    if not len(rows):
        return last.copy()
    return _reduce(np.vstack([rows, last]), np.zeros(1, dtype=np.intp))[0]


def _resolution(interval: str) -> int:
    if interval in _DAY_INTERVALS:
        return DAY_MS
    return HOUR_MS if interval_ms(interval) >= HOUR_MS else MINUTE_MS


def _shift_month(ms: int, months: int) -> int:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    index = moment.year * 12 + moment.month - 1 + months
    return int(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp() * 1000)


def _ceil_open(ms: int, interval: str) -> int:
    opened = floor_open(ms, interval)
    return opened if opened == ms else next_open(opened, interval)


def _opens_between(first: int, last: int, interval: str, limit: int, newest: bool) -> np.ndarray:
    """Open times in [first, last]: the first `limit`, or the last `limit` when `newest`."""
    if interval == "1M":
        if newest:
            first = max(first, _shift_month(last, -(limit - 1)))
        opens = [first]
        while len(opens) < limit and next_open(opens[-1], interval) <= last:
            opens.append(next_open(opens[-1], interval))
        return np.array(opens, dtype=np.int64)
    step = interval_ms(interval)
    count = min(limit, (last - first) // step + 1)
    base = last - (count - 1) * step if newest else first
    return base + step * np.arange(count, dtype=np.int64)


class DemoMarket:
    """Klines of every listed symbol as pure functions of (seed, symbol, time).

    The daily path of a symbol is generated once; a day's 1440 minutes are generated on demand
    (recently used days kept in an LRU) and folded into per-hour and per-day tables, so long
    pages of large intervals stay fast. Single-threaded: use it from one event loop.
    """

    def __init__(
        self, seed: int, symbols: Mapping[str, SymbolSpec] = SYMBOLS, cached_days: int = 64
    ) -> None:
        self.seed = seed
        self.symbols = symbols
        self._books: dict[str, _Book] = {}
        self._minutes: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._progress: OrderedDict[tuple[str, int], MinuteProgress] = OrderedDict()
        self._cached_days = cached_days

    def spec(self, symbol: str) -> SymbolSpec:
        """The listed symbol's spec; raises DataError for an unknown one."""
        try:
            return self.symbols[symbol]
        except KeyError:
            raise DataError(f"unknown demo symbol {symbol!r}") from None

    def klines(
        self,
        symbol: str,
        interval: str,
        now_ms: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> KlineBatch:
        """Klines with open time in [start_ms, end_ms] as Binance selects them, at demo `now_ms`.

        Only start: the first `limit` from it; otherwise the last `limit` up to end (or now).
        Nothing exists before the listing or after now; the candle containing now is partial.
        Raises DataError for an unknown symbol or interval, or a limit below 1.
        """
        spec = self.spec(symbol)
        check_interval(interval)
        if limit < 1:
            raise DataError(f"limit must be >= 1, not {limit}")
        opens = self._opens(spec, interval, now_ms, start_ms, end_ms, limit)
        if not len(opens):
            empty = np.zeros(0, dtype=np.int64)
            return KlineBatch(spec, interval, empty, empty, np.zeros((0, COLUMNS), np.int64))
        if interval == "1M":
            nexts = np.array([next_open(int(t), interval) for t in opens], dtype=np.int64)
        else:
            nexts = opens + interval_ms(interval)
        values = self._aggregate(self._book(spec), interval, opens, nexts, now_ms)
        return KlineBatch(spec, interval, opens, nexts - 1, values)

    def prepare(
        self,
        symbol: str,
        interval: str,
        now_ms: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
        max_days: int = 32,
    ) -> bool:
        """Generate up to `max_days` of the days a `klines` call needs; True while more remain.

        A cold page of a large interval can need years of minutes (~0.25 ms a day): a server
        calls this between other work so its streams keep flowing meanwhile.
        """
        spec = self.spec(symbol)
        check_interval(interval)
        if _resolution(interval) == MINUTE_MS:
            return False  # at most a month of minutes: generated within the request
        opens = self._opens(spec, interval, now_ms, start_ms, end_ms, limit)
        if not len(opens):
            return False
        book = self._book(spec)
        first = (max(int(opens[0]), spec.onboard_ms) - spec.onboard_ms) // DAY_MS
        last = (min(next_open(int(opens[-1]), interval), now_ms) - spec.onboard_ms) // DAY_MS
        missing = self._missing(book, first, last + 1)
        self._fill_days(book, missing[:max_days])
        return len(missing) > max_days

    def first_trade_id(self, symbol: str, open_ms: int) -> int:
        """Id of the first trade at or after `open_ms` (trade ids run on from the listing)."""
        spec = self.spec(symbol)
        book = self._book(spec)
        start = max(open_ms, spec.onboard_ms)
        day, offset = divmod(start - spec.onboard_ms, DAY_MS)
        book.path.ensure(day + 1)
        before = 0
        if offset:
            before = int(self._day_minutes(book, day)[: offset // MINUTE_MS, TRADES].sum())
        return int(book.path.trade_base[day]) + before + 1

    def minute_prices(self, symbol: str, minute_ms: int) -> np.ndarray:
        """The trade prices through the minute opening at `minute_ms`, in price units.

        PROGRESS_STEPS + 1 values: [k] is the last price at minute_ms + k x STEP_MS, [0] the
        open, [-1] the close; the same path the partial klines and streams show, so an order
        fills exactly where the chart trades. Raises DataError for an unknown symbol.
        """
        spec = self.spec(symbol)
        book = self._book(spec)
        day, offset = divmod(minute_ms - spec.onboard_ms, DAY_MS)
        rows = self._day_minutes(book, day)
        index = offset // MINUTE_MS
        return self._minute_progress(book, day * MINUTES_PER_DAY + index, rows[index]).prices

    def price_at(self, symbol: str, now_ms: int) -> int | None:
        """The last trade price at `now_ms` in price units; None before the listing."""
        if now_ms < self.spec(symbol).onboard_ms:
            return None
        minute = now_ms - now_ms % MINUTE_MS
        return int(self.minute_prices(symbol, minute)[(now_ms - minute) // STEP_MS])

    def _opens(self, spec, interval, now_ms, start_ms, end_ms, limit) -> np.ndarray:
        if now_ms < spec.onboard_ms:
            return np.zeros(0, dtype=np.int64)
        first = floor_open(spec.onboard_ms, interval)
        last = floor_open(now_ms, interval)
        if start_ms is not None:
            first = max(first, _ceil_open(start_ms, interval))
        if end_ms is not None:
            last = min(last, floor_open(end_ms, interval))
        if first > last:
            return np.zeros(0, dtype=np.int64)
        return _opens_between(first, last, interval, limit, newest=start_ms is None)

    def _book(self, spec: SymbolSpec) -> _Book:
        book = self._books.get(spec.symbol)
        if book is None:
            book = self._books[spec.symbol] = _Book(DailyPath(spec, self.seed))
        return book

    def _aggregate(self, book, interval, opens, nexts, now_ms) -> np.ndarray:
        """Kline values of the candles opening at `opens`: exact sums of closed units."""
        resolution = _resolution(interval)
        starts = np.maximum(opens, book.path.spec.onboard_ms)
        now_unit = now_ms // resolution * resolution
        closed_ends = np.minimum(nexts, now_unit)
        origin = int(starts[0])
        rows = self._units(book, resolution, origin, max(origin, int(closed_ends[-1])))
        first_unit = (starts - origin) // resolution
        values = np.empty((len(opens), COLUMNS), dtype=np.int64)
        is_open = bool(nexts[-1] > now_ms)
        closed = len(opens) - 1 if is_open else len(opens)
        if closed:
            end_unit = int((closed_ends[closed - 1] - origin) // resolution)
            values[:closed] = _reduce(rows[:end_unit], first_unit[:closed])
        if is_open:
            partial = self._partial_unit(book, resolution, now_ms)
            values[-1] = _combine(rows[int(first_unit[-1]) :], partial)
        return values

    def _units(self, book: _Book, resolution: int, start: int, end: int) -> np.ndarray:
        """Closed unit rows (minutes, hours or days) covering [start, end)."""
        if end <= start:
            return np.zeros((0, COLUMNS), dtype=np.int64)
        onboard = book.path.spec.onboard_ms
        first_day = (start - onboard) // DAY_MS
        last_day = (end - 1 - onboard) // DAY_MS
        skip = (start - onboard - first_day * DAY_MS) // resolution
        count = (end - start) // resolution
        if resolution == DAY_MS:
            self._fill(book, first_day, last_day + 1)
            return book.days[first_day : last_day + 1]
        if resolution == HOUR_MS:
            self._fill(book, first_day, last_day + 1)
            hours = book.hours[first_day : last_day + 1].reshape(-1, COLUMNS)
            return hours[skip : skip + count]
        days = [self._day_minutes(book, d) for d in range(first_day, last_day + 1)]
        minutes = days[0] if len(days) == 1 else np.concatenate(days)
        return minutes[skip : skip + count]

    def _partial_unit(self, book: _Book, resolution: int, now_ms: int) -> np.ndarray:
        """The unit (minute, hour or day) containing `now_ms`, as it stands at that instant."""
        minute_start = now_ms // MINUTE_MS * MINUTE_MS
        day, offset = divmod(minute_start - book.path.spec.onboard_ms, DAY_MS)
        rows = self._day_minutes(book, day)
        index = offset // MINUTE_MS
        progress = self._minute_progress(book, day * MINUTES_PER_DAY + index, rows[index])
        step = (now_ms - minute_start) * PROGRESS_STEPS // MINUTE_MS
        minute = partial_minute(rows[index], progress, step)
        if resolution == MINUTE_MS:
            return minute
        hour = _combine(rows[index // 60 * 60 : index], minute)
        if resolution == HOUR_MS:
            return hour
        return _combine(book.hours[day, : index // 60], hour)

    def _minute_progress(self, book: _Book, minute: int, row: np.ndarray) -> MinuteProgress:
        key = (book.path.spec.symbol, minute)
        progress = self._progress.get(key)
        if progress is None:
            progress = self._progress[key] = minute_progress(book.path, minute, row)
            if len(self._progress) > 64:
                self._progress.popitem(last=False)
        return progress

    def _day_minutes(self, book: _Book, day: int) -> np.ndarray:
        key = (book.path.spec.symbol, day)
        rows = self._minutes.get(key)
        if rows is not None:
            self._minutes.move_to_end(key)
            return rows
        rows = self._minutes[key] = day_minutes(book.path, day)
        if len(self._minutes) > self._cached_days:
            self._minutes.popitem(last=False)
        self._store(book, day, rows)
        return rows

    def _fill(self, book: _Book, first_day: int, end_day: int) -> None:
        """Make sure the hour and day tables hold days [first_day, end_day)."""
        self._fill_days(book, self._missing(book, first_day, end_day))

    def _missing(self, book: _Book, first_day: int, end_day: int) -> np.ndarray:
        self._grow(book, end_day)
        return np.flatnonzero(~book.filled[first_day:end_day]) + first_day

    def _fill_days(self, book: _Book, days: np.ndarray) -> None:
        for day in days.tolist():
            cached = self._minutes.get((book.path.spec.symbol, day))
            # Bulk fills bypass the minute LRU so a long page does not evict the recent days.
            self._store(book, day, cached if cached is not None else day_minutes(book.path, day))

    def _grow(self, book: _Book, days: int) -> None:
        book.path.ensure(days)
        if len(book.filled) >= days:
            return
        size = max(days, len(book.filled) + _TABLE_GROWTH_DAYS)
        grow = size - len(book.filled)
        book.hours = np.concatenate([book.hours, np.zeros((grow, 24, COLUMNS), np.int64)])
        book.days = np.concatenate([book.days, np.zeros((grow, COLUMNS), np.int64)])
        book.filled = np.concatenate([book.filled, np.zeros(grow, bool)])

    def _store(self, book: _Book, day: int, rows: np.ndarray) -> None:
        self._grow(book, day + 1)
        if not book.filled[day]:
            hours = _reduce(rows, np.arange(0, MINUTES_PER_DAY, 60))
            book.hours[day] = hours
            book.days[day] = _reduce(hours, np.zeros(1, dtype=np.intp))[0]
            book.filled[day] = True
