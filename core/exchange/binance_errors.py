"""Binance's error codes and their Kryptelion exceptions; `scrub` keeps secrets out of messages."""

from __future__ import annotations

import re

from config.settings import redact_url
from core.errors import (
    AuthenticationError,
    ExchangeError,
    InsufficientMarginError,
    ListenKeyError,
    OrderRejectedError,
    PostOnlyRejectedError,
    RateLimitedError,
    ReduceOnlyRejectedError,
    TimestampError,
    UnknownOrderError,
    WouldTriggerError,
)

SEND_STATUS_UNKNOWN = -1007  # "Timeout waiting for response from backend server"
MARGIN_TYPE_UNCHANGED = -4046  # "No need to change margin type": already what was asked
DUPLICATE_CLIENT_ID = -4116  # an open order already carries that client id
_ERRORS: dict[int, type[ExchangeError]] = {
    -2011: UnknownOrderError, -2013: UnknownOrderError, -2021: WouldTriggerError,
    -2022: ReduceOnlyRejectedError, -2019: InsufficientMarginError,
    -5022: PostOnlyRejectedError, -1003: RateLimitedError, -1015: RateLimitedError,
    -1021: TimestampError, -1022: AuthenticationError, -2014: AuthenticationError,
    -2015: AuthenticationError, -1125: ListenKeyError,
}  # fmt: skip
# Refusals of a request's content (filters, precision, parameters, combinations): Binance's
# -11xx (request), -4xxx (order and account rules) and -50xx (order matching) families, and these.
REJECTED_CODES = frozenset({-1013, -2010, -2020, -2027, -2028})
_REJECTED_RANGES = ((-1199, -1100), (-4999, -4000), (-5099, -5000))
_SECRET_PAIR = re.compile(r"(signature|listenKey)=[^&\s'\"]*", re.IGNORECASE)
_LISTEN_KEY = re.compile(r"\b[A-Za-z0-9]{60,}\b")


def scrub(message: str) -> str:
    """`message` without signatures, listen keys or URL credentials (safe to log or raise)."""
    return _LISTEN_KEY.sub("***", _SECRET_PAIR.sub(r"\1=***", redact_url(message)))


def map_error(
    code: int | None, status: int | None, message: str, retry_after_s: float = 0.0
) -> ExchangeError:
    """The Kryptelion exception for a Binance error answer (code, HTTP status, its message)."""
    text_ = f"{scrub(message)} (code {code})"
    if status in (418, 429) or code in (-1003, -1015):
        return RateLimitedError(text_, code, status, retry_after_s)
    kind = _ERRORS.get(code or 0)
    if kind is None:
        kind = OrderRejectedError if _is_rejection(code) else ExchangeError
    return kind(text_, code=code, status=status)


def _is_rejection(code: int | None) -> bool:
    if code is None:
        return False
    return code in REJECTED_CODES or any(low <= code <= high for low, high in _REJECTED_RANGES)
