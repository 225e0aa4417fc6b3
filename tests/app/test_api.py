"""Every REST route through Flask's test client: results, filters and documented errors."""

import pandas as pd
import pytest

from app import create_app
from backtesting.simulador import ejecutar_backtest
from config.settings import settings_from_mapping
from core.repository import Database
from estrategias.factory import crear_estrategia

ORDER = {
    "symbol": "BTCUSDT",
    "lado": "compra",
    "precio": 29500.5,
    "cantidad": 0.01,
    "estado": "pendiente",
}


def _order(client, **changes):
    response = client.post("/ordenes", json={**ORDER, **changes})
    assert response.status_code == 201, response.json
    return response.json


def test_health_and_strategies(client):
    assert client.get("/health").json == {
        "estado": "ok",
        "mercado": "demo",
        "base_de_datos": "sqlite",
        "revision": Database.head(),
    }
    names = [s["nombre"] for s in client.get("/estrategias").json["estrategias"]]
    assert names == ["sma_cruce", "rsi_reversion", "macd_tendencia", "ml_predictor"]


def test_order_lifecycle_with_events(client):
    created = _order(client)
    assert {k: created[k] for k in ("symbol", "lado", "precio", "cantidad", "estado")} == ORDER
    oid = created["id"]
    assert client.get(f"/ordenes/{oid}").json == created
    opened = client.put(f"/ordenes/{oid}", json={"estado": "abierta", "motivo": "enviada"})
    assert opened.status_code == 200 and opened.json["estado"] == "abierta"
    partial = client.put(f"/ordenes/{oid}", json={"estado": "parcial", "cantidad_ejecutada": 0.004})
    assert partial.json["cantidad_ejecutada"] == 0.004
    illegal = client.put(f"/ordenes/{oid}", json={"estado": "pendiente"})
    assert (
        illegal.status_code == 409
        and "cannot go from parcial to pendiente" in illegal.json["error"]
    )
    cancelled = client.delete(f"/ordenes/{oid}")
    assert cancelled.status_code == 200 and cancelled.json["estado"] == "cancelada"
    assert client.delete(f"/ordenes/{oid}").status_code == 409  # final: nothing more to cancel
    assert client.get(f"/ordenes/{oid}").json["estado"] == "cancelada"  # kept, not deleted
    events = client.get(f"/ordenes/{oid}/eventos").json["eventos"]
    assert [(e["desde"], e["hacia"]) for e in events] == [
        (None, "pendiente"),
        ("pendiente", "abierta"),
        ("abierta", "parcial"),
        ("parcial", "cancelada"),
    ]
    assert events[1]["motivo"] == "enviada"


def test_order_filters_and_pagination(client):
    ids = [
        _order(client)["id"],
        _order(client, symbol="ETHUSDT", precio=3000.0, lado="venta")["id"],
        _order(client, lado="venta")["id"],
    ]
    client.delete(f"/ordenes/{ids[0]}")
    listing = client.get("/ordenes").json
    assert [o["id"] for o in listing["ordenes"]] == ids[::-1] and listing["total"] == 3
    assert [o["id"] for o in client.get("/ordenes?symbol=BTCUSDT").json["ordenes"]] == [
        ids[2],
        ids[0],
    ]
    assert [o["id"] for o in client.get("/ordenes?estado=pendiente").json["ordenes"]] == [
        ids[2],
        ids[1],
    ]
    assert [o["id"] for o in client.get("/ordenes?lado=venta&symbol=ETHUSDT").json["ordenes"]] == [
        ids[1]
    ]
    page = client.get("/ordenes?limit=1&offset=1").json
    assert [o["id"] for o in page["ordenes"]] == [ids[1]] and page["total"] == 3


