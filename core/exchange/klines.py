"""Binance's 12-field kline rows (REST, archives, our CSV export) to and from candle columns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.intervals import close_time, interval_ms
from core.models import Candle

# Binance's names for the 12 fields, as in the public archives' header row.
KLINE_FIELDS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
# Our candle columns, by Binance field.
_TO_CANDLE = {
    "open_time": "open_time", "open": "open", "high": "high", "low": "low", "close": "close",
    "volume": "volume", "quote_volume": "quote_volume", "count": "trades",
    "taker_buy_volume": "taker_buy_base", "taker_buy_quote_volume": "taker_buy_quote",
}  # fmt: skip
_INT_FIELDS = {"open_time", "close_time", "count"}


def klines_to_frame(rows: Sequence[Sequence[Any]] | pd.DataFrame) -> pd.DataFrame:
    """Candle columns (open_time, open … trades, taker_buy_quote, close_time) from kline rows."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty:
        columns = (*_TO_CANDLE.values(), "close_time")
        return pd.DataFrame({name: pd.Series(dtype="float64") for name in columns})
    frame = frame.iloc[:, : len(KLINE_FIELDS)]
    frame.columns = list(KLINE_FIELDS[: frame.shape[1]])
    out = {}
    for field, column in (*_TO_CANDLE.items(), ("close_time", "close_time")):
        kind = np.int64 if field in _INT_FIELDS else np.float64
        out[column] = pd.to_numeric(frame[field]).to_numpy(dtype=kind)
    return pd.DataFrame(out)


def frame_candles(frame: pd.DataFrame, symbol: str, interval: str) -> list[Candle]:
    """Closed `Candle`s from a frame of candle columns (klines_to_frame's or the repository's)."""
    return [
        Candle(symbol, interval, int(row.open_time), row.open, row.high, row.low, row.close,
               row.volume, row.quote_volume, int(row.trades), row.taker_buy_base,
               row.taker_buy_quote, closed=True)
        for row in frame.itertuples(index=False)
    ]  # fmt: skip


def frame_to_klines(frame: pd.DataFrame, interval: str) -> pd.DataFrame:
    """Candle columns back into Binance's 12 fields (close_time derived, `ignore` = 0)."""
    out = pd.DataFrame({field: frame[column] for field, column in _TO_CANDLE.items()})
    opens = frame["open_time"].to_numpy(dtype=np.int64)
    if interval == "1M":
        closes = np.array([close_time(int(t), interval) for t in opens], dtype=np.int64)
    else:
        closes = opens + interval_ms(interval) - 1
    out.insert(6, "close_time", closes)
    out["ignore"] = 0
    return out[list(KLINE_FIELDS)]
