"""sma, ema, wma and macd against TA-Lib; ichimoku by hand and against a plain-loop reference."""

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from indicadores import ema, ichimoku, macd, sma, wma
from tests.indicadores.helpers import assert_matches, candle_strategy, lookback, make_candles

periods = st.integers(1, 250)


@settings(max_examples=200, deadline=None)
@given(candle_strategy(), periods)
def test_moving_averages_match_talib(candles, period):
    close = candles.close
    for ours, reference, name in (
        (sma(close, period), talib.SMA(close, period), "SMA"),
        (ema(close, period), talib.EMA(close, period), "EMA"),
        (wma(close, period), talib.WMA(close, period), "WMA"),
    ):
        assert_matches(ours, reference, lookback(name, timeperiod=period), 0.0)


@settings(max_examples=200, deadline=None)
@given(candle_strategy(), st.integers(2, 30), st.integers(1, 40), st.integers(1, 30))
def test_macd_matches_talib(candles, fast, extra, signal):
    slow = fast + extra
    warmup = lookback("MACD", fastperiod=fast, slowperiod=slow, signalperiod=signal)
    ours = macd(candles.close, fast, slow, signal)
    reference = talib.MACD(candles.close, fast, slow, signal)
    for line, expected in zip(ours, reference, strict=True):
        # The lines hover around zero: compare them at the scale of the price.
        assert_matches(line, expected, warmup, float(candles.close.mean()))


def test_moving_averages_by_hand():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    # sma(3): (1 + 2 + 4) / 3, (2 + 4 + 8) / 3, (4 + 8 + 16) / 3
    np.testing.assert_allclose(sma(x, 3), [np.nan, np.nan, 7 / 3, 14 / 3, 28 / 3])
    # ema(3): k = 2 / (3 + 1) = 0.5, seed = sma of the first three = 7/3,
    # then 7/3 + 0.5 (8 - 7/3) = 31/6, then 31/6 + 0.5 (16 - 31/6) = 127/12
    np.testing.assert_allclose(ema(x, 3), [np.nan, np.nan, 7 / 3, 31 / 6, 127 / 12])
    # wma(3): (1*1 + 2*2 + 3*4) / 6 = 17/6, (1*2 + 2*4 + 3*8) / 6 = 34/6, (4 + 16 + 48) / 6
    np.testing.assert_allclose(wma(x, 3), [np.nan, np.nan, 17 / 6, 34 / 6, 68 / 6])
    # period 1 is the series itself
    for f in (sma, ema, wma):
        np.testing.assert_array_equal(f(x, 1), x)


def test_macd_seeds_the_fast_ema_where_the_slow_one_starts():
    # fast 2, slow 3, signal 2. Both EMAs start at index 2: fast seeded with mean(x[1:3]) = 3,
    # slow with mean(x[0:3]) = 7/3; at index 3 fast = 3 + 2/3 (8 - 3) = 19/3 and
    # slow = 7/3 + 1/2 (8 - 7/3) = 31/6. Lines: 3 - 7/3 = 2/3, then 19/3 - 31/6 = 7/6.
    # Signal (k = 2/3) is seeded at index 3 with mean(2/3, 7/6) = 11/12; all start at index 3.
    x = np.array([1.0, 2.0, 4.0, 8.0])
    line, signal, hist = macd(x, 2, 3, 2)
    np.testing.assert_allclose(line, [np.nan, np.nan, np.nan, 7 / 6])
    np.testing.assert_allclose(signal, [np.nan, np.nan, np.nan, 11 / 12])
    np.testing.assert_allclose(hist, [np.nan, np.nan, np.nan, 7 / 6 - 11 / 12])


HIGH = np.array([10.0, 12, 11, 15, 14, 13, 16, 12])
LOW = np.array([8.0, 9, 7, 11, 12, 10, 13, 9])
CLOSE = np.array([9.0, 11, 10, 14, 13, 11, 15, 10])
N = np.nan


