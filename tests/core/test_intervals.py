"""Interval arithmetic and time parsing (UTC everywhere)."""

from datetime import UTC, datetime

import pytest

from core.errors import DataError
from core.intervals import (
    INTERVALS,
    MAX_MS,
    close_time,
    end_ms,
    floor_open,
    interval_ms,
    next_open,
    to_ms,
)


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_binance_interval_list_and_lengths():
    assert INTERVALS == (
        "1m",
        "3m",
        "5m",
        "15m",
        "30m",
        "1h",
        "2h",
        "4h",
        "6h",
        "8h",
        "12h",
        "1d",
        "3d",
        "1w",
        "1M",
    )
    assert interval_ms("1m") == 60_000 and interval_ms("1d") == 86_400_000
    with pytest.raises(DataError, match="valid: 1m"):
        interval_ms("7m")


def test_weeks_open_on_monday_and_months_on_the_first():
    wednesday = _ms(2024, 1, 3, 15, 30)
    assert floor_open(wednesday, "1w") == _ms(2024, 1, 1)
    assert floor_open(wednesday, "1M") == _ms(2024, 1, 1)
    assert next_open(_ms(2024, 1, 1), "1M") == _ms(2024, 2, 1)
    assert next_open(_ms(2024, 12, 1), "1M") == _ms(2025, 1, 1)
    assert close_time(_ms(2024, 2, 1), "1M") == _ms(2024, 3, 1) - 1
    assert floor_open(_ms(2024, 1, 3, 15, 31, 20), "15m") == _ms(2024, 1, 3, 15, 30)


def test_to_ms_accepts_datetimes_iso_strings_and_epoch_ms():
    expected = _ms(2024, 1, 1)
    assert to_ms("2024-01-01") == expected
    assert to_ms("2024-01-01T00:00:00Z") == expected
    assert to_ms("2024-01-01T01:00:00+01:00") == expected
    assert to_ms(datetime(2024, 1, 1)) == expected
    assert to_ms(expected) == expected and to_ms(str(expected)) == expected
    with pytest.raises(DataError, match="not an ISO date"):
        to_ms("yesterday")


def test_end_ms_a_date_alone_includes_its_day_an_instant_is_exclusive():
    assert end_ms("2024-06-30") == _ms(2024, 7, 1)
    assert end_ms(" 2024-12-31 ") == _ms(2025, 1, 1)
    assert end_ms("2024-06-30T00:00:00Z") == _ms(2024, 6, 30)
    assert end_ms("2024-06-30T12:00") == _ms(2024, 6, 30, 12)
    assert end_ms(datetime(2024, 6, 30)) == _ms(2024, 6, 30)
    assert end_ms(_ms(2024, 6, 30)) == end_ms(str(_ms(2024, 6, 30))) == _ms(2024, 6, 30)
    assert end_ms("9999-12-31") == MAX_MS  # the next midnight is past what a time can hold
    with pytest.raises(DataError, match="not an ISO date"):
        end_ms("2024-06-31")
