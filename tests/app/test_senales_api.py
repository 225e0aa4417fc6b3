"""GET /senales: a strategy's position changes over the stored candles, the same decisions the
backtester trades on, and a JSON error (never a 500) for whatever the query gets wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backtesting.simulador import ejecutar_backtest
from estrategias.factory import REGISTRY, crear_estrategia
from tests.estrategias.helpers import FAST_PARAMS, as_candles, synthetic_velas

N = 1_200


@pytest.fixture
def velas(app):
    """N synthetic 1m BTCUSDT candles, stored."""
    frame = synthetic_velas(N, seed=11)
    app.extensions["kryptelion"].db.candles.upsert_candles(as_candles(frame))
    return frame


def _get(client, **query):
    if isinstance(query.get("params"), dict):
        query["params"] = json.dumps(query["params"])
    return client.get("/senales", query_string={"symbol": "BTCUSDT", "interval": "1m", **query})


def _expected(frame, name: str, params: dict) -> list[tuple[int, float, float]]:
    """(open_time, position, close) where the backtest's positions change, flat before."""
    positions = ejecutar_backtest(frame, crear_estrategia(name, **params)).posiciones
    previous = np.concatenate(([0.0], positions[:-1]))
    return [
        (int(frame.open_time.iloc[i]), float(positions[i]), float(frame.close.iloc[i]))
        for i in np.flatnonzero(positions != previous)
    ]


def test_every_strategy_covers_the_registry():
    assert set(FAST_PARAMS) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(FAST_PARAMS))
def test_signals_are_the_backtests_position_changes(client, velas, name):
    response = _get(client, estrategia=name, params=FAST_PARAMS[name], limit=N)
    assert response.status_code == 200, response.json
    body = response.json
    got = [(s["open_time"], s["posicion"], s["precio"]) for s in body["senales"]]
    expected = _expected(velas, name, FAST_PARAMS[name])
    assert got == expected and len(expected) >= 2
    assert (body["estrategia"], body["velas"]) == (name, N)
    assert body["params"] == crear_estrategia(name, **FAST_PARAMS[name]).p


def test_limit_evaluates_only_the_latest_candles(client, velas):
    params = FAST_PARAMS["sma_cruce"]
    body = _get(client, params=params, limit=300).json
    got = [(s["open_time"], s["posicion"], s["precio"]) for s in body["senales"]]
    assert body["velas"] == 300
    assert got == _expected(velas.iloc[-300:].reset_index(drop=True), "sma_cruce", params)


def test_a_crossover_signal_names_the_cross_and_the_move(client, velas):
    params = {"rapida": 5, "lenta": 20}
    signals = _get(client, params=params).json["senales"]
    crosses = {
        c.open_time: c.kind.value
        for c in crear_estrategia("sma_cruce", **params).cruces(velas, "BTCUSDT", "1m")
    }
    sides = {1.0: "largo", 0.0: "plano", -1.0: "corto"}
    before = 0.0
    for signal in signals:
        move = f"{sides[before]} -> {sides[signal['posicion']]}"
        assert signal["motivo"] == f"cruce {crosses[signal['open_time']]}; {move}"
        before = signal["posicion"]


def test_omitted_params_are_the_strategys_defaults(client, velas):
    body = _get(client).json
    assert body["estrategia"] == "sma_cruce" and body["params"] == crear_estrategia("sma_cruce").p
    got = [(s["open_time"], s["posicion"], s["precio"]) for s in body["senales"]]
    assert got == _expected(velas.iloc[-1000:].reset_index(drop=True), "sma_cruce", {})


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ({"estrategia": "sma_cruze"}, 422, "estrategia"),
        ({"params": "{"}, 422, "params"),
        ({"params": "[1, 2]"}, 422, "params"),
        ({"params": '{"rapida": NaN}'}, 422, "params.rapida"),
        ({"params": {"rapida": 50, "lenta": 10}}, 422, "params.rapida"),
        ({"params": {"rapidaa": 5}}, 422, "params.rapidaa"),
        ({"params": {"rapida": True}}, 422, "params.rapida"),
        ({"symbol": "btc-usdt"}, 400, "symbol"),
        ({"interval": "7m"}, 400, "interval"),
        ({"limit": 0}, 400, "limit"),
        ({"limit": 5_001}, 400, "limit"),
        ({"desde": "2024"}, 400, "desde"),
        ({"symbol": "ETHUSDT"}, 404, "symbol"),
    ],
)  # fmt: skip
def test_bad_queries_get_a_json_error_naming_the_field(client, velas, query, status, field):
    response = _get(client, **query)
    assert response.status_code == status, response.json
    assert response.json["error"] and field in response.json["detalle"]
