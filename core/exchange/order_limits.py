"""The account's order-rate budget on our side: Binance's per-10 s and per-minute order limits."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from core.exchange.limits import COUNT_1M_HEADER, COUNT_10S_HEADER, ORDERS_1M, ORDERS_10S

log = logging.getLogger(__name__)

# (orders, window seconds, the response header carrying the server's count of that window)
ORDER_LIMITS: tuple[tuple[int, float, str], ...] = (
    (ORDERS_10S, 10.0, COUNT_10S_HEADER),
    (ORDERS_1M, 60.0, COUNT_1M_HEADER),
)

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class _Window:
    """A sliding-window log of order times; at most `limit` within any `span_s` seconds."""

    def __init__(self, limit: int, span_s: float, header: str) -> None:
        self.limit, self.span_s, self.header = limit, span_s, header
        self.times: deque[float] = deque()

    def expire(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.span_s:
            self.times.popleft()

    def ready_at(self, now: float) -> float:
        """When one more order fits (now, if it fits already)."""
        self.expire(now)
        if len(self.times) < self.limit:
            return now
        return self.times[len(self.times) - self.limit] + self.span_s


class OrderRateLimiter:
    """Keeps new and modified orders inside every window of `limits`, shared by all threads.

    The exchange counts in fixed windows and other clients of the same account count too, so a
    higher count in its headers is adopted (as orders made now: the cautious reading). After a
    -1015 or a 429 every caller is held for the pause. Clock and sleep are injected so tests
    move time instead of waiting.
    """

    def __init__(
        self,
        limits: tuple[tuple[int, float, str], ...] = ORDER_LIMITS,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        safety: float = 1.0,
    ) -> None:
        self._windows = [_Window(max(1, int(n * safety)), span, hdr) for n, span, hdr in limits]
        self._clock, self._sleep = clock, sleep
        self._paused_until = float("-inf")
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def wait_s(self) -> float:
        """Seconds until one more order fits every window (0: now)."""
        with self._lock:
            return self._wait_s(self._clock())

    def _wait_s(self, now: float) -> float:
        ready = max([self._paused_until, *(w.ready_at(now) for w in self._windows)])
        return max(0.0, ready - now)

    def acquire(self) -> float:
        """Block (through the injected sleep) until an order fits, count it; the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                pause = self._wait_s(now)
                if pause <= 0:
                    for window in self._windows:
                        window.times.append(now)
                    self.waited_s += waited
                    return waited
            log.info("order rate budget reached: waiting %.2f s", pause)
            self._sleep(pause)
            waited += pause

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adopt the server's order counts (`X-MBX-ORDER-COUNT-*`) where they exceed ours."""
        with self._lock:
            now = self._clock()
            for window in self._windows:
                raw = _header(headers, window.header)
                if raw is None or not raw.isdigit():
                    continue
                window.expire(now)
                for _ in range(min(int(raw), window.limit) - len(window.times)):
                    window.times.append(now)

    def pause(self, seconds: float) -> None:
        """Hold every order for `seconds` (after -1015 or HTTP 429)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def counts(self) -> tuple[int, ...]:
        """Orders counted in each window now, in the order of `limits`."""
        with self._lock:
            now = self._clock()
            for window in self._windows:
                window.expire(now)
            return tuple(len(w.times) for w in self._windows)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """`name` from `headers`, matched without regard to case (requests' headers are, dicts not)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return None if value is None else str(value).strip()
