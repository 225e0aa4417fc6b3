"""Binance kline intervals and UTC time arithmetic shared by storage, downloads and the demo."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from core.errors import DataError

MINUTE_MS = 60_000
DAY_MS = 1440 * MINUTE_MS
# The last millisecond of year 9999: the latest time a datetime (and our columns) can hold.
MAX_MS = 253_402_300_799_999
_FIXED_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
    "3d": 3 * 1440 * MINUTE_MS,
    "1w": 7 * 1440 * MINUTE_MS,
}
INTERVALS: tuple[str, ...] = (*_FIXED_MS, "1M")
# Binance weeks open on Monday; the epoch (1970-01-01) was a Thursday.
_WEEK_OFFSET_MS = 4 * 1440 * MINUTE_MS
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def check_interval(interval: str) -> str:
    """Return `interval` unchanged, or raise DataError listing the valid ones."""
    if interval not in INTERVALS:
        raise DataError(f"invalid interval {interval!r}; valid: {', '.join(INTERVALS)}")
    return interval


def interval_ms(interval: str) -> int:
    """Nominal length in ms; `1M` counts as 30 days (use `next_open` for exact month steps)."""
    check_interval(interval)
    return _FIXED_MS.get(interval, 30 * 1440 * MINUTE_MS)


def _month_start(ms: int, add: int = 0) -> int:
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    month_index = dt.year * 12 + dt.month - 1 + add
    start = datetime(month_index // 12, month_index % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp() * 1000)


def floor_open(ms: int, interval: str) -> int:
    """Open time of the candle of `interval` that contains instant `ms`."""
    if interval == "1M":
        return _month_start(ms)
    step = interval_ms(interval)
    if interval == "1w":
        return (ms - _WEEK_OFFSET_MS) // step * step + _WEEK_OFFSET_MS
    return ms // step * step


def next_open(open_time: int, interval: str) -> int:
    """Open time of the candle after the one opening at `open_time` (exact for months)."""
    if interval == "1M":
        return _month_start(open_time, 1)
    return open_time + interval_ms(interval)


def close_time(open_time: int, interval: str) -> int:
    """Binance's closeTime: the last millisecond of the candle."""
    return next_open(open_time, interval) - 1


def to_ms(value: datetime | str | int | float) -> int:
    """Epoch milliseconds (UTC) from a datetime, an ISO string, or a number already in ms.

    Naive datetimes and ISO strings without an offset are taken as UTC, as everywhere in Kryptelion.
    """
    if isinstance(value, bool):
        raise DataError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        return _in_range(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return _in_range(int(text))
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise DataError(f"not an ISO date or epoch ms: {text!r}") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return _in_range(int(value.timestamp() * 1000))
    raise DataError(f"not a time: {value!r}")


def end_ms(value: datetime | str | int | float) -> int:
    """The exclusive end (epoch ms) of a range whose end a user typed: `run.py --end`, `end_date`.

    The one end rule: a date alone (`2024-06-30`) includes that whole UTC day, so the range ends
    at the next midnight; an instant (a datetime, ISO text with a time, epoch ms) ends the range
    exclusively, as given. Typed dates name days, typed instants name boundaries. Raises
    DataError as `to_ms` does.
    """
    ms = to_ms(value)
    if isinstance(value, str) and _DATE_ONLY.fullmatch(value.strip()):
        # Year 9999's next midnight is out of range; its last candle opens before MAX_MS anyway.
        return min(ms + DAY_MS, MAX_MS)
    return ms


def _in_range(ms: int | float) -> int:
    """`ms` as an int when it lies between the epoch and the end of year 9999, else DataError
    (the range every database column and datetime can hold)."""
    if not 0 <= ms <= MAX_MS:  # also False for NaN
        raise DataError(f"epoch ms {ms!r} is outside 0 .. {MAX_MS} (1970 to 9999)")
    return int(ms)


def ms_to_iso(ms: int) -> str:
    """ISO 8601 UTC text for logs, file names and JSON."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