@pytest.mark.parametrize(
    ("changes", "status", "needle"),
    [
        ({"precio": 29500.55}, 422, "PRICE_FILTER"),
        ({"cantidad": 0.0001}, 422, "LOT_SIZE"),
        ({"precio": 300.0, "cantidad": 0.001}, 422, "MIN_NOTIONAL"),
        ({"precio": 10.0}, 422, "PRICE_FILTER"),
        ({"precio": 900_000.0}, 422, "PRICE_FILTER"),
        ({"tipo": "mercado", "precio": None, "cantidad": 121.0}, 422, "MARKET_LOT_SIZE"),
        ({"cantidad": 1001.0}, 422, "LOT_SIZE"),
        ({"cantidad": True}, 422, "invalid fields"),
        ({"precio": "29500.5"}, 422, "invalid fields"),
        ({"precio": 1e308}, 422, "invalid fields"),
        ({"symbol": "NOPEUSDT"}, 400, "unknown symbol"),
        ({"lado": "arriba"}, 422, "invalid fields"),
        ({"cantidad": -1}, 422, "invalid fields"),
        ({"estado": "ejecutada"}, 422, "invalid fields"),
        ({"sorpresa": 1}, 422, "invalid fields"),
    ],
)
def test_bad_orders_are_refused_naming_the_problem(client, changes, status, needle):
    response = client.post("/ordenes", json={**ORDER, **changes})
    assert response.status_code == status and needle in response.json["error"]
    assert set(response.json) == {"error", "detalle"}
    assert client.get("/ordenes").json["total"] == 0


def test_protocol_errors_are_json(client):
    assert client.post("/ordenes", data="x", content_type="text/plain").status_code == 415
    bad_json = client.post("/ordenes", data="{", content_type="application/json")
    assert bad_json.status_code == 400 and bad_json.json["error"] == "the body is not valid JSON"
    assert client.post("/ordenes", json=[1, 2]).status_code == 422
    big = client.post("/ordenes", data="x" * 70_000, content_type="application/json")
    assert big.status_code == 413 and "error" in big.json
    assert client.get("/nowhere").status_code == 404 and "error" in client.get("/nowhere").json
    assert client.patch("/health").status_code == 405
    assert client.get("/ordenes/999").status_code == 404
    bad_query = client.get("/ordenes?limit=0&estado=rara")
    assert bad_query.status_code == 400 and set(bad_query.json["detalle"]) == {"limit", "estado"}


def test_backtest_with_dates_runs_stores_and_lists(client):
    body = {
        "symbol": "BTCUSDT",
        "interval": "1h",
        "strategy": "sma_cruce",
        "capital": 1000,
        "start_date": "2024-01-01",
        "end_date": "2024-01-31",
        "params": {"rapida": 5, "lenta": 20},
    }
    response = client.post("/backtest", json=body)
    assert response.status_code == 201, response.json
    run = response.json
    assert run["rango"]["inicio_iso"] == "2024-01-01T00:00:00Z"
    assert run["rango"]["fin_iso"] == "2024-01-31T23:00:00Z"  # the end date's whole day
    assert run["params"] == {"rapida": 5, "lenta": 20, "modo": "ambos"}
    assert run["metricas"]["trades"] == len(run["trades"]) > 0
    assert run["equity"][0][0] == run["rango"]["inicio"] and len(run["equity"]) == 31 * 24
    assert client.get(f"/backtest/{run['id']}").json == run
    listed = client.get("/backtests").json
    assert listed["total"] == 1 and "trades" not in listed["backtests"][0]


TRADE_FIELDS = (
    "side", "entry_time", "entry_price", "exit_time", "exit_price", "quantity", "pnl", "return",
    "fees", "funding", "exit_reason",
)  # fmt: skip


