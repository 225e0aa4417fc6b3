"""Demo accounts in memory, keyed by API key: USDT wallet, per-symbol leverage and margin type,
listen keys. Every method takes the demo instant, so tests move time instead of waiting."""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from core.exchange.demo.brackets import max_leverage
from core.exchange.demo.errors import BinanceError
from core.exchange.demo.orders import Book

DEFAULT_LEVERAGE = 20
LISTEN_KEY_TTL_MS = 60 * 60_000
_LISTEN_KEY_ALPHABET = string.ascii_letters + string.digits


class MarginType(StrEnum):
    CROSSED = "CROSSED"
    ISOLATED = "ISOLATED"


@dataclass(slots=True)
class SymbolConfig:
    """An account's settings for one symbol."""

    leverage: int = DEFAULT_LEVERAGE
    margin_type: MarginType = MarginType.CROSSED


@dataclass(slots=True)
class ListenKey:
    value: str
    expires_ms: int


@dataclass(slots=True)
class Account:
    """One API key's account: one-way position mode, a USDT wallet, its orders and positions."""

    api_key: str
    wallet_balance: float
    update_ms: int
    symbols: dict[str, SymbolConfig] = field(default_factory=dict)
    listen_key: ListenKey | None = None
    book: Book = field(default_factory=Book)

    def config(self, symbol: str) -> SymbolConfig:
        """The symbol's settings (the defaults until changed)."""
        return self.symbols.setdefault(symbol, SymbolConfig())


class Accounts:
    """Every account of a demo exchange; one is opened with `balance` USDT on its key's first use.

    Single-threaded: use it from the exchange's event loop.
    """

    def __init__(self, api_secrets: Mapping[str, str], balance: float) -> None:
        self.secrets = dict(api_secrets)
        self.balance = float(balance)
        self._accounts: dict[str, Account] = {}

    def get(self, api_key: str, now_ms: int) -> Account:
        """The key's account, opened now if new; raises KeyError for a key with no secret."""
        if api_key not in self.secrets:
            raise KeyError(api_key)
        account = self._accounts.get(api_key)
        if account is None:
            account = self._accounts[api_key] = Account(api_key, self.balance, now_ms)
        return account

    def __iter__(self) -> Iterator[Account]:
        return iter(self._accounts.values())

    def set_leverage(self, account: Account, symbol: str, leverage: int) -> int:
        """Set the symbol's leverage; returns it. Raises BinanceError -4028 outside 1..max."""
        if not 1 <= leverage <= max_leverage(symbol):
            raise BinanceError(-4028, f"Leverage {leverage} is not valid")
        account.config(symbol).leverage = leverage
        return leverage

    def set_margin_type(self, account: Account, symbol: str, margin_type: MarginType) -> None:
        """Set the symbol's margin type; raises BinanceError -4046 when it already is that."""
        config = account.config(symbol)
        if config.margin_type is margin_type:
            raise BinanceError(-4046, "No need to change margin type.")
        if account.book.position(symbol).amount:
            raise BinanceError(-4048, "Margin type cannot be changed if there exists position.")
        if account.book.open_orders(symbol):
            raise BinanceError(-4047, "Margin type cannot be changed if there exists open orders.")
        config.margin_type = margin_type

    def open_listen_key(self, account: Account, now_ms: int) -> str:
        """The account's live listen key, extended 60 minutes, or a new one if none lives."""
        key = account.listen_key
        if key is None or key.expires_ms <= now_ms:
            value = "".join(secrets.choice(_LISTEN_KEY_ALPHABET) for _ in range(64))
            key = account.listen_key = ListenKey(value, now_ms + LISTEN_KEY_TTL_MS)
        key.expires_ms = now_ms + LISTEN_KEY_TTL_MS
        return key.value

    def keep_alive(self, account: Account, value: str | None, now_ms: int) -> str:
        """Extend the live listen key by 60 minutes; returns it.

        Raises BinanceError -1125 when none lives or `value` names another.
        """
        key = self._live_key(account, value, now_ms)
        key.expires_ms = now_ms + LISTEN_KEY_TTL_MS
        return key.value

    def close_listen_key(self, account: Account, value: str | None, now_ms: int) -> None:
        """Close the live listen key; raises BinanceError -1125 as `keep_alive` does."""
        self._live_key(account, value, now_ms)
        account.listen_key = None

    def listen_key_owner(self, value: str, now_ms: int) -> Account | None:
        """The account whose live listen key is `value`, if any (for the user data stream)."""
        for account in self._accounts.values():
            key = account.listen_key
            if key is not None and key.value == value and key.expires_ms > now_ms:
                return account
        return None

    @staticmethod
    def _live_key(account: Account, value: str | None, now_ms: int) -> ListenKey:
        key = account.listen_key
        if key is None or key.expires_ms <= now_ms or (value and value != key.value):
            raise BinanceError(-1125, "This listenKey does not exist.")
        return key
