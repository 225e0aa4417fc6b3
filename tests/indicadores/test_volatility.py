"""bollinger, true_range and atr against TA-Lib, by hand, and bollinger's accuracy."""

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from indicadores import atr, bollinger, true_range
from tests.indicadores.helpers import assert_matches, candle_strategy, lookback, make_candles


@settings(max_examples=200, deadline=None)
@given(candle_strategy(), st.integers(2, 150), st.floats(0.0, 4.0))
def test_bollinger_matches_talib_bbands(candles, period, k):
    close = candles.close
    warmup = lookback("BBANDS", timeperiod=period, nbdevup=k, nbdevdn=k, matype=0)
    reference = talib.BBANDS(close, period, k, k, 0)
    # TA-Lib's deviation comes from running sums of squares of raw prices, which can leave it
    # ~1e-9 of the price off on near-flat windows: compare at the price scale (our own digits
    # are checked against an exact deviation below).
    for line, expected in zip(bollinger(close, period, k), reference, strict=True):
        assert_matches(line, expected, warmup, float(close.mean()))


@settings(max_examples=200, deadline=None)
@given(candle_strategy(), st.integers(1, 150))
def test_atr_and_true_range_match_talib(candles, period):
    high, low, close = candles.high, candles.low, candles.close
    ours = atr(high, low, close, period)
    assert_matches(ours, talib.ATR(high, low, close, period), lookback("ATR", timeperiod=period), 0)
    assert_matches(true_range(high, low, close), talib.TRANGE(high, low, close), 1, 0)


@pytest.mark.parametrize("volatility", [1e-2, 1e-4])
@pytest.mark.parametrize("period", [2, 20, 200])
def test_bollinger_deviation_keeps_its_digits(volatility, period):
    # Against a two-pass deviation in extended precision: BTC-sized prices with small moves are
    # where a sum of squares of raw prices would lose digits.
    close = make_candles(7, 20_000, 61_234.5, volatility).close
    windows = sliding_window_view(close.astype(np.longdouble), period)
    centred = windows - windows.mean(axis=1, keepdims=True)
    exact = np.sqrt((centred * centred).mean(axis=1))
    upper, middle, _ = bollinger(close, period, 1.0)
    error = np.abs((upper - middle)[period - 1 :] - exact) / close[period - 1 :]
    assert error.max() < 1e-12


def test_bollinger_and_atr_by_hand():
    x = np.array([1.0, 3.0, 5.0, 3.0])
    # period 2: means 2, 4, 4; population deviations |3 - 1| / 2 = 1, 1, 1; k = 2 -> ± 2
    upper, middle, lower = bollinger(x, 2, 2.0)
    np.testing.assert_allclose(middle, [np.nan, 2, 4, 4])
    np.testing.assert_allclose(upper, [np.nan, 4, 6, 6])
    np.testing.assert_allclose(lower, [np.nan, 0, 2, 2])
    high = np.array([11.0, 12, 14, 13])
    low = np.array([9.0, 10, 11, 8])
    close = np.array([10.0, 11, 13, 9])
    # true ranges from bar 1: max(12 - 10, |12 - 10|, |10 - 10|) = 2, max(3, 3, 0) = 3,
    # max(5, 0, 5) = 5; atr(2) = mean(2, 3) = 2.5 at bar 2, then 2.5 + (5 - 2.5) / 2 = 3.75
    np.testing.assert_allclose(true_range(high, low, close), [np.nan, 2, 3, 5])
    np.testing.assert_allclose(atr(high, low, close, 2), [np.nan, np.nan, 2.5, 3.75])


@pytest.mark.parametrize("k", [-1.0, float("nan"), float("inf"), "2", True])
def test_bollinger_refuses_a_bad_width(k):
    with pytest.raises(ValueError, match="k must be"):
        bollinger(np.arange(30.0), 5, k)