def test_a_backtest_with_a_trailing_stop_trades_as_the_engine_does_with_it(app, client):
    body = {
        "symbol": "BTCUSDT", "interval": "1h", "strategy": "sma_cruce", "capital": 1000,
        "start_date": "2024-01-01", "end_date": "2024-01-31", "params": {"rapida": 5, "lenta": 20},
        "trailing": 0.01,
    }  # fmt: skip
    response = client.post("/backtest", json=body)
    assert response.status_code == 201, response.json
    run = response.json
    stored = app.extensions["kryptelion"].db.candles.read_arrays(
        "BTCUSDT", "1h", run["rango"]["inicio"], run["rango"]["fin"] + 1
    )
    direct = ejecutar_backtest(
        pd.DataFrame(stored._asdict()), crear_estrategia("sma_cruce", rapida=5, lenta=20),
        capital=1000, trailing=0.01,
    )  # fmt: skip
    expected = [dict(zip(TRADE_FIELDS, row, strict=True))
                for row in direct.trades[list(TRADE_FIELDS)].itertuples(index=False)]  # fmt: skip
    assert run["trades"] == expected
    assert "stop_movil" in {t["exit_reason"] for t in expected}
    assert client.get(f"/backtest/{run['id']}").json["trades"] == expected


def test_backtest_shortest_form_downloads_the_default_window(client):
    response = client.post(
        "/backtest",
        json={"symbol": "BTCUSDT", "interval": "1h", "strategy": "sma_cruce", "capital": 1000},
    )
    assert response.status_code == 201, response.json
    span = response.json["rango"]["fin"] - response.json["rango"]["inicio"]
    assert 29 * 86_400_000 <= span <= 30 * 86_400_000


@pytest.mark.parametrize(
    ("changes", "status", "needle"),
    [
        ({"strategy": "sma_cruze"}, 400, "did you mean 'sma_cruce'"),
        ({"params": {"rapida": 50, "lenta": 10}}, 400, "smaller than lenta"),
        ({"interval": "7m"}, 422, "invalid fields"),
        ({"symbol": "NOPEUSDT"}, 400, "unknown symbol"),
        ({"start_date": "2024-02-01", "end_date": "2024-01-01"}, 422, "before end_date"),
        ({"start_date": "ayer"}, 400, "not an ISO date"),
        ({"stop_loss": "2 bananas"}, 400, "ATR multiple"),
        ({"trailing": 0.5}, 422, "invalid fields"),
        ({"trailing": "1%"}, 422, "invalid fields"),
        ({"start_date": "2015-01-01", "end_date": "2015-02-01"}, 404, "no candles"),
    ],
)
def test_bad_backtests_get_clear_errors(client, changes, status, needle):
    body = {
        "symbol": "BTCUSDT",
        "interval": "1h",
        "strategy": "sma_cruce",
        "capital": 1000,
        "start_date": "2024-01-01",
        "end_date": "2024-01-10",
        **changes,
    }
    response = client.post("/backtest", json=body)
    assert response.status_code == status and needle in response.json["error"], response.json
    assert client.get("/backtests").json["total"] == 0
    assert client.get("/backtest/12345").status_code == 404


def test_velas_with_range_limit_and_overlays(client):
    response = client.get(
        "/velas?symbol=BTCUSDT&interval=1h&start=2024-01-01&end=2024-01-02"
        "&indicadores=sma:5,rsi:14,bollinger:20,macd"
    )
    assert response.status_code == 200, response.json
    data = response.json
    assert len(data["velas"]) == 24 and data["velas"][0]["open_time"] == 1_704_067_200_000
    assert set(data["velas"][0]) == {
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "closed",
    }
    overlays = data["indicadores"]
    assert (
        len(overlays["sma:5"]) == 24 and None not in overlays["sma:5"]
    )  # warm-up came from before
    closes = [v["close"] for v in data["velas"]]
    assert overlays["sma:5"][-1] == pytest.approx(sum(closes[-5:]) / 5)
    assert set(overlays["bollinger:20"]) == {"upper", "middle", "lower"}
    assert set(overlays["macd"]) == {"macd", "signal", "hist"}
    latest = client.get("/velas?symbol=ETHUSDT&interval=1m&limit=50").json
    assert len(latest["velas"]) == 50
    assert client.get("/velas?symbol=BTCUSDT&interval=1h&indicadores=magia:3").status_code == 400
    assert client.get("/velas?symbol=BTCUSDT&interval=9h").status_code == 400
    assert client.get("/velas?symbol=BTCUSDT&interval=1h&limit=20000").status_code == 400


