"""Technical indicators: pure functions over numpy arrays, same length out, NaN during warm-up."""

from indicadores.oscillators import Estocastico, estocastico, rsi
from indicadores.trend import Ichimoku, Macd, ema, ichimoku, macd, sma, wma
from indicadores.volatility import Bollinger, atr, bollinger, true_range
from indicadores.volume import obv, vwap

__all__ = [
    "Bollinger",
    "Estocastico",
    "Ichimoku",
    "Macd",
    "atr",
    "bollinger",
    "ema",
    "estocastico",
    "ichimoku",
    "macd",
    "obv",
    "rsi",
    "sma",
    "true_range",
    "vwap",
    "wma",
]
