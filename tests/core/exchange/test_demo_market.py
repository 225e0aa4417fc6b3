"""The demo market: exact aggregation, seeded determinism, tick grids and the partial candle."""

import time
from decimal import Decimal

import numpy as np
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from core.exchange.demo import SYMBOLS, DemoExchangeThread, DemoMarket, DemoOptions
from core.exchange.demo.model import (
    PROGRESS_STEPS,
    DailyPath,
    day_minutes,
    minute_progress,
    partial_minute,
)
from core.intervals import floor_open, interval_ms, to_ms

pytestmark = pytest.mark.timeout(60)

NOW = int(time.time() * 1000)


@pytest.fixture(scope="module")
def frozen_exchange():
    """A demo exchange whose clock barely moves, so successive requests see the same instant.

    It starts 100 ms into a minute and runs 1 ms per real second: for minutes of real time it
    stays inside the same 250 ms step of the open candle's progress.
    """
    options = DemoOptions(speed=0.001, seed=7, start_ms=NOW // 60_000 * 60_000 + 100)
    with DemoExchangeThread(options) as exchange:
        yield exchange


def _klines(exchange, symbol, interval, **params):
    params = {"symbol": symbol, "interval": interval, **params}
    response = requests.get(exchange.rest_url + "/fapi/v1/klines", params=params, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def _aggregate(rows: list[list]) -> list:
    """What a candle made of `rows` (consecutive 1m klines) must be, as Decimals."""
    d = [[Decimal(x) if isinstance(x, str) else x for x in row] for row in rows]
    total = [sum(r[i] for r in d) for i in (5, 7, 8, 9, 10)]
    return [d[0][1], max(r[2] for r in d), min(r[3] for r in d), d[-1][4], *total]


def _as_decimals(row: list) -> list:
    fields = (1, 2, 3, 4, 5, 7, 8, 9, 10)
    return [Decimal(row[i]) if isinstance(row[i], str) else row[i] for i in fields]


@settings(max_examples=30, deadline=None)
@given(
    symbol=st.sampled_from(sorted(SYMBOLS)),
    interval=st.sampled_from(["5m", "1h", "1d"]),
    moment=st.integers(to_ms("2020-08-01"), NOW - 3 * 86_400_000),
)
def test_every_candle_is_the_exact_aggregation_of_its_minutes(
    frozen_exchange, symbol, interval, moment
):
    size = interval_ms(interval) // 60_000
    count = max(1, min(3, 1440 // size))
    start = floor_open(moment, interval)
    candles = _klines(frozen_exchange, symbol, interval, startTime=start, limit=count)
    minutes = _klines(frozen_exchange, symbol, "1m", startTime=start, limit=size * count)
    assert len(candles) == count and len(minutes) == size * count
    for i, candle in enumerate(candles):
        assert candle[0] == minutes[i * size][0]
        assert _as_decimals(candle) == _aggregate(minutes[i * size : (i + 1) * size])


@pytest.mark.parametrize("interval", ["15m", "4h", "1d", "1w", "1M"])
def test_the_open_candle_aggregates_its_minutes_up_to_now(frozen_exchange, interval):
    candle = _klines(frozen_exchange, "BTCUSDT", interval, limit=1)[0]
    minutes, start = [], candle[0]
    while True:
        page = _klines(frozen_exchange, "BTCUSDT", "1m", startTime=start, limit=1500)
        minutes += page
        if len(page) < 1500:
            break
        start = page[-1][0] + 60_000
    assert _as_decimals(candle) == _aggregate(minutes)


def test_same_seed_same_candles_across_instances_and_other_seed_differs():
    pages = {}
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        with DemoExchangeThread(DemoOptions(seed=seed)) as exchange:
            pages[name] = [
                _klines(exchange, "BTCUSDT", "1m", startTime=to_ms("2020-01-01"), limit=500),
                _klines(exchange, "ETHUSDT", "1d", endTime=to_ms("2024-01-01"), limit=300),
            ]
    assert pages["a"] == pages["b"]
    assert pages["a"][0] != pages["c"][0] and pages["a"][1] != pages["c"][1]


def test_minutes_lie_on_the_tick_and_step_grids_and_chain_opens_to_closes():
    market = DemoMarket(seed=3)
    for symbol, spec in SYMBOLS.items():
        rows = market.klines(symbol, "1m", NOW, start_ms=spec.onboard_ms + 86_400_000, limit=1500)
        values = rows.values
        assert (values[:, :4] % spec.tick_units == 0).all()
        assert (values[1:, 0] == values[:-1, 3]).all()
        assert (values[:, 2] <= np.minimum(values[:, 0], values[:, 3])).all()
        assert (values[:, 1] >= np.maximum(values[:, 0], values[:, 3])).all()
        assert (values[:, 7] <= values[:, 4]).all() and (values[:, 6] >= 1).all()


def test_a_minute_unfolds_monotonically_into_its_final_kline():
    path = DailyPath(SYMBOLS["ETHUSDT"], seed=5)
    row = day_minutes(path, 1000)[700]
    progress = minute_progress(path, 1000 * 1440 + 700, row)
    states = np.array([partial_minute(row, progress, s) for s in range(PROGRESS_STEPS + 1)])
    assert (states[:, 0] == row[0]).all() and states[0, 3] == row[0]
    assert (np.diff(states[:, 1]) >= 0).all() and (np.diff(states[:, 2]) <= 0).all()
    assert (np.diff(states[:, 4:], axis=0) >= 0).all()
    assert (states[-1] == row).all()


def test_no_candle_after_now_and_nothing_before_listing():
    market = DemoMarket(seed=1)
    latest = market.klines("BTCUSDT", "1h", NOW, limit=3)
    assert latest.open_times[-1] == floor_open(NOW, "1h") and latest.close_times[-1] > NOW
    assert len(market.klines("BTCUSDT", "1m", NOW, start_ms=NOW + 60_000)) == 0
    assert len(market.klines("DOGEUSDT", "1d", NOW, end_ms=to_ms("2020-07-09"))) == 0
