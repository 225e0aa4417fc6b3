"""Candle repository against SQLite and PostgreSQL: upserts, range reads, gaps, stream stats."""

import numpy as np
import pytest

from core.intervals import MINUTE_MS
from core.models import Candle
from core.repository.candles import ALL_COLUMNS, Gap

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def _columns(n: int, start: int = T0, step: int = MINUTE_MS, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    close = 40_000 + np.cumsum(rng.normal(0, 10, n))
    return {
        "open_time": start + np.arange(n, dtype=np.int64) * step,
        "open": close - 1.5,
        "high": close + 5.25,
        "low": close - 7.125,
        "close": close,
        "volume": rng.uniform(1, 100, n),
        "quote_volume": rng.uniform(1e4, 1e6, n),
        "trades": rng.integers(1, 1000, n),
        "taker_buy_base": rng.uniform(0, 1, n),
        "taker_buy_quote": rng.uniform(0, 1, n),
    }


def test_upsert_is_idempotent_and_counts_real_changes(db):
    cols = _columns(500)
    assert db.candles.upsert("BTCUSDT", "1m", cols) == 500
    assert db.candles.upsert("BTCUSDT", "1m", cols) == 0
    assert db.candles.count("BTCUSDT", "1m") == 500
    changed = dict(cols, close=cols["close"].copy())
    changed["close"][10] += 1.0
    assert db.candles.upsert("BTCUSDT", "1m", changed) == 1
    frame = db.candles.read_frame("BTCUSDT", "1m")
    assert frame["close"].iloc[10] == changed["close"][10]
    assert len(frame) == 500


def test_range_reads_return_exact_values_in_order(db):
    cols = _columns(1000)
    db.candles.upsert("BTCUSDT", "1m", cols)
    db.candles.upsert("ETHUSDT", "1m", _columns(50, seed=2))
    arrays = db.candles.read_arrays(
        "BTCUSDT", "1m", start=T0 + 100 * MINUTE_MS, end=T0 + 200 * MINUTE_MS
    )
    assert arrays.open_time.dtype == np.int64 and arrays.close.dtype == np.float64
    np.testing.assert_array_equal(arrays.open_time, cols["open_time"][100:200])
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(arrays, name), cols[name][100:200])
    latest = db.candles.read_arrays("BTCUSDT", "1m", limit=10)
    np.testing.assert_array_equal(latest.open_time, cols["open_time"][-10:])
    frame = db.candles.read_frame("BTCUSDT", "1m", end=T0 + 5 * MINUTE_MS)
    assert list(frame.columns) == list(ALL_COLUMNS)
    np.testing.assert_array_equal(frame["trades"].to_numpy(), cols["trades"][:5])
    assert len(db.candles.read_arrays("SOLUSDT", "1m").open_time) == 0


def test_iter_frames_streams_the_whole_range_in_chunks(db):
    cols = _columns(1234)
    db.candles.upsert("BTCUSDT", "1m", cols)
    chunks = list(db.candles.iter_frames("BTCUSDT", "1m", chunk_rows=500))
    assert [len(c) for c in chunks] == [500, 500, 234]
    joined = np.concatenate([c["open_time"].to_numpy() for c in chunks])
    np.testing.assert_array_equal(joined, cols["open_time"])


def test_latest_and_earliest_times_and_stream_stats(db):
    assert db.candles.latest_open_time("BTCUSDT", "5m") is None
    db.candles.upsert("BTCUSDT", "5m", _columns(12, step=5 * MINUTE_MS))
    db.candles.upsert("BTCUSDT", "1m", _columns(3))
    assert db.candles.latest_open_time("BTCUSDT", "5m") == T0 + 11 * 5 * MINUTE_MS
    assert db.candles.earliest_open_time("BTCUSDT", "5m") == T0
    stats = {(s.symbol, s.interval): s for s in db.candles.streams()}
    assert stats["BTCUSDT", "5m"].count == 12 and stats["BTCUSDT", "1m"].count == 3
    assert stats["BTCUSDT", "1m"].last_open_time == T0 + 2 * MINUTE_MS


