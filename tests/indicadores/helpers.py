"""Random candles for the indicator tests and the comparison against TA-Lib."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import talib.abstract
from hypothesis import strategies as st

RTOL = 1e-9
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MINUTE_MS = 60_000


class Candles(NamedTuple):
    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def make_candles(
    seed: int, length: int, scale: float, volatility: float, tick: bool = False
) -> Candles:
    """A log-normal random walk of closes with consistent opens, wicks and volumes; with `tick`
    every price is rounded to a tick of 1e-4 of the scale, so equal closes and flat ranges occur
    (edge cases for rsi, obv and the stochastic)."""
    rng = np.random.default_rng(seed)
    close = scale * np.exp(np.cumsum(rng.normal(0.0, volatility, length)))
    open_ = np.concatenate(([scale], close[:-1]))[:length]
    wicks = rng.uniform(0.0, volatility, (2, length))
    high = np.maximum(open_, close) * (1 + wicks[0])
    low = np.minimum(open_, close) * (1 - wicks[1])
    if tick:
        size = scale * 1e-4
        open_, high, low, close = (np.round(p / size) * size for p in (open_, high, low, close))
    volume = rng.lognormal(3.0, 1.0, length)
    open_time = START_MS + np.arange(length, dtype=np.int64) * MINUTE_MS
    return Candles(open_time, open_, high, low, close, volume)


def candle_strategy(min_length: int = 50, max_length: int = 2000) -> st.SearchStrategy[Candles]:
    """Random walks of realistic price scales (a meme coin to BTC) and per-bar volatilities."""
    return st.builds(
        make_candles,
        seed=st.integers(0, 2**32 - 1),
        length=st.integers(min_length, max_length),
        scale=st.sampled_from([0.0123, 0.5, 31.7, 2_450.0, 61_234.5]),
        volatility=st.sampled_from([1e-4, 1e-3, 1e-2, 3e-2]),
        tick=st.booleans(),
    )


def lookback(name: str, **params: float) -> int:
    """TA-Lib's own lookback (number of leading NaNs) for a function and its parameters."""
    return int(talib.abstract.Function(name, **params).lookback)


def leading_nans(values: np.ndarray) -> int:
    known = np.flatnonzero(~np.isnan(values))
    return int(known[0]) if len(known) else len(values)


def assert_matches(ours: np.ndarray, reference: np.ndarray, warmup: int, scale: float) -> None:
    """Same NaNs as TA-Lib, as many leading ones as TA-Lib's lookback, then equal to 1e-9
    relative (to the line's natural scale for lines near zero, e.g. MACD or OBV)."""
    assert ours.dtype == np.float64 and len(ours) == len(reference)
    assert leading_nans(ours) == min(warmup, len(ours))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
    known = ~np.isnan(reference)
    np.testing.assert_allclose(ours[known], reference[known], rtol=RTOL, atol=RTOL * scale)
