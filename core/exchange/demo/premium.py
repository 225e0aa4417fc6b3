"""Mark price and funding of the demo market: pure functions of (seed, symbol, demo time)."""

from __future__ import annotations

import zlib
from decimal import Decimal
from typing import Any

from core.exchange.demo.market import DemoMarket
from core.exchange.demo.model import CLOSE
from core.exchange.demo.wire import decimal_strings

FUNDING_INTERVAL_MS = 8 * 3_600_000  # 00:00, 08:00 and 16:00 UTC
INTEREST_RATE = Decimal("0.0001")
_SPREAD_UNITS = 5_000  # funding varies within ±0.005 % of the interest rate, in 1e-8 units


def next_funding_ms(now_ms: int) -> int:
    """The next funding instant (00:00, 08:00 or 16:00 UTC) strictly after `now_ms`."""
    return (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS


def funding_rate(seed: int, symbol: str, funding_ms: int) -> Decimal:
    """The rate settled at `funding_ms`: the interest rate plus a small deterministic premium."""
    key = zlib.crc32(f"{seed}:{symbol}:{funding_ms}".encode())
    units = key % (2 * _SPREAD_UNITS + 1) - _SPREAD_UNITS
    return INTEREST_RATE + Decimal(units).scaleb(-8)


def mark_price(market: DemoMarket, symbol: str, now_ms: int) -> str | None:
    """The symbol's current price as a price string, None before it is listed.

    The demo has one market, so its last price is also the mark and the index price.
    """
    batch = market.klines(symbol, "1m", now_ms, limit=1)
    if not len(batch):
        return None
    return decimal_strings(batch.values[:, CLOSE], batch.spec.price_decimals)[0]


def premium_index(market: DemoMarket, seed: int, symbol: str, now_ms: int) -> dict[str, Any] | None:
    """The /fapi/v1/premiumIndex entry of `symbol`, None before it is listed."""
    price = mark_price(market, symbol, now_ms)
    if price is None:
        return None
    funding_ms = next_funding_ms(now_ms)
    return {
        "symbol": symbol,
        "markPrice": price,
        "indexPrice": price,
        "estimatedSettlePrice": price,
        "lastFundingRate": f"{funding_rate(seed, symbol, funding_ms):.8f}",
        "interestRate": f"{INTEREST_RATE:.8f}",
        "nextFundingTime": funding_ms,
        "time": now_ms,
    }
