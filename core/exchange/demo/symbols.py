"""The demo exchange's listed contracts: trading rules, listing dates and market character."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from types import MappingProxyType

from core.intervals import to_ms

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One USDT-M perpetual: its exchangeInfo rules plus the parameters of its simulated market.

    Prices are held as integers in units of 10**-price_decimals (a multiple of `tick_units`),
    quantities in steps (10**-qty_decimals), quote volumes in units of 10**-(both decimals), so
    every aggregation is exact integer arithmetic.
    """

    symbol: str
    base_asset: str
    onboard_ms: int
    tick_size: str
    step_size: str
    price_precision: int
    max_qty: str
    market_max_qty: str
    min_notional: str
    min_price: str
    max_price: str
    # (ISO date, price) points the long-run level follows: plausible history for any seed.
    anchors: tuple[tuple[str, float], ...]
    daily_vol: float
    quote_volume: float
    avg_trade: float

    @property
    def price_decimals(self) -> int:
        return _decimals(self.tick_size)

    @property
    def qty_decimals(self) -> int:
        return _decimals(self.step_size)

    @property
    def quote_decimals(self) -> int:
        return self.price_decimals + self.qty_decimals

    @property
    def tick_units(self) -> int:
        return round(float(self.tick_size) * 10**self.price_decimals)

    @property
    def key(self) -> int:
        """A stable number for seeding (Python's `hash` of a str changes per process)."""
        return zlib.crc32(self.symbol.encode())

    @property
    def stream_prefix(self) -> str:
        return self.symbol.lower()


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def _day(iso: str) -> int:
    return to_ms(iso) // DAY_MS * DAY_MS


