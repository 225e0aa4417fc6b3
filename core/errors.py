"""Kryptelion's one exception tree; the web layer maps each class to an HTTP status in one place."""

from config.errors import ConfigError, KryptelionError

__all__ = [
    "ConfigError",
    "DataError",
    "ExchangeError",
    "KryptelionError",
    "NotFoundError",
    "OrderStateError",
    "StrategyError",
]


class DataError(KryptelionError):
    """Input data is unusable: bad symbol or interval, unsorted or duplicated candles, bad range."""


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
