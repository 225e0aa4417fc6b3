"""How a sweep splits its combinations (tiles) and keeps its indicator memo working on workers."""

import pickle
from itertools import product

import numpy as np
import pytest

import indicadores
from backtesting.sweep import TILE, tiles
from indicadores.cache import IndicatorCache


@pytest.mark.parametrize("size", [1, 7, 64])
def test_tiles_hold_every_combination_once_within_one_tile_each(size):
    space = {"rapida": range(5, 255, 5), "lenta": range(20, 1020, 20), "modo": ["ambos", "largo"]}
    combos = [dict(zip(space, values, strict=True)) for values in product(*space.values())]
    chunks = tiles(combos, size)
    flat = [tuple(c.values()) for chunk in chunks for c in chunk]
    assert sorted(flat) == sorted(tuple(c.values()) for c in combos)
    for chunk in chunks:
        assert 1 <= len(chunk) <= size
        for name in ("rapida", "lenta"):  # at most TILE neighbouring values of each
            ranks = [list(space[name]).index(c[name]) for c in chunk]
            assert max(ranks) // TILE == min(ranks) // TILE
    # The fewest-valued parameter is outermost, then the later of equals (lenta before rapida).
    order = [(c["modo"], c["lenta"], c["rapida"]) for c in chunks[0]]
    assert order == sorted(order, key=lambda o: (["ambos", "largo"].index(o[0]), o[1], o[2]))


def test_tiles_sort_mixed_types_apart_and_take_nothing():
    assert tiles([], 8) == []
    mixed = [{"x": 1}, {"x": "a"}, {"x": 2.5}, {"x": None}]
    assert sorted(map(repr, (c["x"] for chunk in tiles(mixed, 8) for c in chunk))) == sorted(
        map(repr, (c["x"] for c in mixed))
    )


def test_an_unpickled_candle_column_is_one_memo_key():
    """A Dask worker unpickles the candles, whose dtype object is then equal to float64's but not
    float64's itself; the indicators must still take the array as it is, or every call would be
    a miss (a new view each time)."""
    close = pickle.loads(pickle.dumps(np.linspace(1.0, 2.0, 5_000)))
    with IndicatorCache() as cache:
        first = indicadores.sma(close, 20)
        misses = cache.misses
        for period in (20, 21, 22):
            indicadores.sma(close, period)
        assert indicadores.sma(close, 20) is first
        # Two more averages, each one entry: the filled series and its prefix sums are shared.
        assert cache.misses == misses + 2
