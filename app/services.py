"""What the views share, built once by create_app: settings, database, exchange rules."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask import current_app

from app.api import RequestError
from config.settings import Settings
from core.exchange.rest import BinanceRest
from core.repository import Database

FILTERS_TTL_S = 3600


@dataclass
class Services:
    settings: Settings
    db: Database
    started_at: float = field(default_factory=time.time)
    _filters: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    _filters_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def rest(self) -> BinanceRest:
        """A REST client for this request (clients are not shared between threads)."""
        return BinanceRest(self.settings.binance_rest_url, retries=2)

    def symbol_filters(self, symbol: str) -> dict[str, Decimal]:
        """tickSize, stepSize, minQty, maxQty and notional of `symbol` (exchangeInfo, cached 1 h).

        Raises RequestError 400 for a symbol the market does not list.
        """
        filters = self._exchange_filters().get(symbol)
        if filters is None:
            raise RequestError(400, f"unknown symbol {symbol!r} on this market")
        return filters

    def symbols(self) -> list[str]:
        """The symbols the market lists (for the pages' pickers)."""
        return sorted(self._exchange_filters())

    def _exchange_filters(self) -> dict[str, dict[str, Decimal]]:
        with self._lock:
            if not self._filters or time.time() - self._filters_at > FILTERS_TTL_S:
                self._filters = _parse_filters(self.rest().exchange_info())
                self._filters_at = time.time()
            return self._filters


def _parse_filters(info: dict[str, Any]) -> dict[str, dict[str, Decimal]]:
    out = {}
    for entry in info.get("symbols", []):
        by_type = {f["filterType"]: f for f in entry.get("filters", [])}
        price, lot = by_type.get("PRICE_FILTER", {}), by_type.get("LOT_SIZE", {})
        out[entry["symbol"]] = {
            "tickSize": Decimal(price.get("tickSize", "0")),
            "minPrice": Decimal(price.get("minPrice", "0")),
            "maxPrice": Decimal(price.get("maxPrice", "0")),
            "stepSize": Decimal(lot.get("stepSize", "0")),
            "minQty": Decimal(lot.get("minQty", "0")),
            "maxQty": Decimal(lot.get("maxQty", "0")),
            "notional": Decimal(by_type.get("MIN_NOTIONAL", {}).get("notional", "0")),
        }
    return out


def services() -> Services:
    """The Services of the running app."""
    return current_app.extensions["kryptelion"]
