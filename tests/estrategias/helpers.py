"""Synthetic candles and quick parameters shared by the strategy and live-signal tests."""

import numpy as np
import pandas as pd

from core.models import Candle

# Short periods, so every registered strategy trades within a few hundred candles.
FAST_PARAMS = {
    "sma_cruce": {"rapida": 5, "lenta": 20},
    "rsi_reversion": {"periodo": 7, "sobreventa": 35, "sobrecompra": 65},
    "macd_tendencia": {"rapida": 6, "lenta": 13, "senal": 5},
    "ml_predictor": {"ventana": 200, "reentreno": 60},
}


def synthetic_velas(n: int, seed: int = 5) -> pd.DataFrame:
    """`n` one-minute candles of a random walk from 2024-01-01, the same for the same seed."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    return pd.DataFrame({
        "open_time": 1_704_067_200_000 + np.arange(n, dtype=np.int64) * 60_000,
        "open": open_, "high": np.maximum(open_, close) * 1.002,
        "low": np.minimum(open_, close) * 0.998, "close": close,
        "volume": rng.uniform(1, 10, n),
    })  # fmt: skip


def as_candles(velas: pd.DataFrame, symbol: str = "BTCUSDT", interval: str = "1m") -> list[Candle]:
    """Closed `Candle`s of the frame's rows."""
    return [
        Candle(symbol, interval, int(r.open_time), r.open, r.high, r.low, r.close, r.volume)
        for r in velas.itertuples()
    ]
