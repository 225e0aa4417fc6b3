"""Kryptelion's one exception tree; the web layer maps each class to an HTTP status in one place."""

from typing import Any

from config.errors import ConfigError, KryptelionError

__all__ = [
    "ConfigError",
    "DataError",
    "DatabaseError",
    "ExchangeError",
    "FilterError",
    "InvalidOrderError",
    "KryptelionError",
    "NotFoundError",
    "OrderStateError",
    "StrategyError",
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
