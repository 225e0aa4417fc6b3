"""IndicatorCache: the same numbers as uncached calls, shared read-only results inside a `with`,
nothing cached outside one, an LRU byte budget, and arrays told apart by identity."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import indicadores
from indicadores.cache import IndicatorCache, memoized
from tests.indicadores.helpers import make_candles

N = 500
CANDLES = make_candles(seed=21, length=N, scale=31.7, volatility=1e-2, tick=True)
C = CANDLES

# Every public indicator, each with arguments other than its defaults where it has any.
CALLS: dict[str, Callable[[Any], Any]] = {
    "sma": lambda c: indicadores.sma(c.close, 12),
    "ema": lambda c: indicadores.ema(c.close, 12),
    "wma": lambda c: indicadores.wma(c.close, 12),
    "macd": lambda c: indicadores.macd(c.close, 6, 19, 5),
    "ichimoku": lambda c: indicadores.ichimoku(c.high, c.low, c.close),
    "bollinger": lambda c: indicadores.bollinger(c.close, 15, 2.5),
    "true_range": lambda c: indicadores.true_range(c.high, c.low, c.close),
    "atr": lambda c: indicadores.atr(c.high, c.low, c.close, 10),
    "rsi": lambda c: indicadores.rsi(c.close, 9),
    "estocastico": lambda c: indicadores.estocastico(c.high, c.low, c.close),
    "vwap": lambda c: indicadores.vwap(c.open_time, c.high, c.low, c.close, c.volume),
    "obv": lambda c: indicadores.obv(c.close, c.volume),
}


def test_every_public_indicator_is_covered() -> None:
    public = {name for name in indicadores.__all__ if name[0].islower()}
    assert public == set(CALLS)


def _lines(result: Any) -> tuple[np.ndarray, ...]:
    return tuple(result) if isinstance(result, tuple) else (result,)


def _same_bits(a: Any, b: Any) -> bool:
    return type(a) is type(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for x, y in zip(_lines(a), _lines(b), strict=True)
    )


@pytest.mark.parametrize("name", sorted(CALLS))
def test_cached_results_are_the_uncached_ones_shared_and_read_only(name: str) -> None:
    call = CALLS[name]
    plain = call(C)  # NaN warm-ups included: the bytes are compared
    with IndicatorCache() as cache:
        first = call(C)
        misses, hits = cache.misses, cache.hits  # atr's true_range is an entry of its own
        second = call(C)
        assert (cache.misses, cache.hits) == (misses, hits + 1)
    assert _same_bits(first, plain)
    assert second is first
    for line in _lines(first):
        assert not line.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            line[0] = 1.0
    for column in C:  # the inputs themselves stay writeable and unchanged
        assert column.flags.writeable
    assert all(x.flags.writeable for x in _lines(call(C)))


def test_nothing_is_cached_outside_a_with() -> None:
    cache = IndicatorCache()
    with cache:
        inside = indicadores.sma(C.close, 7)
    misses = cache.misses  # the average and the prefix sums it is made from
    outside = indicadores.sma(C.close, 7)
    assert outside is not inside and outside.flags.writeable
    assert indicadores.sma(C.close, 7) is not outside
    assert cache.hits == 0 and cache.misses == misses >= 1
    with cache:  # entering again finds what it had
        assert indicadores.sma(C.close, 7) is inside


def test_arguments_are_part_of_the_key() -> None:
    with IndicatorCache():
        assert indicadores.sma(C.close, 7) is not indicadores.sma(C.close, 8)
        assert indicadores.bollinger(C.close, 15, 2.0) is not indicadores.bollinger(
            C.close, 15, 2.5
        )
        assert indicadores.rsi(C.close) is indicadores.rsi(C.close)
        np.testing.assert_array_equal(indicadores.sma(C.close, 8), indicadores.sma(C.close[:], 8))


@memoized
def _scaled(x: np.ndarray, factor: int) -> np.ndarray:
    return x * factor


def test_least_recently_used_entries_go_first_within_the_byte_budget() -> None:
    line = N * 8
    with IndicatorCache(max_bytes=3 * line) as cache:
        first = {p: _scaled(C.close, p) for p in (2, 3, 4)}
        assert cache.bytes == 3 * line
        assert _scaled(C.close, 2) is first[2]  # now 3 is the least recently used
        fifth = _scaled(C.close, 5)
        assert cache.bytes == 3 * line <= cache.max_bytes
        assert _scaled(C.close, 2) is first[2]
        assert _scaled(C.close, 4) is first[4]
        assert _scaled(C.close, 5) is fifth
        assert cache.misses == 4
        again = _scaled(C.close, 3)  # evicted: computed anew (and evicts 2)
        assert again is not first[3] and cache.misses == 5
        np.testing.assert_array_equal(again, first[3])
        for period in range(6, 30):
            indicadores.macd(C.close, period, period + 5, 3)  # 3 lines an entry
            assert cache.bytes <= cache.max_bytes


def test_an_entry_above_the_budget_is_still_answered() -> None:
    with IndicatorCache(max_bytes=10) as cache:
        result = indicadores.sma(C.close, 5)
        np.testing.assert_array_equal(result, indicadores.sma(C.close.copy(), 5))
        assert len(cache._entries) == 1


def test_equal_values_in_another_array_are_another_entry() -> None:
    with IndicatorCache() as cache:
        original = indicadores.sma(C.close, 9)
        misses = cache.misses
        copy = indicadores.sma(C.close.copy(), 9)
        assert copy is not original and cache.misses == 2 * misses
        np.testing.assert_array_equal(copy, original)


@pytest.mark.parametrize("evict", [False, True])
def test_a_freed_array_never_answers_for_a_new_one(evict: bool) -> None:
    """Arrays are keyed by id, and an id is reused once its array is freed: a stale entry would
    answer for a new array at the old one's address. So an entry keeps its array alive (its id
    stays taken) until the entry is evicted, and only then is the array freed."""
    rng = np.random.default_rng(4)
    other = rng.normal(50, 1, N)
    with IndicatorCache(max_bytes=N * 8 if evict else 10**9):
        for _ in range(30):
            x, fresh = rng.normal(100, 1, N), rng.normal(200, 1, N)
            old, alive = indicadores.sma(x, 5), weakref.ref(x)
            del x
            assert alive() is not None  # the entry holds it: no other array can take its id
            if evict:
                indicadores.sma(other, 5)  # the budget holds one line: x's entry goes
                assert alive() is None
            y = fresh.copy()  # one allocation, at the freed address when the allocator likes
            new = indicadores.sma(y, 5)
            assert _same_bits(new, indicadores.sma.__wrapped__(y, 5))  # type: ignore[attr-defined]
            assert not np.array_equal(new, old, equal_nan=True)
            del y, new, old, fresh


@pytest.mark.parametrize("kind", [list, pd.Series])
def test_any_array_like_input_works_inside_a_cache(kind: type) -> None:
    """The indicators take any array-like (a list, a pandas column); inside a cache too."""
    values = kind(C.close.tolist())
    with IndicatorCache():
        np.testing.assert_array_equal(indicadores.sma(values, 5), indicadores.sma(C.close, 5))
