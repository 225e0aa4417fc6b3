"""The trading client's transport: signed requests inside the order-rate and weight budgets.

Every order carries a client id chosen by the caller, so one intent is at most one order: after a
timeout, a 5xx or -1007 (sent, status unknown) `_submit` asks the exchange for that id and
resends only when the exchange says it has none. Secrets (API secret, signatures, listen keys)
never reach a log line or an exception message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
from binance.exceptions import BinanceAPIException, BinanceRequestException

from config.settings import redact_url
from core.errors import (
    ExchangeError,
    OutcomeUnknownError,
    RateLimitedError,
    TimestampError,
    UnknownOrderError,
)
from core.exchange.binance_errors import DUPLICATE_CLIENT_ID, SEND_STATUS_UNKNOWN, map_error, scrub
from core.exchange.binance_fields import integer
from core.exchange.order_limits import OrderRateLimiter
from core.exchange.rest import WEIGHT_HEADER, WeightLimiter, binance_client, retry_after

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a request costs in IP weight (Binance's documented figures, rounded up).
W_ORDER, W_QUERY, W_ACCOUNT, W_ALL_OPEN, W_BRACKETS_ALL = 1, 1, 5, 40, 20


class TradingTransport:
    """Signed requests to Binance or any host speaking its protocol, each intent executed at most
    once; TradingClient builds the trading calls on it.

    Thread-safe: one lock serialises the HTTP session; limiters are shared by construction.
    `sync_clock` measures the server-time offset at start, else `time_offset_ms` is used (the
    demo exchange, whose clock may run fast, also accepts the local clock, so its factory
    passes False); a -1021 re-syncs once and retries that request, which the exchange never
    executed.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str,
        *,
        sync_clock: bool = True,
        time_offset_ms: int = 0,
        weight_limiter: WeightLimiter | None = None,
        order_limiter: OrderRateLimiter | None = None,
        timeout_s: float = 10.0,
        attempts: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.shown_url = redact_url(self.base_url)
        self._client = binance_client(api_key, api_secret, timeout_s)
        self._client.FUTURES_URL = self.base_url + "/fapi"
        self._client.timestamp_offset = time_offset_ms
        self.weights = weight_limiter or WeightLimiter()
        self.orders = order_limiter or OrderRateLimiter(sleep=sleep)
        self.attempts, self.backoff_s, self._sleep = max(1, attempts), backoff_s, sleep
        self._lock = threading.Lock()
        if sync_clock:
            self.sync_clock()

    @property
    def time_offset_ms(self) -> int:
        """Server time minus the local clock, as added to every signed timestamp."""
        return int(self._client.timestamp_offset)

    def sync_clock(self) -> int:
        """Measure the offset from `/fapi/v1/time` (midpoint of the round trip); returns it."""
        before = time.time()
        answer = self._read(self._client.futures_time, {}, W_QUERY)
        after = time.time()
        offset = integer(answer, "serverTime", "server time") - round((before + after) * 500)
        self._client.timestamp_offset = offset
        log.info("server clock offset: %+d ms", offset)
        return offset

    def _request(
        self, call: Callable[..., Any], params: Mapping[str, str], weight: int, order: bool
    ) -> Any:
        """One request inside the budgets; on -1021 re-sync the clock once and retry.

        Raises the mapped ExchangeError; OutcomeUnknownError when it may or may not have run.
        """
        resynced = False
        while True:
            if order:
                self.orders.acquire()
            self.weights.acquire(weight)
            try:
                return self._once(call, params)
            except TimestampError:
                if resynced:
                    raise
                resynced = True
                log.warning("timestamp outside recvWindow: re-syncing the clock")
                self.sync_clock()

    def _once(self, call: Callable[..., Any], params: Mapping[str, str]) -> Any:
        result: Any = None
        response: Any = None
        failure: ExchangeError | None = None
        with self._lock:
            try:
                # A copy: python-binance adds timestamp and signature to the dict it is given.
                result = call(**dict(params))
                response = self._client.response
            except BinanceAPIException as error:
                response, failure = error.response, self._api_error(error)
            except (requests.RequestException, BinanceRequestException) as error:
                failure = OutcomeUnknownError(
                    f"{self.shown_url}: {type(error).__name__}: {scrub(str(error))}"
                )
        self._observe(response)
        if failure is not None:
            raise failure
        return result

    def _api_error(self, error: BinanceAPIException) -> ExchangeError:
        code, status = error.code, error.status_code
        if code == SEND_STATUS_UNKNOWN or status >= 500:
            return OutcomeUnknownError(
                f"{self.shown_url}: HTTP {status}: {scrub(str(error.message))}", code, status
            )
        pause_s = retry_after(error.response, default=1.0 if code == -1015 else 60.0)
        mapped = map_error(code, status, str(error.message), pause_s)
        if isinstance(mapped, RateLimitedError):
            limiter = self.orders if code == -1015 else self.weights
            limiter.pause(pause_s)
            log.warning("rate limited (HTTP %s, code %s): pausing %.0f s", status, code, pause_s)
        return mapped

    def _observe(self, response: Any) -> None:
        headers = getattr(response, "headers", None)
        if headers is None:
            return
        self.orders.observe(headers)
        used = headers.get(WEIGHT_HEADER)
        if used is not None and str(used).isdigit():
            self.weights.observe(int(used))

    def _backoff(self, attempt: int) -> None:
        self._sleep(self.backoff_s * 2**attempt)

    def _read(self, call: Callable[..., Any], params: Mapping[str, str], weight: int) -> Any:
        """A request safe to repeat (a read, or a write whose repeat changes nothing)."""
        for attempt in range(self.attempts):
            try:
                return self._request(call, params, weight, order=False)
            except (OutcomeUnknownError, RateLimitedError) as error:
                if attempt == self.attempts - 1 or error.status == 418:
                    raise
                log.info("%s: retry %d (%s)", self.shown_url, attempt + 1, type(error).__name__)
                if isinstance(error, OutcomeUnknownError):
                    self._backoff(attempt)
        raise AssertionError("unreachable")

    def _submit(self, send: Callable[[], T], lookup: Callable[[], T | None], what: str) -> T:
        """At most one execution of an intent: after an unknown outcome, ask (`lookup`) before
        any resend, and resend only when the exchange says it has none."""
        for attempt in range(self.attempts):
            try:
                return send()
            except RateLimitedError as error:  # refused, not executed: the limiter holds us
                if attempt == self.attempts - 1 or error.status == 418:
                    raise
                continue
            except OutcomeUnknownError as error:
                log.warning("%s: outcome unknown (%s); asking before any resend", what, error)
            except ExchangeError as error:
                if error.code != DUPLICATE_CLIENT_ID:
                    raise
            self._backoff(attempt)
            found = self._lookup(lookup, what)
            if found is not None:
                return found
            log.warning("%s: the exchange has none; resending", what)
        raise OutcomeUnknownError(f"{what}: not confirmed after {self.attempts} attempts")

    def _lookup(self, lookup: Callable[[], T | None], what: str) -> T | None:
        """What the exchange has for the intent (None: nothing); OutcomeUnknownError when it
        cannot be asked (the lookup's own reads already retried)."""
        try:
            return lookup()
        except UnknownOrderError:
            return None
        except (OutcomeUnknownError, RateLimitedError) as error:
            raise OutcomeUnknownError(
                f"{what}: cannot tell whether it was executed ({type(error).__name__}); "
                "not resending",
                error.code,
                error.status,
            ) from None
