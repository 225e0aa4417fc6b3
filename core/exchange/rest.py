"""Binance USDT-M REST adapter over python-binance: weight budget, 429 backoff, bounded retries."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException

from config.settings import redact_url
from core.errors import ExchangeError
from core.exchange.limits import DEFAULT_WEIGHT_LIMIT, MAX_KLINES
from core.intervals import check_interval

log = logging.getLogger(__name__)
T = TypeVar("T")

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"


def klines_weight(limit: int) -> int:
    """Request weight of /fapi/v1/klines by `limit`, as Binance documents it."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


class WeightLimiter:
    """Keeps every thread's requests inside one per-minute weight budget shared by the process.

    It trusts the server's `X-MBX-USED-WEIGHT-1M` (other processes on the same IP count too),
    aims at `safety` of the limit, and after a 429 holds every thread until `Retry-After` passes,
    which is how a client avoids the 418 ban Binance gives to those who keep going.
    """

    def __init__(self, limit: int = DEFAULT_WEIGHT_LIMIT, safety: float = 0.8) -> None:
        self.limit = limit
        self.safety = safety
        self._used = 0
        self._window = self._minute()
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self.waited_s = 0.0

    @staticmethod
    def _minute() -> int:
        return int(time.time() // 60)

    def acquire(self, weight: int) -> None:
        """Block until a request of `weight` fits the budget, then count it."""
        while True:
            with self._lock:
                now = time.time()
                if self._minute() != self._window:
                    self._window, self._used = self._minute(), 0
                budget = max(weight, int(self.limit * self.safety))
                if now >= self._paused_until and self._used + weight <= budget:
                    self._used += weight
                    return
                # Paused (after a 429): wait for the pause; over budget: for the next minute.
                wake = self._paused_until if now < self._paused_until else (self._window + 1) * 60.0
            pause = max(0.01, min(wake - now, 60.0))
            log.info("weight budget reached (%d/%d): waiting %.1f s", self._used, budget, pause)
            self.waited_s += pause
            time.sleep(pause)

    def observe(self, used_weight: int) -> None:
        """Adopt the server's count for this minute when it is higher than ours."""
        with self._lock:
            if self._minute() == self._window:
                self._used = max(self._used, used_weight)

    def pause(self, seconds: float) -> None:
        """Hold all requests for `seconds` (after a 429 or 418)."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.time() + seconds)


class BinanceRest:
    """The REST calls Kryptelion makes, against Binance or any host speaking its protocol.

    Not thread-safe (one HTTP session); give each thread its own instance and share a limiter.
    """

    def __init__(
        self,
        base_url: str,
        limiter: WeightLimiter | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        retries: int = 5,
        backoff_s: float = 0.5,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.shown_url = redact_url(self.base_url)  # what logs and errors show: no password
        self.client = binance_client(api_key, api_secret, timeout_s)
        self.client.FUTURES_URL = self.base_url + "/fapi"
        self.limiter = limiter or WeightLimiter()
        self.retries = retries
        self.backoff_s = backoff_s

    def _call(self, weight: int, request: Callable[[], T]) -> T:
        """Run `request` within the weight budget, retrying transient failures with backoff."""
        for attempt in range(self.retries + 1):
            self.limiter.acquire(weight)
            try:
                result = request()
                self._observe(self.client.response)
                return result
            except BinanceAPIException as error:
                self._observe(error.response)
                if error.status_code in (418, 429):
                    pause_s = retry_after(error.response, default=60.0)
                    log.warning(
                        "HTTP %s from %s: pausing %.0f s",
                        error.status_code,
                        self.shown_url,
                        pause_s,
                    )
                    self.limiter.pause(pause_s)
                    failure: Exception = error
                elif error.status_code >= 500:
                    failure = error
                else:
                    raise ExchangeError(
                        f"{error.message} (code {error.code})",
                        code=error.code,
                        status=error.status_code,
                    ) from None
            except (requests.RequestException, BinanceRequestException) as error:
                failure = error
            if attempt < self.retries:
                delay = self.backoff_s * 2**attempt * random.uniform(0.5, 1.5)
                log.info(
                    "request to %s failed (%s): retry %d in %.2f s",
                    self.shown_url,
                    type(failure).__name__,
                    attempt + 1,
                    delay,
                )
                time.sleep(delay)
        raise ExchangeError(
            f"{self.shown_url} unreachable after {self.retries + 1} attempts: "
            + redact_url(str(failure))
        )

    def _observe(self, response: Any) -> None:
        used = getattr(response, "headers", {}).get(WEIGHT_HEADER)
        if used is not None and str(used).isdigit():
            self.limiter.observe(int(used))

    def server_time(self) -> int:
        """The exchange's clock in epoch ms (the demo exchange's clock may run faster)."""
        return int(self._call(1, self.client.futures_time)["serverTime"])

    def exchange_info(self) -> dict[str, Any]:
        """Symbols, filters and rate limits; also teaches the limiter the server's weight limit."""
        info = self._call(1, self.client.futures_exchange_info)
        for rule in info.get("rateLimits", []):
            if rule.get("rateLimitType") == "REQUEST_WEIGHT" and rule.get("interval") == "MINUTE":
                self.limiter.limit = int(rule["limit"]) // max(1, int(rule.get("intervalNum", 1)))
        return info

    def klines(
        self,
        symbol: str,
        interval: str,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = MAX_KLINES,
    ) -> list[list[Any]]:
        """Raw 12-field kline rows (prices as strings), oldest first; the last may still be open."""
        check_interval(interval)
        params: dict[str, Any] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start_time is not None:
            params["startTime"] = start_time
        if end_time is not None:
            params["endTime"] = end_time
        return self._call(klines_weight(limit), lambda: self.client.futures_klines(**params))


def binance_client(api_key: str | None, api_secret: str | None, timeout_s: float) -> Client:
    """python-binance's Client, without the event loop it creates for each new thread.

    That loop serves only its WebSocket API, which Kryptelion does not use; left open in every
    web worker thread, it is reported as an error when the interpreter exits.
    """
    try:
        asyncio.get_event_loop()
        created = False
    except RuntimeError:  # this thread has no loop: the Client makes one
        created = True
    client = Client(api_key, api_secret, ping=False, requests_params={"timeout": timeout_s})
    if created:
        asyncio.set_event_loop(None)
        client.loop.close()
    return client


def retry_after(response: Any, default: float) -> float:
    """`Retry-After` in seconds (at least 1); `default` when it is absent or unreadable."""
    value = getattr(response, "headers", {}).get("Retry-After")
    try:
        return max(1.0, float(str(value)))
    except ValueError:
        return default
