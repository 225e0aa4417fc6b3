"""Indicators against TA-Lib (an independent C implementation) and against hand-computed values."""

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from indicadores import (
    atr,
    bollinger,
    ema,
    estocastico,
    ichimoku,
    macd,
    obv,
    rsi,
    sma,
    vwap,
    wma,
)

RTOL = 1e-9


def _ohlcv(seed: int, n: int, scale: float):
    rng = np.random.default_rng(seed)
    close = scale * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    high = close * (1 + rng.uniform(0, 0.01, n))
    low = close * (1 - rng.uniform(0, 0.01, n))
    volume = rng.uniform(1, 1000, n)
    return high, low, close, volume


def _same(ours: np.ndarray, reference: np.ndarray, scale: float) -> None:
    """Same NaN warm-up as TA-Lib, then equal to 1e-9 relative (to the price scale for lines
    that cross zero, like MACD)."""
    assert np.array_equal(np.isnan(ours), np.isnan(reference))
    known = ~np.isnan(reference)
    np.testing.assert_allclose(ours[known], reference[known], rtol=RTOL, atol=RTOL * scale)


series = st.tuples(
    st.integers(0, 2**31), st.integers(50, 2000), st.sampled_from([0.05, 1.0, 300.0, 60_000.0])
)


@settings(max_examples=40, deadline=None)
@given(series, st.integers(1, 60))
def test_moving_averages_match_talib(data, period):
    _, _, close, _ = _ohlcv(*data)
    _same(sma(close, period), talib.SMA(close, period), 0)
    _same(ema(close, period), talib.EMA(close, period), 0)
    _same(wma(close, period), talib.WMA(close, period), 0)


@settings(max_examples=40, deadline=None)
@given(series, st.integers(2, 50))
def test_rsi_and_atr_match_talib(data, period):
    high, low, close, _ = _ohlcv(*data)
    _same(rsi(close, period), talib.RSI(close, period), 0)
    _same(atr(high, low, close, period), talib.ATR(high, low, close, period), 0)


@settings(max_examples=40, deadline=None)
@given(series, st.integers(2, 20), st.integers(3, 15), st.integers(2, 12))
def test_macd_matches_talib(data, fast, extra, signal):
    _, _, close, _ = _ohlcv(*data)
    slow = fast + extra
    for ours, reference in zip(
        macd(close, fast, slow, signal), talib.MACD(close, fast, slow, signal), strict=True
    ):
        _same(ours, reference, data[2])


@settings(max_examples=40, deadline=None)
@given(series, st.integers(2, 50), st.floats(0.5, 3.0))
def test_bollinger_matches_talib(data, period, k):
    _, _, close, _ = _ohlcv(*data)
    # TA-Lib's variance comes from running sums of squares, whose cancellation costs it about
    # 1e-9 of the band at low price levels: compare to 1e-9 of the price scale.
    for ours, reference in zip(
        bollinger(close, period, k), talib.BBANDS(close, period, k, k, 0), strict=True
    ):
        _same(ours, reference, data[2])


@settings(max_examples=40, deadline=None)
@given(series, st.integers(1, 20), st.integers(1, 8), st.integers(1, 8))
def test_stochastic_matches_talib_stoch(data, k_period, k_smooth, d_period):
    high, low, close, _ = _ohlcv(*data)
    reference = talib.STOCH(high, low, close, k_period, k_smooth, 0, d_period, 0)
    for ours, ref in zip(
        estocastico(high, low, close, k_period, k_smooth, d_period), reference, strict=True
    ):
        _same(ours, ref, 100)


@settings(max_examples=40, deadline=None)
@given(series)
def test_obv_matches_talib(data):
    _, _, close, volume = _ohlcv(*data)
    _same(obv(close, volume), talib.OBV(close, volume), float(volume.sum()))


def test_hand_computed_values():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    np.testing.assert_allclose(sma(x, 3), [np.nan, np.nan, 2, 3, 4, 5])
    # EMA(3): k = 0.5, seed = mean(1, 2, 3) = 2, then 2 + 0.5 (4 - 2) = 3, 4, 5
    np.testing.assert_allclose(ema(x, 3), [np.nan, np.nan, 2, 3, 4, 5])
    # WMA(3) at 3: (1*1 + 2*2 + 3*3) / 6 = 14 / 6
    np.testing.assert_allclose(wma(x, 3)[2], 14 / 6)
    # RSI(2) of 1, 2, 1: avg gain = 0.5, avg loss = 0.5 -> 50; then a gain of 2 -> gains 1.25,
    # losses 0.25 -> 100 * 1.25 / 1.5
    np.testing.assert_allclose(
        rsi(np.array([1.0, 2.0, 1.0, 3.0]), 2), [np.nan, np.nan, 50, 100 * 1.25 / 1.5]
    )
    np.testing.assert_allclose(
        obv(np.array([1.0, 2.0, 2.0, 1.0]), np.array([5.0, 3, 4, 2])), [5, 8, 8, 6]
    )


