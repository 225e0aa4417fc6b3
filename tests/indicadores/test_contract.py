"""What every indicator promises: no look-ahead, inputs untouched, float64 of the same length,
documented NaN handling, checked arguments, and TA-Lib agreement over a year of minutes."""

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

import indicadores
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
    true_range,
    vwap,
    wma,
)
from tests.indicadores.helpers import Candles, assert_matches, candle_strategy, make_candles


def all_lines(c: Candles, p: int) -> dict[str, np.ndarray]:
    """Every output line of every indicator, by name, for one period p."""
    lines = {
        "sma": sma(c.close, p),
        "ema": ema(c.close, p),
        "wma": wma(c.close, p),
        "rsi": rsi(c.close, p),
        "atr": atr(c.high, c.low, c.close, p),
        "true_range": true_range(c.high, c.low, c.close),
        "obv": obv(c.close, c.volume),
        "vwap": vwap(c.open_time, c.high, c.low, c.close, c.volume),
    }
    for name, result in (
        ("macd", macd(c.close, p, p + 5, max(p // 2, 1))),
        ("bollinger", bollinger(c.close, p, 2.0)),
        ("estocastico", estocastico(c.high, c.low, c.close, p, 3, 2)),
        ("ichimoku", ichimoku(c.high, c.low, c.close, p, 2 * p, 4 * p, p + 1)),
    ):
        lines.update({f"{name}.{field}": values for field, values in result._asdict().items()})
    return lines


def with_holes(c: Candles, seed: int, count: int) -> Candles:
    """The candles with `count` prices or volumes knocked out (NaN) at random bars."""
    rng = np.random.default_rng(seed)
    columns = [c.open.copy(), c.high.copy(), c.low.copy(), c.close.copy(), c.volume.copy()]
    for _ in range(count):
        columns[rng.integers(1, 5)][rng.integers(len(c.close))] = np.nan
    return Candles(c.open_time, *columns)


@settings(max_examples=60, deadline=None)
@given(
    candle_strategy(min_length=10, max_length=9000),
    st.integers(1, 40),
    st.floats(0.0, 1.0),
    st.integers(0, 3),
    st.integers(0, 2**32 - 1),
)
def test_no_look_ahead_inputs_untouched_same_length(candles, period, cut, holes, seed):
    # Lengths up to 9000 cross the internal row boundaries of every building block.
    candles = with_holes(candles, seed, holes)
    k = max(1, int(cut * len(candles.close)))
    copies = [column.copy() for column in candles]
    full = all_lines(candles, period)
    prefix = all_lines(Candles(*(column[:k] for column in candles)), period)
    for original, copy in zip(candles, copies, strict=True):
        np.testing.assert_array_equal(original, copy)
    for name, values in full.items():
        assert values.dtype == np.float64 and len(values) == len(candles.close), name
        assert not any(np.may_share_memory(values, column) for column in candles), name
        if name == "ichimoku.chikou":
            continue  # close[i + displacement] by design; tested in test_trend
        np.testing.assert_array_equal(values[:k], prefix[name], err_msg=name)


def test_a_year_of_minutes_matches_talib():
    c = make_candles(11, 525_600, 30_000.0, 8e-4)
    h, lo, x = c.high, c.low, c.close
    assert_matches(sma(x, 30), talib.SMA(x, 30), 29, 0)
    assert_matches(ema(x, 200), talib.EMA(x, 200), 199, 0)
    assert_matches(wma(x, 50), talib.WMA(x, 50), 49, 0)
    assert_matches(rsi(x, 14), talib.RSI(x, 14), 14, 100)
    assert_matches(atr(h, lo, x, 14), talib.ATR(h, lo, x, 14), 14, 0)
    assert_matches(obv(x, c.volume), talib.OBV(x, c.volume), 0, float(c.volume.sum()))
    for ours, reference in zip(macd(x), talib.MACD(x), strict=True):
        assert_matches(ours, reference, 33, 30_000)
    for ours, reference in zip(bollinger(x, 20), talib.BBANDS(x, 20, 2, 2, 0), strict=True):
        assert_matches(ours, reference, 19, 0)
    for ours, reference in zip(estocastico(h, lo, x), talib.STOCH(h, lo, x), strict=True):
        assert_matches(ours, reference, 8, 100)


@settings(max_examples=100, deadline=None)
@given(candle_strategy(max_length=500), st.integers(0, 80), st.integers(2, 30))
def test_leading_nans_are_skipped_as_the_talib_wrapper_does(candles, lead, period):
    # Another indicator's warm-up fed in: the warm-up counts from the first number. (With no
    # number at all the wrapper reports OBV = the last volume; ours stays NaN.)
    lead = min(lead, len(candles.close) - 1)
    close = candles.close.copy()
    high = candles.high.copy()
    close[:lead] = np.nan
    high[: lead // 2] = np.nan
    low, volume = candles.low, candles.volume
    pairs = [
        (sma(close, period), talib.SMA(close, period)),
        (ema(close, period), talib.EMA(close, period)),
        (wma(close, period), talib.WMA(close, period)),
        (rsi(close, period), talib.RSI(close, period)),
        (atr(high, low, close, period), talib.ATR(high, low, close, period)),
        (true_range(high, low, close), talib.TRANGE(high, low, close)),
        (obv(close, volume), talib.OBV(close, volume)),
    ]
    for ours_lines, reference_lines in (
        (macd(close, period, period + 3, 4), talib.MACD(close, period, period + 3, 4)),
        (bollinger(close, period), talib.BBANDS(close, period, 2, 2, 0)),
        (
            estocastico(high, low, close, period, 3, 2),
            talib.STOCH(high, low, close, period, 3, 0, 2, 0),
        ),
    ):
        pairs.extend(zip(ours_lines, reference_lines, strict=True))
    for ours, reference in pairs:
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
        known = ~np.isnan(reference)
        scale = float(np.nanmax(np.abs(reference))) if known.any() else 0.0
        np.testing.assert_allclose(ours[known], reference[known], rtol=1e-9, atol=1e-9 * scale)


def test_a_nan_blanks_its_windows_or_everything_after_it():
    x = make_candles(5, 300, 100.0, 0.01).close
    holed = x.copy()
    holed[150] = np.nan
    window = np.zeros(300, dtype=bool)
    window[150:157] = True  # the seven windows of 7 values that contain bar 150
    for f in (sma, wma, lambda v, n: bollinger(v, n).upper):
        ours, clean = f(holed, 7), f(x, 7)
        assert np.isnan(ours[window]).all()
        np.testing.assert_allclose(ours[~window], clean[~window], rtol=1e-12)
    for f in (ema, rsi, lambda v, n: macd(v, n, n + 5, 3).signal):
        ours, clean = f(holed, 7), f(x, 7)
        assert np.isnan(ours[150:]).all()
        np.testing.assert_array_equal(ours[:150], clean[:150])


def test_infinity_counts_as_missing():
    x = make_candles(6, 100, 100.0, 0.01).close
    holed, infinite = x.copy(), x.copy()
    holed[40], infinite[40] = np.nan, np.inf
    for f in (sma, ema, wma, rsi):
        np.testing.assert_array_equal(f(infinite, 5), f(holed, 5))


def test_a_nan_in_vwap_blanks_the_rest_of_its_session_only():
    day = 86_400_000
    times = np.arange(6) * day // 3  # three bars a day
    price = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    volume = np.array([1.0, np.nan, 1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(
        vwap(times, price, price, price, volume), [10, np.nan, np.nan, 40, 45, 50]
    )


@pytest.mark.parametrize("length", [0, 1, 2])
def test_tiny_inputs_give_all_nan_lines_of_the_same_length(length):
    c = make_candles(1, length, 100.0, 0.01)
    for name, values in all_lines(c, 5).items():
        assert values.dtype == np.float64 and len(values) == length, name
        if name not in ("true_range", "obv", "vwap", "ichimoku.chikou"):
            assert np.isnan(values).all(), name


def test_lists_and_integers_are_accepted_as_float64():
    np.testing.assert_array_equal(sma([1, 2, 3, 4], 2), [np.nan, 1.5, 2.5, 3.5])
    assert ema(np.arange(10), 3).dtype == np.float64


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "7", None])
def test_bad_periods_are_refused(bad):
    x = np.arange(50.0)
    calls = [
        lambda: sma(x, bad),
        lambda: ema(x, bad),
        lambda: wma(x, bad),
        lambda: rsi(x, bad),
        lambda: atr(x, x, x, bad),
        lambda: bollinger(x, bad),
        lambda: macd(x, 3, 8, bad),
        lambda: estocastico(x, x, x, 5, bad),
        lambda: ichimoku(x, x, x, 9, 26, bad),
    ]
    if bad is not None:  # None means "the kijun period"
        calls.append(lambda: ichimoku(x, x, x, displacement=bad))
    for call in calls:
        with pytest.raises(ValueError, match="must be an integer >= 1"):
            call()


def test_bad_arrays_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        atr(np.ones(3), np.ones(4), np.ones(3), 2)
    with pytest.raises(ValueError, match="1-D"):
        ema(np.ones((2, 2)), 2)
    with pytest.raises(ValueError, match="numbers"):
        sma(np.array(["a", "b"]), 1)


def test_the_public_names():
    assert set(indicadores.__all__) == {
        "sma", "ema", "wma", "rsi", "macd", "bollinger", "atr", "true_range", "estocastico",
        "ichimoku", "vwap", "obv", "Macd", "Bollinger", "Estocastico", "Ichimoku",
    }  # fmt: skip
    assert macd(np.arange(40.0))._fields == ("macd", "signal", "hist")
    assert bollinger(np.arange(40.0))._fields == ("upper", "middle", "lower")
    assert estocastico(*[np.arange(40.0)] * 3)._fields == ("k", "d")
    fields = ("tenkan", "kijun", "senkou_a", "senkou_b", "chikou")
    assert ichimoku(*[np.arange(40.0)] * 3)._fields == fields
