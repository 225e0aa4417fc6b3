"""Kryptelion's one exception tree; the web layer maps each class to an HTTP status in one place."""

from typing import Any

from config.errors import ConfigError, KryptelionError

__all__ = [
    "AuthenticationError",
    "BotStateError",
    "ConfigError",
    "DataError",
    "DatabaseError",
    "ExchangeError",
    "FilterError",
    "InsufficientMarginError",
    "InvalidOrderError",
    "KryptelionError",
    "ListenKeyError",
    "MalformedPayloadError",
    "NotFoundError",
    "OrderRejectedError",
    "OrderStateError",
    "OutcomeUnknownError",
    "PostOnlyRejectedError",
    "RateLimitedError",
    "ReduceOnlyRejectedError",
    "RiskSettingsError",
    "StrategyError",
    "TimestampError",
    "UnknownOrderError",
    "WouldTriggerError",
]


class DataError(KryptelionError):
    """Input data is unusable: bad symbol or interval, unsorted or duplicated candles, bad range."""


class DatabaseError(KryptelionError):
    """The database DATABASE_URL names cannot be reached, created or opened."""

    field = "DATABASE_URL"


class NotFoundError(KryptelionError):
    """A requested record (order, backtest run, …) does not exist."""


class ExchangeError(KryptelionError):
    """The exchange refused a request or could not be reached after retries."""

    def __init__(self, message: str, code: int | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class StrategyError(KryptelionError):
    """Unknown strategy, bad parameter, or a strategy produced an invalid output."""


class OrderStateError(KryptelionError):
    """An order was asked to make a transition its state machine forbids."""


class InvalidOrderError(KryptelionError):
    """An order or a fill the exchange would refuse; `field` names the offending input."""

    def __init__(self, field: str, message: str, limits: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.limits = limits or {}

    @property
    def detail(self) -> dict[str, str]:
        return {self.field: str(self), **{k: str(v) for k, v in self.limits.items()}}


class FilterError(InvalidOrderError):
    """An order outside one of the symbol's exchange filters (`filter_name`, e.g. LOT_SIZE)."""

    def __init__(self, filter_name: str, field: str, message: str, limits: dict[str, Any]) -> None:
        super().__init__(field, f"{filter_name}: {message}", limits)
        self.filter_name = filter_name

    @property
    def detail(self) -> dict[str, str]:
        return {"filtro": self.filter_name, **super().detail}


# The exchange's refusals, by kind; each keeps Binance's `code` (and the HTTP `status`).


class OrderRejectedError(ExchangeError):
    """The exchange refused an order: a filter, precision, parameter or combination it forbids."""


class UnknownOrderError(ExchangeError):
    """The exchange knows no such order (-2011 on cancel, -2013 on query)."""


class WouldTriggerError(OrderRejectedError):
    """A conditional order whose trigger the market has already crossed (-2021)."""


class ReduceOnlyRejectedError(OrderRejectedError):
    """A reduce-only order that would not reduce the position (-2022)."""


class InsufficientMarginError(OrderRejectedError):
    """Not enough available margin for the order (-2019)."""


class PostOnlyRejectedError(OrderRejectedError):
    """A post-only (GTX) order that would have taken liquidity (-5022)."""


class RateLimitedError(ExchangeError):
    """Too many requests or orders (-1003, -1015, HTTP 429/418); wait `retry_after_s`."""

    def __init__(
        self,
        message: str,
        code: int | None = None,
        status: int | None = None,
        retry_after_s: float = 0.0,
    ) -> None:
        super().__init__(message, code, status)
        self.retry_after_s = retry_after_s


class AuthenticationError(ExchangeError):
    """The API key, its permissions or the signature were refused (-2014, -2015, -1022)."""


class TimestampError(ExchangeError):
    """The request's timestamp stayed outside recvWindow even after re-syncing the clock (-1021)."""


class ListenKeyError(ExchangeError):
    """The user data stream's listen key does not exist or has lapsed (-1125)."""


class OutcomeUnknownError(ExchangeError):
    """A request may or may not have been executed (timeout, 5xx, -1007) and asking the
    exchange did not settle it; reconcile before acting on the same intent again."""


class MalformedPayloadError(ExchangeError):
    """The exchange answered JSON that lacks a field or holds a value of the wrong kind;
    `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class BotStateError(KryptelionError):
    """A bot was asked to make a transition its state machine forbids (a 409, as for orders)."""


class RiskSettingsError(DataError):
    """A risk limit outside what it may be; `field` names the setting by its public name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    @property
    def detail(self) -> dict[str, str]:
        return {self.field: str(self)}
