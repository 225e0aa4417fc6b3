"""The local Binance-compatible demo exchange: deterministic market, REST klines, kline streams."""

from core.exchange.demo.market import DemoClock, DemoMarket, KlineBatch
from core.exchange.demo.runner import (
    DemoExchangeServer,
    DemoExchangeThread,
    demo_options,
    ensure_demo_exchange,
    run_demo_exchange,
    start_demo_exchange,
)
from core.exchange.demo.server import DemoOptions, create_app
from core.exchange.demo.symbols import SYMBOLS, SymbolSpec

__all__ = [
    "SYMBOLS",
    "DemoClock",
    "DemoExchangeServer",
    "DemoExchangeThread",
    "DemoMarket",
    "DemoOptions",
    "KlineBatch",
    "SymbolSpec",
    "create_app",
    "demo_options",
    "ensure_demo_exchange",
    "run_demo_exchange",
    "start_demo_exchange",
]