_SPECS = (
    SymbolSpec(
        symbol="BTCUSDT", base_asset="BTC", onboard_ms=_day("2019-09-01"),
        tick_size="0.10", step_size="0.001", price_precision=2, max_qty="1000",
        market_max_qty="120", min_notional="100", min_price="261.10", max_price="809484",
        anchors=(
            ("2019-09-01", 9600), ("2020-03-12", 5200), ("2020-12-31", 29000),
            ("2021-04-14", 63000), ("2021-07-20", 30000), ("2021-11-10", 67000),
            ("2022-06-18", 19000), ("2022-11-21", 16000), ("2023-12-31", 42000),
            ("2024-03-14", 72000), ("2024-12-17", 106000), ("2025-04-08", 77000),
            ("2025-10-06", 124000), ("2026-04-01", 88000), ("2026-11-01", 95000),
        ),
        daily_vol=0.032, quote_volume=12e9, avg_trade=3000.0,
    ),
    SymbolSpec(
        symbol="ETHUSDT", base_asset="ETH", onboard_ms=_day("2019-09-01"),
        tick_size="0.01", step_size="0.001", price_precision=2, max_qty="10000",
        market_max_qty="2000", min_notional="20", min_price="39.86", max_price="306177",
        anchors=(
            ("2019-09-01", 172), ("2020-03-12", 110), ("2020-12-31", 740),
            ("2021-05-12", 4200), ("2021-07-20", 1800), ("2021-11-10", 4800),
            ("2022-06-18", 1000), ("2023-12-31", 2300), ("2024-03-12", 4000),
            ("2025-04-08", 1500), ("2025-08-24", 4900), ("2026-04-01", 2900),
            ("2026-11-01", 3400),
        ),
        daily_vol=0.042, quote_volume=8e9, avg_trade=1500.0,
    ),
    SymbolSpec(
        symbol="BNBUSDT", base_asset="BNB", onboard_ms=_day("2019-09-01"),
        tick_size="0.010", step_size="0.01", price_precision=3, max_qty="100000",
        market_max_qty="2000", min_notional="5", min_price="6.600", max_price="100000",
        anchors=(
            ("2019-09-01", 22), ("2020-03-12", 10), ("2020-12-31", 38),
            ("2021-05-10", 680), ("2021-07-20", 280), ("2022-06-18", 200),
            ("2023-12-31", 310), ("2024-06-06", 700), ("2025-04-08", 560),
            ("2025-10-13", 1300), ("2026-04-01", 880), ("2026-11-01", 920),
        ),
        daily_vol=0.038, quote_volume=6e8, avg_trade=800.0,
    ),
    SymbolSpec(
        # Tick 0.001 rather than Binance's 0.01: the demo lists SOL from 2019 at ~$1.5.
        symbol="SOLUSDT", base_asset="SOL", onboard_ms=_day("2019-09-01"),
        tick_size="0.0010", step_size="1", price_precision=4, max_qty="1000000",
        market_max_qty="5000", min_notional="5", min_price="0.4200", max_price="6857",
        anchors=(
            ("2019-09-01", 1.5), ("2020-09-14", 3.0), ("2020-12-31", 1.6),
            ("2021-09-09", 190), ("2021-11-06", 250), ("2022-06-18", 30),
            ("2022-12-29", 9.9), ("2023-12-31", 100), ("2024-03-18", 200),
            ("2025-01-19", 270), ("2025-04-08", 105), ("2025-09-18", 250),
            ("2026-04-01", 140), ("2026-11-01", 160),
        ),
        daily_vol=0.055, quote_volume=2.5e9, avg_trade=900.0,
    ),
    SymbolSpec(
        symbol="XRPUSDT", base_asset="XRP", onboard_ms=_day("2019-09-01"),
        tick_size="0.0001", step_size="0.1", price_precision=4, max_qty="10000000",
        market_max_qty="2000000", min_notional="5", min_price="0.0143", max_price="100000",
        anchors=(
            ("2019-09-01", 0.26), ("2020-03-12", 0.14), ("2020-11-24", 0.70),
            ("2020-12-29", 0.20), ("2021-04-14", 1.90), ("2022-06-18", 0.30),
            ("2023-07-13", 0.80), ("2024-06-30", 0.47), ("2024-12-03", 2.70),
            ("2025-07-18", 3.60), ("2026-04-01", 2.10), ("2026-11-01", 2.30),
        ),
        daily_vol=0.048, quote_volume=1.5e9, avg_trade=700.0,
    ),
    SymbolSpec(
        symbol="ADAUSDT", base_asset="ADA", onboard_ms=_day("2020-01-31"),
        tick_size="0.00010", step_size="1", price_precision=5, max_qty="10000000",
        market_max_qty="1000000", min_notional="5", min_price="0.01740", max_price="100000",
        anchors=(
            ("2020-01-31", 0.055), ("2021-09-02", 3.0), ("2022-06-18", 0.45),
            ("2022-12-31", 0.25), ("2024-03-12", 0.75), ("2024-12-03", 1.20),
            ("2025-04-08", 0.55), ("2026-04-01", 0.42), ("2026-11-01", 0.48),
        ),
        daily_vol=0.050, quote_volume=4e8, avg_trade=500.0,
    ),
    SymbolSpec(
        symbol="DOGEUSDT", base_asset="DOGE", onboard_ms=_day("2020-07-10"),
        tick_size="0.000010", step_size="1", price_precision=6, max_qty="50000000",
        market_max_qty="30000000", min_notional="5", min_price="0.002440", max_price="30",
        anchors=(
            ("2020-07-10", 0.0033), ("2021-01-28", 0.035), ("2021-05-08", 0.70),
            ("2022-06-18", 0.055), ("2022-11-01", 0.14), ("2023-12-31", 0.09),
            ("2024-03-28", 0.22), ("2024-12-08", 0.47), ("2025-04-08", 0.14),
            ("2026-04-01", 0.13), ("2026-11-01", 0.16),
        ),
        daily_vol=0.058, quote_volume=1.2e9, avg_trade=600.0,
    ),
)  # fmt: skip

SYMBOLS: MappingProxyType[str, SymbolSpec] = MappingProxyType({s.symbol: s for s in _SPECS})
