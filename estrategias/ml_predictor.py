"""ml_predictor: a scikit-learn classifier of the next candle's direction, trained walk-forward."""

from __future__ import annotations

from typing import Any

import numpy as np

from estrategias.base import MODE, Param, Strategy, Velas
from indicadores import atr, bollinger, macd, rsi

FEATURE_NAMES = ("ret_1", "ret_5", "ret_20", "rsi_14", "macd_hist", "bb_pos", "atr_pct", "vol_z")
FEATURE_WARMUP = 40  # the slowest feature (MACD 26 + 9, ATR 14, returns over 20) is ready by then


def _shifted_return(close: np.ndarray, lag: int) -> np.ndarray:
    out = np.full(len(close), np.nan)
    out[lag:] = close[lag:] / close[:-lag] - 1
    return out


def features(velas: Velas) -> np.ndarray:
    """One row per candle from that candle and earlier ones only; NaN during warm-up."""
    close = velas.close
    upper, middle, lower = bollinger(close, 20, 2.0)
    width = np.where(upper > lower, upper - lower, np.nan)
    volume = velas.volume
    window = 20
    csum = np.cumsum(np.insert(volume, 0, 0.0))
    csq = np.cumsum(np.insert(volume * volume, 0, 0.0))
    mean = np.full(len(close), np.nan)
    var = np.full(len(close), np.nan)
    mean[window - 1 :] = (csum[window:] - csum[:-window]) / window
    var[window - 1 :] = (csq[window:] - csq[:-window]) / window - mean[window - 1 :] ** 2
    std = np.sqrt(np.maximum(var, 0.0))
    columns = (
        _shifted_return(close, 1),
        _shifted_return(close, 5),
        _shifted_return(close, 20),
        rsi(close, 14) / 100 - 0.5,
        macd(close, 12, 26, 9)[2] / close,
        (close - lower) / width - 0.5,
        atr(velas.high, velas.low, close, 14) / close,
        np.where(std > 0, (volume - mean) / np.where(std > 0, std, 1.0), 0.0),
    )
    return np.column_stack(columns)


class MlPredictor(Strategy):
    name = "ml_predictor"
    description = (
        "Regresión logística (scikit-learn) sobre indicadores que predice la dirección de la "
        "próxima vela; se reentrena cada 'reentreno' velas sólo con datos anteriores "
        "(walk-forward) e informa su acierto fuera de muestra frente a una referencia ingenua."
    )
    params = (
        Param("ventana", int, 2000, 200, 50_000, description="velas de entrenamiento"),
        Param("reentreno", int, 500, 50, 50_000, description="velas entre reentrenamientos"),
        Param("umbral", float, 0.02, 0.0, 0.45, description="margen sobre 0.5 para operar"),
        MODE,
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.report: dict[str, Any] = {}

    @property
    def warmup(self) -> int:
        return FEATURE_WARMUP + 200

    def _positions(self, velas: Velas) -> np.ndarray:
        probability = self.predict_proba(velas)
        margin = self.p["umbral"]
        position = np.where(probability > 0.5 + margin, 1.0, 0.0)
        position = np.where(probability < 0.5 - margin, -1.0, position)
        return position

    def predict_proba(self, velas: Velas) -> np.ndarray:
        """P(next close > this close) for each candle, NaN where no model could be fitted yet.

        Block [b, b + reentreno) is predicted by a model fitted on samples before b - 1, whose
        labels (the following close) were all known at the close of candle b - 1.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = features(velas)
        close = velas.close
        label = np.zeros(len(close), dtype=np.int8)
        label[:-1] = close[1:] > close[:-1]
        valid = ~np.isnan(x).any(axis=1)
        probability = np.full(len(close), np.nan)
        hits = baseline_hits = tested = 0
        step, window = self.p["reentreno"], self.p["ventana"]
        for block in range(FEATURE_WARMUP + 200, len(close), step):
            train = np.arange(max(0, block - 1 - window), block - 1)
            train = train[valid[train]]
            test = np.arange(block, min(block + step, len(close)))
            test = test[valid[test]]
            classes = np.unique(label[train])
            if len(train) < 100 or len(test) == 0 or len(classes) < 2:
                continue
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
            model.fit(x[train], label[train])
            probability[test] = model.predict_proba(x[test])[:, 1]
            known = test[test < len(close) - 1]
            majority = int(label[train].mean() >= 0.5)
            hits += int(np.sum((probability[known] >= 0.5) == label[known]))
            baseline_hits += int(np.sum(label[known] == majority))
            tested += len(known)
        self.report = {
            "out_of_sample": tested,
            "accuracy": hits / tested if tested else None,
            "baseline_accuracy": baseline_hits / tested if tested else None,
            "baseline": "majority class of each training window",
        }
        return probability
