"""The error a demo exchange route raises to answer with Binance's error body and HTTP status."""

from __future__ import annotations


class BinanceError(Exception):
    """A request Binance would answer with an error body."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def mandatory_missing(name: str) -> BinanceError:
    """Binance's -1102 for a parameter that was not sent or is empty."""
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def illegal_digits(name: str) -> BinanceError:
    """Binance's -1100 for a parameter that must be a whole number."""
    return BinanceError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
    )
