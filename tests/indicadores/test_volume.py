"""obv against TA-Lib; the UTC-session vwap by hand and against a plain loop."""

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from indicadores import obv, vwap
from tests.indicadores.helpers import START_MS, assert_matches, candle_strategy

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@settings(max_examples=200, deadline=None)
@given(candle_strategy())
def test_obv_matches_talib(candles):
    close, volume = candles.close, candles.volume
    assert_matches(obv(close, volume), talib.OBV(close, volume), 0, float(volume.sum()))


def test_obv_by_hand():
    # starts at the first volume 5; up +3, flat +0, down -2
    close = np.array([1.0, 2.0, 2.0, 1.0])
    np.testing.assert_array_equal(obv(close, np.array([5.0, 3, 4, 2])), [5, 8, 8, 6])


def test_vwap_restarts_at_midnight_utc():
    times = START_MS + np.array([0, HOUR_MS, DAY_MS - 60_000, DAY_MS, DAY_MS + HOUR_MS])
    high = np.array([12.0, 22.0, 13.0, 31.0, 41.0])
    low = np.array([8.0, 18.0, 11.0, 29.0, 39.0])
    close = np.array([10.0, 20.0, 12.0, 30.0, 40.0])
    volume = np.array([1.0, 3.0, 4.0, 2.0, 0.0])
    # typical prices (h + l + c) / 3: 10, 20, 12 | 30, 40
    # day 1: 10 * 1 / 1 = 10; (10 + 20 * 3) / 4 = 17.5; the 23:59 bar still belongs to day 1:
    # (70 + 12 * 4) / 8 = 14.75. Day 2 starts over at 00:00: 30 * 2 / 2 = 30; no volume: 30
    np.testing.assert_allclose(vwap(times, high, low, close, volume), [10, 17.5, 14.75, 30, 30])


def test_vwap_is_nan_until_the_session_trades_and_after_a_gap_day():
    times = START_MS + np.array([0, HOUR_MS, 3 * DAY_MS])
    prices = np.array([10.0, 20.0, 30.0])
    out = vwap(times, prices, prices, prices, np.array([0.0, 2.0, 5.0]))
    # nothing traded yet -> NaN; then 20; a bar three days later is a session of its own
    np.testing.assert_array_equal(out, [np.nan, 20, 30])


def test_vwap_takes_datetime64_as_well_as_milliseconds():
    times = START_MS + np.arange(50) * HOUR_MS
    rng = np.random.default_rng(1)
    price, volume = 100 + rng.random(50), rng.random(50)
    expected = vwap(times, price, price, price, volume)
    as_datetime = times.astype("datetime64[ms]").astype("datetime64[ns]")
    np.testing.assert_array_equal(vwap(as_datetime, price, price, price, volume), expected)


def _vwap_loop(times, high, low, close, volume):
    out = np.full(len(close), np.nan)
    day, weighted, traded = None, 0.0, 0.0
    for i in range(len(close)):
        if times[i] // DAY_MS != day:
            day, weighted, traded = times[i] // DAY_MS, 0.0, 0.0
        weighted += (high[i] + low[i] + close[i]) / 3 * volume[i]
        traded += volume[i]
        if traded > 0:
            out[i] = weighted / traded
    return out


@settings(max_examples=50, deadline=None)
@given(
    candle_strategy(max_length=6000),
    st.sampled_from([60_000, 5 * 60_000, HOUR_MS, 4 * HOUR_MS, DAY_MS]),
    st.integers(0, DAY_MS - 1),
    st.floats(0.0, 0.3),
)
def test_vwap_matches_a_plain_loop(candles, step, offset, gaps):
    # Irregular bars: random missing ones, a start at any time of day, sessions that span the
    # internal row boundaries.
    rng = np.random.default_rng(len(candles.close))
    skips = rng.geometric(1 - gaps, len(candles.close))
    times = START_MS + offset + np.cumsum(skips).astype(np.int64) * step
    volume = np.where(rng.random(len(times)) < 0.05, 0.0, candles.volume)
    args = (times, candles.high, candles.low, candles.close, volume)
    # Running sums restart every 512 bars, so a bar's rounding is eps times at most 512 bars'
    # worth of volume against its own session's: ~1e-12 here, 1e-10 leaves room.
    np.testing.assert_allclose(vwap(*args), _vwap_loop(*args), rtol=1e-10)


@pytest.mark.parametrize(
    ("times", "message"),
    [
        (np.array([2, 1, 3]), "must not decrease"),
        (np.array([0.5, 1.0, 2.0]), "milliseconds"),
        (np.array(["2024-01-01", "NaT", "2024-01-02"], dtype="datetime64[ms]"), "NaT"),
        (np.zeros((3, 1), dtype=np.int64), "1-D"),
        (np.arange(4), "differ in length"),
    ],
)
def test_vwap_refuses_bad_times(times, message):
    prices = np.ones(3)
    with pytest.raises(ValueError, match=message):
        vwap(times, prices, prices, prices, prices)