def test_cruces_and_ultimos_cruces(app, client):
    from core.models import CrossKind, Crossover

    db = app.extensions["kryptelion"].db
    db.crossovers.add(
        [
            Crossover("BTCUSDT", "1m", t, CrossKind.GOLDEN, 100.0 + t, 1.0, 0.5)
            for t in (1000, 2000, 3000)
        ]
        + [Crossover("ETHUSDT", "5m", 2500, CrossKind.DEATH, 10.0, 0.5, 1.0)]
    )
    everything = client.get("/cruces").json["cruces"]
    assert [c["open_time"] for c in everything] == [3000, 2500, 2000, 1000]
    assert everything[1] == {
        "symbol": "ETHUSDT",
        "interval": "5m",
        "open_time": 2500,
        "tipo": "bajista",
        "precio": 10.0,
        "rapida": 0.5,
        "lenta": 1.0,
        "estrategia": "sma_cruce",
    }
    filtered = client.get("/cruces?symbol=BTCUSDT&interval=1m&since=2000&limit=1").json["cruces"]
    assert [c["open_time"] for c in filtered] == [3000]
    latest = client.get("/ultimos_cruces").json["cruces"]
    assert sorted((c["symbol"], c["open_time"]) for c in latest) == [
        ("BTCUSDT", 3000),
        ("ETHUSDT", 2500),
    ]
    assert client.get("/cruces?interval=2m").status_code == 400


def test_metrics_report_process_machine_database_and_bridge(client):
    client.get("/velas?symbol=BTCUSDT&interval=1h&start=2024-01-01&end=2024-01-02")
    metrics = client.get("/metrics").json
    assert metrics["proceso"]["rss_bytes"] > 10_000_000 and metrics["proceso"]["uptime_s"] >= 0
    assert 0 < metrics["sistema"]["ram_percent"] < 100 and metrics["sistema"]["cpus"] >= 1
    assert metrics["base_de_datos"]["tamano_bytes"] > 0
    assert {
        "symbol": "BTCUSDT",
        "interval": "1h",
        "cantidad": 24,
        "primera": "2024-01-01T00:00:00Z",
        "ultima": "2024-01-01T23:00:00Z",
    } in metrics["base_de_datos"]["velas"]
    assert metrics["bridge"]["estado"] == "no disponible"


def test_openapi_document_and_docs_page(client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    for path in (
        "/backtest",
        "/backtest/{run_id}",
        "/backtests",
        "/estrategias",
        "/velas",
        "/ordenes",
        "/ordenes/{order_id}",
        "/ordenes/{order_id}/eventos",
        "/metrics",
        "/cruces",
        "/ultimos_cruces",
        "/health",
    ):
        assert path in spec["paths"], path
    for model in ("BacktestIn", "BotIn"):
        trailing = spec["components"]["schemas"][model]["properties"]["trailing"]["anyOf"][0]
        assert (trailing["minimum"], trailing["maximum"]) == (0.001, 0.1), model
    post = spec["paths"]["/ordenes"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("OrdenIn")
    assert "OrdenIn" in spec["components"]["schemas"] and "422" in post["responses"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"/ordenes" in docs.data


def test_api_token_guards_mutating_routes(demo_exchange, tmp_path):
    settings = settings_from_mapping(
        {
            "DATA_DIR": str(tmp_path),
            "API_TOKEN": "s3cret-token",
            "DEMO_PORT": str(demo_exchange.port),
        }
    )
    client = create_app(settings).test_client()
    refused = client.post("/ordenes", json=ORDER)
    assert refused.status_code == 401 and "s3cret" not in refused.get_data(as_text=True)
    assert (
        client.post("/ordenes", json=ORDER, headers={"Authorization": "Bearer wrong"}).status_code
        == 401
    )
    accepted = client.post("/ordenes", json=ORDER, headers={"Authorization": "Bearer s3cret-token"})
    assert accepted.status_code == 201
    assert client.get("/ordenes").status_code == 200  # reading needs no token
    assert "s3cret" not in client.get("/metrics").get_data(as_text=True)
