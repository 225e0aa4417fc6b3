"""Technical indicators: pure functions over numpy arrays, same length out, NaN during warm-up."""

# What every function here promises, so strategies and the backtester can rely on it:
# - Inputs: equally long 1-D array-likes of numbers, never modified. Output: new float64 arrays
#   of the input's length (a NamedTuple of them for multi-line indicators).
# - Warm-up: NaN for exactly as many bars as TA-Lib's lookback for the same function.
# - No look-ahead: value i uses bars 0..i only, so f(x)[:k] == f(x[:k]) bit for bit. The one
#   exception is ichimoku's chikou, the future close by definition: never trade on it.
# - Missing values (NaN, and ±inf, which counts as NaN): leading ones are skipped and the warm-up
#   starts at the first number, as in TA-Lib's Python wrapper, so indicators can be chained.
#   A later one gives NaN in every window that holds it (sma, wma, bollinger, estocastico,
#   ichimoku), from there on in running recursions (ema, macd, rsi, atr, obv), and to the end
#   of its UTC day in vwap.
# - Bad periods or arrays raise ValueError (the package depends on numpy alone).

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
