"""Hostile input to the REST API: never a 500, never invalid JSON, never a stored bad number."""

import json
import math

import pytest

from core.models import BacktestRun
from tests.app.test_api import ORDER


def _strict_json(text: str):
    """Parse as strict JSON: NaN / Infinity literals are not JSON."""

    def refuse(constant: str):
        raise AssertionError(f"invalid JSON literal {constant} in the response")

    return json.loads(text, parse_constant=refuse)


def _raw(client, method: str, path: str, body: str):
    return client.open(path, method=method, data=body, content_type="application/json")


def _open_order(client) -> int:
    oid = client.post("/ordenes", json=ORDER).json["id"]
    assert client.put(f"/ordenes/{oid}", json={"estado": "abierta"}).status_code == 200
    return oid


@pytest.mark.parametrize("number", ["1e999", "-1e999", "Infinity", "NaN", "-Infinity"])
def test_a_non_finite_fill_is_refused_and_the_list_stays_valid_json(client, number):
    oid = _open_order(client)
    body = f'{{"estado": "ejecutada", "cantidad_ejecutada": {number}}}'
    response = _raw(client, "PUT", f"/ordenes/{oid}", body)
    assert response.status_code == 422
    assert set(response.json["detalle"]) == {"cantidad_ejecutada"}
    listing = client.get("/ordenes")
    assert _strict_json(listing.get_data(as_text=True))["ordenes"][0]["estado"] == "abierta"


@pytest.mark.parametrize(
    ("estado", "filled"),
    [("ejecutada", 999.0), ("ejecutada", 0.0), ("ejecutada", 0.005), ("parcial", 0.002)],
)
def test_a_fill_lies_between_what_was_filled_and_the_quantity(client, estado, filled):
    oid = _open_order(client)
    partial = client.put(f"/ordenes/{oid}", json={"estado": "parcial", "cantidad_ejecutada": 0.004})
    assert partial.status_code == 200
    response = client.put(f"/ordenes/{oid}", json={"estado": estado, "cantidad_ejecutada": filled})
    assert response.status_code == 422, response.json
    assert "cantidad_ejecutada" in response.json["detalle"]
    order = client.get(f"/ordenes/{oid}").json
    assert order["estado"] == "parcial" and order["cantidad_ejecutada"] == 0.004


def test_ejecutada_fills_the_whole_quantity(client):
    oid = _open_order(client)
    done = client.put(f"/ordenes/{oid}", json={"estado": "ejecutada"})
    assert done.status_code == 200 and done.json["cantidad_ejecutada"] == ORDER["cantidad"]
    other = _open_order(client)
    exact = client.put(
        f"/ordenes/{other}", json={"estado": "ejecutada", "cantidad_ejecutada": 0.01}
    )
    assert exact.status_code == 200 and exact.json["cantidad_ejecutada"] == 0.01


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ('"precio": 1e308', 422, "precio"),
        ('"cantidad": Infinity', 422, "cantidad"),
        ('"cantidad": NaN', 422, "cantidad"),
        ('"cantidad": 1e999', 422, "cantidad"),
        ('"cantidad": true', 422, "cantidad"),
        ('"precio": false', 422, "precio"),
    ],
)
def test_absurd_order_numbers_are_refused_naming_the_field(client, body, status, field):
    fields = {k: v for k, v in ORDER.items() if k != field}
    text = json.dumps(fields)[:-1] + ", " + body + "}"
    response = _raw(client, "POST", "/ordenes", text)
    assert response.status_code == status, response.json
    assert field in response.json["detalle"]
    assert client.get("/ordenes").json["total"] == 0


@pytest.mark.parametrize("path", ["/ordenes", "/backtest", "/ordenes/1"])
def test_deeply_nested_json_is_a_400(client, path):
    body = "[" * 30_000 + "]" * 30_000
    method = "PUT" if path == "/ordenes/1" else "POST"
    response = _raw(client, method, path, body)
    assert response.status_code == 400 and "nests too deeply" in response.json["error"]


