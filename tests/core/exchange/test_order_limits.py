"""The order-rate budget against a moved clock: no test waits for the wall clock."""

import pytest

from core.exchange.order_limits import ORDER_LIMITS, OrderRateLimiter

pytestmark = pytest.mark.timeout(10)


class FakeTime:
    """A clock that only moves when the limiter sleeps (or the test says so)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _limiter(fake: FakeTime, **kwargs) -> OrderRateLimiter:
    return OrderRateLimiter(clock=fake.clock, sleep=fake.sleep, **kwargs)


def test_binance_limits_are_300_per_10_s_and_1200_per_minute():
    assert [(n, span) for n, span, _ in ORDER_LIMITS] == [(300, 10.0), (1200, 60.0)]


def test_the_301st_order_within_10_s_waits_for_the_first_to_leave_the_window():
    fake = FakeTime()
    limiter = _limiter(fake)
    for i in range(300):
        fake.now = 1000.0 + i * 0.01  # 300 orders over 2.99 s
        assert limiter.acquire() == 0.0
    assert fake.sleeps == []
    assert limiter.wait_s() == pytest.approx(10.0 - 2.99)
    assert limiter.acquire() == pytest.approx(10.0 - 2.99)
    assert fake.now == pytest.approx(1010.0)
    assert limiter.counts() == (300, 301)


def test_the_minute_window_binds_when_every_10_s_window_has_room():
    fake = FakeTime(0.0)
    limiter = _limiter(fake)
    for burst in range(4):  # 4 x 300 orders at 0, 10, 20, 30 s: 1200 in the minute
        fake.now = burst * 10.0
        for _ in range(300):
            limiter.acquire()
    fake.now = 40.0
    assert limiter.counts() == (0, 1200)
    assert limiter.acquire() == pytest.approx(20.0)  # until the burst at 0 s is a minute old
    assert fake.now == pytest.approx(60.0)


def test_a_higher_server_count_is_adopted_and_a_lower_one_ignored():
    fake = FakeTime()
    limiter = _limiter(fake)
    limiter.acquire()
    limiter.observe({"X-MBX-ORDER-COUNT-10S": "299", "X-MBX-ORDER-COUNT-1M": "0"})
    assert limiter.counts() == (299, 1)
    limiter.observe({"x-mbx-order-count-10s": "5"})  # lower than ours: ours stands
    assert limiter.counts() == (299, 1)
    assert limiter.acquire() == 0.0  # the 300th
    assert limiter.acquire() == pytest.approx(10.0)  # the server's orders count as made now


def test_a_pause_after_a_429_holds_the_next_order():
    fake = FakeTime()
    limiter = _limiter(fake)
    limiter.pause(7.5)
    assert limiter.wait_s() == pytest.approx(7.5)
    assert limiter.acquire() == pytest.approx(7.5)
    assert limiter.acquire() == 0.0


def test_malformed_headers_change_nothing():
    fake = FakeTime()
    limiter = _limiter(fake)
    limiter.observe({"X-MBX-ORDER-COUNT-10S": "many", "X-MBX-ORDER-COUNT-1M": "-3"})
    assert limiter.counts() == (0, 0)


def test_safety_lowers_every_window():
    fake = FakeTime()
    limiter = _limiter(fake, safety=0.5)
    for _ in range(150):
        assert limiter.acquire() == 0.0
    assert limiter.wait_s() == pytest.approx(10.0)