def test_ichimoku_hand_computed_and_aligned():
    n = 60
    high = np.arange(n, dtype=float) + 2
    low = np.arange(n, dtype=float)
    close = np.arange(n, dtype=float) + 1
    lines = ichimoku(high, low, close, 9, 26, 52)
    # tenkan at i: (max high of i-8..i + min low of i-8..i) / 2 = ((i + 2) + (i - 8)) / 2 = i - 3
    assert np.isnan(lines.tenkan[7]) and lines.tenkan[8] == 5 and lines.tenkan[30] == 27
    # kijun at i: ((i + 2) + (i - 25)) / 2 = i - 11.5
    assert np.isnan(lines.kijun[24]) and lines.kijun[25] == 13.5
    # senkou A at i is (tenkan + kijun) / 2 of bar i - 26: at 51 -> ((25 - 3) + (25 - 11.5)) / 2
    assert np.isnan(lines.senkou_a[50]) and lines.senkou_a[51] == (22 + 13.5) / 2
    # senkou B at i is the 52-bar midpoint of bar i - 26, first known at 51 + 26 = 77 > n
    assert np.isnan(lines.senkou_b).all()
    # chikou at i is close[i + 26]
    assert lines.chikou[0] == close[26] and np.isnan(lines.chikou[-26:]).all()


def test_vwap_resets_at_each_utc_day():
    day = 86_400_000
    times = np.array([0, 3_600_000, day, day + 60_000])
    high = np.array([12.0, 22.0, 31.0, 41.0])
    low = np.array([8.0, 18.0, 29.0, 39.0])
    close = np.array([10.0, 20.0, 30.0, 40.0])
    volume = np.array([1.0, 3.0, 2.0, 0.0])
    # typical prices 10, 20 | 30, 40 -> (10*1 + 20*3) / 4 = 17.5, then 30, then still 30
    np.testing.assert_allclose(vwap(times, high, low, close, volume), [10, 17.5, 30, 30])
    assert np.isnan(vwap(times[:1], high[:1], low[:1], close[:1], np.zeros(1)))[0]


def _all_lines(high, low, close, volume, times):
    return {
        "sma": sma(close, 7), "ema": ema(close, 7), "wma": wma(close, 7), "rsi": rsi(close, 7),
        **{f"macd.{i}": v for i, v in enumerate(macd(close, 5, 9, 4))},
        **{f"bb.{i}": v for i, v in enumerate(bollinger(close, 7))},
        "atr": atr(high, low, close, 7),
        **{f"stoch.{i}": v for i, v in enumerate(estocastico(high, low, close))},
        **{f"ichimoku.{i}": v for i, v in enumerate(ichimoku(high, low, close)[:4])},
        "vwap": vwap(times, high, low, close, volume), "obv": obv(close, volume),
    }  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 299))
def test_no_indicator_looks_ahead_and_inputs_are_untouched(seed, k):
    high, low, close, volume = _ohlcv(seed, 300, 100.0)
    times = 1_704_067_200_000 + np.arange(300) * 3_600_000
    copies = [a.copy() for a in (high, low, close, volume)]
    full = _all_lines(high, low, close, volume, times)
    prefix = _all_lines(high[:k], low[:k], close[:k], volume[:k], times[:k])
    for name, values in full.items():
        assert len(values) == 300, name
        np.testing.assert_array_equal(values[:k], prefix[name], err_msg=name)
    for original, copy in zip((high, low, close, volume), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "7"])
def test_bad_periods_and_shapes_are_refused(bad):
    with pytest.raises(ValueError, match="period"):
        sma(np.arange(10.0), bad)
    with pytest.raises(ValueError, match="length"):
        atr(np.ones(3), np.ones(4), np.ones(3), 2)
    with pytest.raises(ValueError, match="1-D"):
        ema(np.ones((2, 2)), 2)