def test_ichimoku_by_hand():
    lines = ichimoku(HIGH, LOW, CLOSE, tenkan=2, kijun=3, senkou=4)
    # tenkan: (max high + min low) / 2 of bars i-1..i; e.g. i=3: (max(11, 15) + min(7, 11)) / 2
    np.testing.assert_array_equal(lines.tenkan, [N, 10, 9.5, 11, 13, 12, 13, 12.5])
    # kijun over bars i-2..i; e.g. i=5: (max(15, 14, 13) + min(11, 12, 10)) / 2 = 12.5
    np.testing.assert_array_equal(lines.kijun, [N, N, 9.5, 11, 11, 12.5, 13, 12.5])
    # (tenkan + kijun) / 2 at bars 2, 3, 4 is 9.5, 11, (13 + 11) / 2 = 12, drawn 3 bars later
    np.testing.assert_array_equal(lines.senkou_a, [N, N, N, N, N, 9.5, 11, 12])
    # 4-bar midpoint at bar 3 = (15 + 7) / 2 = 11 and at bar 4 = (15 + 7) / 2 = 11, 3 bars later
    np.testing.assert_array_equal(lines.senkou_b, [N, N, N, N, N, N, 11, 11])
    # chikou[i] = close[i + 3]: the future, drawn 3 bars back
    np.testing.assert_array_equal(lines.chikou, [14, 13, 11, 15, 10, N, N, N])


def test_ichimoku_displacement_is_a_parameter():
    # TradingView draws the spans displacement - 1 bars ahead: displacement=2 for kijun 3.
    lines = ichimoku(HIGH, LOW, CLOSE, tenkan=2, kijun=3, senkou=4, displacement=2)
    # (tenkan + kijun) / 2 at bar 5 = (12 + 12.5) / 2 = 12.25, drawn at bar 7
    np.testing.assert_array_equal(lines.senkou_a, [N, N, N, N, 9.5, 11, 12, 12.25])
    np.testing.assert_array_equal(lines.senkou_b, [N, N, N, N, N, 11, 11, 11])
    np.testing.assert_array_equal(lines.chikou, [10, 14, 13, 11, 15, 10, N, N])


def _midpoints(high, low, n):
    out = np.full(len(high), np.nan)
    for i in range(n - 1, len(high)):
        out[i] = (max(high[i - n + 1 : i + 1]) + min(low[i - n + 1 : i + 1])) / 2
    return out


@settings(max_examples=50, deadline=None)
@given(
    candle_strategy(max_length=600),
    st.integers(1, 20),
    st.integers(1, 60),
    st.integers(1, 120),
    st.integers(1, 60),
)
def test_ichimoku_matches_a_plain_loop(candles, tenkan, kijun, senkou, displacement):
    high, low, close = candles.high, candles.low, candles.close
    lines = ichimoku(high, low, close, tenkan, kijun, senkou, displacement)
    conversion, base = _midpoints(high, low, tenkan), _midpoints(high, low, kijun)
    np.testing.assert_array_equal(lines.tenkan, conversion)
    np.testing.assert_array_equal(lines.kijun, base)
    d, kept = displacement, max(len(close) - displacement, 0)
    expected_a = np.full(len(close), np.nan)
    expected_b = np.full(len(close), np.nan)
    expected_a[d:] = ((conversion + base) / 2)[:kept]
    expected_b[d:] = _midpoints(high, low, senkou)[:kept]
    np.testing.assert_array_equal(lines.senkou_a, expected_a)
    np.testing.assert_array_equal(lines.senkou_b, expected_b)
    # chikou is exactly the close moved d bars back (the look-ahead line, by design)
    np.testing.assert_array_equal(lines.chikou[:kept], close[d:])
    assert np.isnan(lines.chikou[kept:]).all()


def test_ichimoku_defaults_are_9_26_52_displaced_26():
    candles = make_candles(3, 300, 100.0, 0.01)
    lines = ichimoku(candles.high, candles.low, candles.close)
    first = [int(np.flatnonzero(~np.isnan(line))[0]) for line in lines[:4]]
    assert first == [8, 25, 25 + 26, 51 + 26]
    np.testing.assert_array_equal(lines.chikou[:-26], candles.close[26:])


def test_macd_refuses_a_fast_period_not_below_the_slow_one():
    with pytest.raises(ValueError, match="fast"):
        macd(np.arange(50.0), 26, 12)
    with pytest.raises(ValueError, match="fast"):
        macd(np.arange(50.0), 12, 12)
