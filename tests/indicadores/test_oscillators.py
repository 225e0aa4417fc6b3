"""rsi and estocastico against TA-Lib RSI and STOCH, and by hand."""

import numpy as np
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from indicadores import estocastico, rsi
from tests.indicadores.helpers import assert_matches, candle_strategy, lookback


@settings(max_examples=200, deadline=None)
@given(candle_strategy(), st.integers(2, 150))
def test_rsi_matches_talib(candles, period):
    ours = rsi(candles.close, period)
    assert_matches(ours, talib.RSI(candles.close, period), lookback("RSI", timeperiod=period), 100)


@settings(max_examples=200, deadline=None)
@given(candle_strategy(), st.integers(1, 40), st.integers(1, 12), st.integers(1, 12))
def test_estocastico_matches_talib_stoch(candles, k_period, k_smooth, d_period):
    high, low, close = candles.high, candles.low, candles.close
    reference = talib.STOCH(high, low, close, k_period, k_smooth, 0, d_period, 0)
    warmup = lookback("STOCH", fastk_period=k_period, slowk_period=k_smooth, slowd_period=d_period)
    ours = estocastico(high, low, close, k_period, k_smooth, d_period)
    for line, expected in zip(ours, reference, strict=True):
        assert_matches(line, expected, warmup, 100)


def test_rsi_by_hand():
    # changes +1, -1, +2, 0; period 2: first averages gain (1 + 0) / 2 = 0.5, loss 0.5 -> 50;
    # then gain 0.5 + (2 - 0.5) / 2 = 1.25, loss 0.5 + (0 - 0.5) / 2 = 0.25 -> 100 * 1.25 / 1.5;
    # then gain 1.25 / 2 = 0.625, loss 0.125 -> 100 * 0.625 / 0.75
    x = np.array([1.0, 2.0, 1.0, 3.0, 3.0])
    np.testing.assert_allclose(rsi(x, 2), [np.nan, np.nan, 50, 250 / 3, 250 / 3])
    # no gains and no losses at all: TA-Lib's convention is 0, not NaN
    np.testing.assert_array_equal(rsi(np.full(5, 7.0), 2), [np.nan, np.nan, 0, 0, 0])


def test_estocastico_by_hand():
    high = np.array([10.0, 12, 11, 15, 14])
    low = np.array([8.0, 9, 7, 11, 12])
    close = np.array([9.0, 11, 10, 14, 13])
    # fast %K(2) = 100 (close - lowest low) / (highest high - lowest low) over bars i-1..i:
    # i=1: 100 (11 - 8) / (12 - 8) = 75; i=2: 100 (10 - 7) / (12 - 7) = 60;
    # i=3: 100 (14 - 7) / (15 - 7) = 87.5; i=4: 100 (13 - 11) / (15 - 11) = 50
    # k = SMA2: (75 + 60) / 2 = 67.5, 73.75, 68.75; d = SMA2 of k: 70.625, 71.25
    # TA-Lib shows k only once d exists, from bar 2 + 2 + 2 - 3 = 3
    k, d = estocastico(high, low, close, 2, 2, 2)
    np.testing.assert_allclose(k, [np.nan, np.nan, np.nan, 73.75, 68.75])
    np.testing.assert_allclose(d, [np.nan, np.nan, np.nan, 70.625, 71.25])
    # a flat range gives 0 (TA-Lib), not a division by zero
    flat = np.full(4, 5.0)
    np.testing.assert_array_equal(estocastico(flat, flat, flat, 2, 1, 1).k, [np.nan, 0, 0, 0])
