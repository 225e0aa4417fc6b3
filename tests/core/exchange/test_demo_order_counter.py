"""The demo's per-account order rate limits: 300 per 10 s and 1,200 per minute, real time."""

import pytest

from core.exchange.demo.errors import BinanceError
from core.exchange.demo.order_routes import OrderCounter
from core.exchange.limits import ORDERS_1M, ORDERS_10S


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_the_301st_order_within_ten_seconds_is_refused_with_1015_and_http_429():
    clock = Clock()
    counter = OrderCounter(clock)
    counts = [counter.charge("a") for _ in range(ORDERS_10S)]
    assert counts[0] == (1, 1) and counts[-1] == (ORDERS_10S, ORDERS_10S)
    with pytest.raises(BinanceError) as refused:
        counter.charge("a")
    assert (refused.value.code, refused.value.status) == (-1015, 429)
    assert "TEN_SECONDS" in refused.value.msg
    assert counter.charge("b") == (1, 1)  # per account
    clock.now += 10.001
    assert counter.charge("a") == (1, ORDERS_10S + 1)


def test_the_minute_limit_holds_across_ten_second_windows():
    clock = Clock()
    counter = OrderCounter(clock)
    for _ in range(ORDERS_1M // ORDERS_10S):
        for _ in range(ORDERS_10S):
            counter.charge("a")
        clock.now += 10.5
    with pytest.raises(BinanceError) as refused:
        counter.charge("a")
    assert "ONE_MINUTE" in refused.value.msg
    clock.now += 60
    assert counter.charge("a") == (1, 1)