def test_gap_finder_reports_holes_head_and_tail(db):
    cols = _columns(100)
    keep = np.ones(100, dtype=bool)
    keep[[10, 11, 12, 50]] = False
    db.candles.upsert("BTCUSDT", "1m", {k: v[keep] for k, v in cols.items()})
    assert db.candles.find_gaps("BTCUSDT", "1m") == [
        Gap(T0 + 10 * MINUTE_MS, T0 + 12 * MINUTE_MS, 3),
        Gap(T0 + 50 * MINUTE_MS, T0 + 50 * MINUTE_MS, 1),
    ]
    bounded = db.candles.find_gaps(
        "BTCUSDT", "1m", start=T0 - 2 * MINUTE_MS, end=T0 + 102 * MINUTE_MS
    )
    assert bounded[0] == Gap(T0 - 2 * MINUTE_MS, T0 - MINUTE_MS, 2)
    assert bounded[-1] == Gap(T0 + 100 * MINUTE_MS, T0 + 101 * MINUTE_MS, 2)
    assert db.candles.find_gaps("ETHUSDT", "1m", start=T0, end=T0 + 3 * MINUTE_MS) == [
        Gap(T0, T0 + 2 * MINUTE_MS, 3)
    ]


def test_gap_finder_walks_calendar_months(db):
    jan, feb, mar, apr = 1_704_067_200_000, 1_706_745_600_000, 1_709_251_200_000, 1_711_929_600_000
    db.candles.upsert(
        "BTCUSDT",
        "1M",
        {k: v[[0, 3]] for k, v in _columns(4).items()} | {"open_time": np.array([jan, apr])},
    )
    assert db.candles.find_gaps("BTCUSDT", "1M") == [Gap(feb, mar, 2)]


def test_candle_objects_round_trip_and_open_candles_are_refused(db):
    candle = Candle("BTCUSDT", "1h", T0, 1.0, 2.0, 0.5, 1.5, 10.0, 15.0, 7, 4.0, 6.0)
    assert db.candles.upsert_candles([candle]) == 1
    frame = db.candles.read_frame("BTCUSDT", "1h")
    assert tuple(frame.iloc[0]) == (T0, 1.0, 2.0, 0.5, 1.5, 10.0, 15.0, 7, 4.0, 6.0)
    with pytest.raises(ValueError, match="open candle"):
        db.candles.upsert_candles([Candle("BTCUSDT", "1h", T0, 1, 1, 1, 1, 1, closed=False)])


def test_unknown_interval_is_refused(db):
    from core.errors import DataError

    with pytest.raises(DataError, match="invalid interval"):
        db.candles.upsert("BTCUSDT", "2m", _columns(1))


def test_numpy_integer_bounds_select_like_python_ints(db):
    cols = _columns(10)
    db.candles.upsert("BTCUSDT", "1m", cols)
    bounds = cols["open_time"][2], cols["open_time"][5]
    assert len(db.candles.read_arrays("BTCUSDT", "1m", *bounds).open_time) == 3
    assert db.candles.find_gaps("BTCUSDT", "1m", *bounds) == []


def test_limit_reads_the_latest_or_the_first_candles(db):
    cols = _columns(100)
    db.candles.upsert("BTCUSDT", "1m", cols)
    latest = db.candles.read_arrays("BTCUSDT", "1m", start=T0 + 10 * MINUTE_MS, limit=5)
    first = db.candles.read_frame("BTCUSDT", "1m", start=T0 + 10 * MINUTE_MS, limit=5, latest=False)
    np.testing.assert_array_equal(latest.open_time, cols["open_time"][95:])
    np.testing.assert_array_equal(first["open_time"].to_numpy(), cols["open_time"][10:15])