BACKTEST = {"symbol": "BTCUSDT", "interval": "1h", "strategy": "sma_cruce"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"capital": 1e308}, "capital"),
        ({"capital": 0.5}, "capital"),
        ({"capital": True}, "capital"),
        ({"start_date": True}, "start_date"),
        ({"start_date": 2**63}, "start_date"),
        ({"end_date": -1}, "end_date"),
        ({"comision": "0.001"}, "comision"),
        ({"stop_loss": 1.5}, "stop_loss"),
        ({"trailing": 0.5}, "trailing"),
        ({"trailing": 0.0009}, "trailing"),
        ({"trailing": -0.01}, "trailing"),
        ({"trailing": "0.01"}, "trailing"),
        ({"trailing": True}, "trailing"),
        ({"apalancamiento": 1000}, "apalancamiento"),
    ],
)
def test_backtest_numbers_are_bounded_and_strict(client, changes, field):
    response = client.post("/backtest", json={**BACKTEST, **changes})
    assert response.status_code == 422, response.json
    assert field in response.json["detalle"]
    assert client.get("/backtests").json["total"] == 0


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999"])
@pytest.mark.parametrize(
    ("path", "body", "listing"),
    [("/backtest", BACKTEST, "/backtests"),
     ("/bots", {"nombre": "b", "symbol": "BTCUSDT", "interval": "1m"}, "/bots")],
)  # fmt: skip
def test_a_non_finite_trailing_stop_is_refused_naming_it(client, number, path, body, listing):
    response = _raw(client, "POST", path, json.dumps(body)[:-1] + f', "trailing": {number}}}')
    assert response.status_code == 422 and set(response.json["detalle"]) == {"trailing"}
    assert client.get(listing).json[listing[1:]] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [('{"rapida": true}', "params.rapida"), ('{"lenta": 1e999}', "params.lenta")],
)
def test_strategy_params_are_not_booleans_or_infinite(client, params, field):
    text = json.dumps(BACKTEST)[:-1] + f', "params": {params}}}'
    response = _raw(client, "POST", "/backtest", text)
    assert response.status_code in (400, 422), response.json
    assert field in response.json["detalle"]
    assert client.get("/backtests").json["total"] == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/velas?symbol=BTCUSDT&interval=1h&start=9223372036854775808", "start"),
        ("/velas?symbol=BTCUSDT&interval=1h&end=99999999999999999999", "end"),
        ("/cruces?since=9223372036854775808", "since"),
        ("/cruces?since=-5", "since"),
        ("/velas?symbol=BTCUSDT&interval=1h&start=2024-01-08&end=2024-01-01", "end"),
        ("/velas?symbol=BTCUSDT&interval=1h&start=2024-01-01&end=2024-01-01", "end"),
    ],
)
def test_bad_times_in_reads_are_400_naming_the_parameter(client, path, field):
    response = client.get(path)
    assert response.status_code == 400, response.json
    assert field in response.json["detalle"]


def test_a_backtest_start_date_beyond_int64_as_text_is_a_400(client):
    body = {**BACKTEST, "start_date": "9223372036854775808"}
    response = client.post("/backtest", json=body)
    assert response.status_code == 400 and "start_date" in response.json["detalle"]


def test_the_json_encoder_refuses_nan_and_infinity(app):
    for value in (math.nan, math.inf):
        with pytest.raises(ValueError):
            app.json.dumps({"x": value})
    assert app.json.dumps({"x": 1.5}) == '{"x": 1.5}'


def test_a_run_with_non_finite_numbers_is_never_stored(app):
    db = app.extensions["kryptelion"].db
    run = BacktestRun(
        symbol="BTCUSDT", interval="1h", strategy="sma_cruce", params={}, start_time=0,
        end_time=1, capital=1000.0, metrics={}, trades=(), equity=((0, 1000.0), (1, math.inf)),
    )  # fmt: skip
    with pytest.raises(Exception, match="not stored"):
        db.backtests.save(run)
    assert db.backtests.count() == 0
