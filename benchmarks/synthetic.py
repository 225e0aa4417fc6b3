"""Synthetic 1m candles for benchmarks (numpy and pandas only: a fresh process can time imports)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic(n: int, seed: int = 11) -> pd.DataFrame:
    """`n` one-minute candles of a log-normal random walk around 30,000."""
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 8e-4, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = rng.uniform(0, 6e-4, (2, n))
    return pd.DataFrame({
        "open_time": 1_672_531_200_000 + np.arange(n, dtype=np.int64) * 60_000,
        "open": open_, "high": np.maximum(open_, close) * (1 + spread[0]),
        "low": np.minimum(open_, close) * (1 - spread[1]), "close": close,
        "volume": rng.uniform(1, 100, n),
    })  # fmt: skip
