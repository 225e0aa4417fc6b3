"""The REST adapter: weights, bounded retries with backoff, 429 pauses, Binance errors."""

import socket
import time

import pytest

from core.errors import ExchangeError
from core.exchange.rest import BinanceRest, WeightLimiter, klines_weight


def test_klines_weight_follows_binance_table():
    assert [klines_weight(n) for n in (1, 99, 100, 499, 500, 1000, 1001, 1500)] == [
        1,
        1,
        2,
        2,
        5,
        5,
        10,
        10,
    ]


def test_unreachable_host_fails_clearly_after_bounded_retries():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens
    rest = BinanceRest(f"http://127.0.0.1:{port}", retries=2, backoff_s=0.01, timeout_s=1)
    start = time.monotonic()
    with pytest.raises(ExchangeError, match="unreachable after 3 attempts"):
        rest.server_time()
    assert time.monotonic() - start < 5


def test_binance_error_bodies_become_exchange_errors_with_their_code(demo_exchange):
    rest = BinanceRest(demo_exchange.rest_url)
    with pytest.raises(ExchangeError, match="Invalid symbol") as error:
        rest.klines("NOPEUSDT", "1m")
    assert (error.value.code, error.value.status) == (-1121, 400)


def test_exchange_info_teaches_the_limiter_the_server_limit(demo_exchange):
    rest = BinanceRest(demo_exchange.rest_url)
    rest.exchange_info()
    assert rest.limiter.limit == 1_000_000  # the demo without a budget announces no real limit


def test_a_pause_after_429_holds_every_request():
    limiter = WeightLimiter(limit=1000)
    limiter.pause(0.3)
    start = time.monotonic()
    limiter.acquire(1)
    assert time.monotonic() - start >= 0.29


def test_budget_blocks_until_the_next_minute_window():
    limiter = WeightLimiter(limit=10, safety=1.0)
    limiter.acquire(10)
    limiter._window -= 1  # pretend the minute is over: the budget is fresh again
    start = time.monotonic()
    limiter.acquire(10)
    assert time.monotonic() - start < 0.1
