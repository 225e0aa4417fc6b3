"""Binance's JSON shapes for the demo exchange: kline rows, stream events, exchangeInfo, errors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from core.exchange.demo.market import KlineBatch
from core.exchange.demo.model import (
    CLOSE,
    HIGH,
    LOW,
    OPEN,
    QUOTE,
    TAKER_BASE,
    TAKER_QUOTE,
    TRADES,
    VOLUME,
)
from core.exchange.demo.symbols import SymbolSpec

# Without a configured budget the demo enforces nothing and says so: clients may go full speed.
UNLIMITED_WEIGHT = 1_000_000


def decimal_strings(units: np.ndarray, decimals: int) -> list[str]:
    """Integer amounts in units of 10**-decimals as Binance's fixed-point strings."""
    if decimals == 0:
        return [str(x) for x in units.tolist()]
    scale = 10**decimals
    text = f"{{}}.{{:0{decimals}d}}".format
    return [
        text(i, f) for i, f in zip((units // scale).tolist(), (units % scale).tolist(), strict=True)
    ]


def klines_json(batch: KlineBatch) -> str:
    """The /fapi/v1/klines body: 12-field rows, times and trade counts as integers."""
    spec, values = batch.spec, batch.values
    prices = [
        decimal_strings(values[:, col], spec.price_decimals) for col in (OPEN, HIGH, LOW, CLOSE)
    ]
    columns = (
        batch.open_times.tolist(),
        *prices,
        decimal_strings(values[:, VOLUME], spec.qty_decimals),
        batch.close_times.tolist(),
        decimal_strings(values[:, QUOTE], spec.quote_decimals),
        values[:, TRADES].tolist(),
        decimal_strings(values[:, TAKER_BASE], spec.qty_decimals),
        decimal_strings(values[:, TAKER_QUOTE], spec.quote_decimals),
    )
    rows = [
        f'[{t},"{o}","{h}","{lo}","{c}","{v}",{ct},"{q}",{n},"{bv}","{bq}","0"]'
        for t, o, h, lo, c, v, ct, q, n, bv, bq in zip(*columns, strict=True)
    ]
    return "[" + ",".join(rows) + "]"


def kline_event(batch: KlineBatch, event_ms: int, first_trade: int, closed: bool) -> str:
    """A kline stream event for the single candle in `batch`, fields in Binance's order."""
    spec, row = batch.spec, batch.values[0]
    price = [
        decimal_strings(row[[col]], spec.price_decimals)[0] for col in (OPEN, CLOSE, HIGH, LOW)
    ]
    qty = decimal_strings(row[[VOLUME, TAKER_BASE]], spec.qty_decimals)
    quote = decimal_strings(row[[QUOTE, TAKER_QUOTE]], spec.quote_decimals)
    symbol, trades = spec.symbol, int(row[TRADES])
    return (
        f'{{"e":"kline","E":{event_ms},"s":"{symbol}","k":{{'
        f'"t":{int(batch.open_times[0])},"T":{int(batch.close_times[0])},"s":"{symbol}",'
        f'"i":"{batch.interval}","f":{first_trade},"L":{first_trade + trades - 1},'
        f'"o":"{price[0]}","c":"{price[1]}","h":"{price[2]}","l":"{price[3]}",'
        f'"v":"{qty[0]}","n":{trades},"x":{"true" if closed else "false"},'
        f'"q":"{quote[0]}","V":"{qty[1]}","Q":"{quote[1]}","B":"0"}}}}'
    )


def combined(stream: str, event: str) -> str:
    """A raw event wrapped for a combined-stream connection."""
    return f'{{"stream":"{stream}","data":{event}}}'


def error_body(code: int, msg: str) -> str:
    """Binance's REST error body."""
    return json.dumps({"code": code, "msg": msg})


def _filters(spec: SymbolSpec) -> list[dict[str, Any]]:
    lot = {"stepSize": spec.step_size, "minQty": spec.step_size}
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": spec.min_price,
            "maxPrice": spec.max_price,
            "tickSize": spec.tick_size,
        },
        {"filterType": "LOT_SIZE", "maxQty": spec.max_qty, **lot},
        {"filterType": "MARKET_LOT_SIZE", "maxQty": spec.market_max_qty, **lot},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
        {"filterType": "MIN_NOTIONAL", "notional": spec.min_notional},
        {
            "filterType": "PERCENT_PRICE",
            "multiplierUp": "1.0500",
            "multiplierDown": "0.9500",
            "multiplierDecimal": "4",
        },
    ]


def _symbol_info(spec: SymbolSpec, now_ms: int) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": spec.onboard_ms,
        "status": "TRADING" if now_ms >= spec.onboard_ms else "PENDING_TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base_asset,
        "quoteAsset": "USDT",
        "marginAsset": "USDT",
        "pricePrecision": spec.price_precision,
        "quantityPrecision": spec.qty_decimals,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": _filters(spec),
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }  # fmt: skip


def exchange_info(specs: Iterable[SymbolSpec], now_ms: int, weight_limit: int | None) -> str:
    """The /fapi/v1/exchangeInfo body; the weight limit is the configured budget, if any."""
    limit = UNLIMITED_WEIGHT if weight_limit is None else weight_limit
    rate_limits = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limit},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
    ]
    body = {
        "timezone": "UTC",
        "serverTime": now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": rate_limits,
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [_symbol_info(spec, now_ms) for spec in specs],
    }
    return json.dumps(body, separators=(",", ":"))
