"""What the views share, built once by create_app: settings, database, exchange rules."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from flask import current_app

from app.api import RequestError
from config.settings import Settings
from core.exchange.rest import BinanceRest
from core.repository import Database
from core.rules import SymbolRules, parse_rules

FILTERS_TTL_S = 3600
PRICE_TTL_S = 5.0


@dataclass
class Services:
    settings: Settings
    db: Database
    started_at: float = field(default_factory=time.time)
    _rules: dict[str, SymbolRules] = field(default_factory=dict)
    _rules_at: float = 0.0
    _prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def rest(self) -> BinanceRest:
        """A REST client for this request (clients are not shared between threads)."""
        return BinanceRest(self.settings.binance_rest_url, retries=2)

    def symbol_rules(self, symbol: str) -> SymbolRules:
        """The exchange filters of `symbol` (exchangeInfo, cached 1 h).

        Raises RequestError 400 for a symbol the market does not list.
        """
        rules = self._exchange_rules().get(symbol)
        if rules is None:
            raise RequestError(
                400, f"unknown symbol {symbol!r} on this market", {"symbol": "unknown"}
            )
        return rules

    def symbols(self) -> list[str]:
        """The symbols the market lists (for the pages' pickers)."""
        return sorted(self._exchange_rules())

    def last_price(self, symbol: str) -> float:
        """The latest trade price of `symbol` (the close of its current 1m candle, cached a few
        seconds): what market orders are priced at for MIN_NOTIONAL and PERCENT_PRICE."""
        with self._lock:
            cached = self._prices.get(symbol)
            if cached is not None and time.monotonic() - cached[0] < PRICE_TTL_S:
                return cached[1]
        rows = self.rest().klines(symbol, "1m", limit=1)
        price = float(rows[-1][4])
        with self._lock:
            self._prices[symbol] = (time.monotonic(), price)
        return price

    def _exchange_rules(self) -> dict[str, SymbolRules]:
        with self._lock:
            if not self._rules or time.time() - self._rules_at > FILTERS_TTL_S:
                self._rules = parse_rules(self.rest().exchange_info())
                self._rules_at = time.time()
            return self._rules


def services() -> Services:
    """The Services of the running app."""
    return current_app.extensions["kryptelion"]
