"""/ordenes with Binance's conditional and trailing types, flags and client order ids."""

import pytest

from tests.app.test_api import ORDER

NEW_FIELDS = {
    "precio_disparo": None,
    "tasa_retroceso": None,
    "precio_activacion": None,
    "solo_reducir": False,
    "cerrar_posicion": False,
    "tiempo_en_vigor": "GTC",
    "vigencia_hasta": None,
    "id_cliente": None,
    "id_exchange": None,
    "id_algo": None,
}
MARKET = {"symbol": "BTCUSDT", "lado": "venta", "cantidad": 0.01}


def test_a_plain_limit_order_shows_the_new_fields_with_their_defaults(client):
    created = client.post("/ordenes", json=ORDER).json
    assert {k: created[k] for k in NEW_FIELDS} == NEW_FIELDS
    assert client.get(f"/ordenes/{created['id']}").json == created


@pytest.mark.parametrize(
    "body",
    [
        {**MARKET, "tipo": "stop_mercado", "precio_disparo": 28000.5, "solo_reducir": True},
        {"symbol": "BTCUSDT", "lado": "venta", "tipo": "toma_ganancias_mercado",
         "precio_disparo": 32000.0, "cerrar_posicion": True},
        {**MARKET, "tipo": "stop_limite", "precio": 27990.0, "precio_disparo": 28000.0,
         "tiempo_en_vigor": "GTD", "vigencia_hasta": 1_900_000_000_000},
        {**MARKET, "tipo": "toma_ganancias_limite", "precio": 32010.0, "precio_disparo": 32000.0},
        {**MARKET, "tipo": "stop_movil_mercado", "tasa_retroceso": 1.5,
         "precio_activacion": 31000.0, "id_cliente": "kr-trail_1.a:b/C"},
        {**MARKET, "tipo": "mercado", "tiempo_en_vigor": "IOC", "id_cliente": "kr-2"},
    ],
)  # fmt: skip
def test_every_type_is_created_and_read_back(client, body):
    response = client.post("/ordenes", json=body)
    assert response.status_code == 201, response.json
    created = response.json
    expected = {"cantidad": 0.0, **body}  # a close-position order has no quantity
    assert {k: created[k] for k in expected} == expected
    assert client.get(f"/ordenes/{created['id']}").json == created
    assert client.get("/ordenes").json["ordenes"] == [created]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tipo": "stop_mercado"}, "precio_disparo"),
        ({"tipo": "stop_mercado", "precio_disparo": 28000.0, "precio": 28000.0}, "precio"),
        ({"tipo": "limite"}, "precio"),
        ({"tipo": "mercado", "precio_disparo": 28000.0}, "precio_disparo"),
        ({"tipo": "stop_movil_mercado"}, "tasa_retroceso"),
        ({"tipo": "stop_movil_mercado", "tasa_retroceso": 10.5}, "tasa_retroceso"),
        ({"tipo": "stop_movil_mercado", "tasa_retroceso": 0.05}, "tasa_retroceso"),
        ({"tipo": "mercado", "tasa_retroceso": 1.0}, "tasa_retroceso"),
        ({"tipo": "mercado", "precio_activacion": 1.0}, "precio_activacion"),
        ({"tipo": "mercado", "cerrar_posicion": True, "cantidad": None}, "cerrar_posicion"),
        ({"tipo": "stop_mercado", "precio_disparo": 28000.0, "cerrar_posicion": True}, "cantidad"),
        (
            {"tipo": "stop_mercado", "precio_disparo": 28000.0, "cerrar_posicion": True,
             "cantidad": None, "solo_reducir": True},
            "solo_reducir",
        ),
        ({"tipo": "mercado", "cantidad": None}, "cantidad"),
        ({"tipo": "mercado", "tiempo_en_vigor": "GTD"}, "vigencia_hasta"),
        ({"tipo": "mercado", "vigencia_hasta": 1_900_000_000_000}, "vigencia_hasta"),
        ({"tipo": "mercado", "tiempo_en_vigor": "DAY"}, "tiempo_en_vigor"),
        ({"tipo": "mercado", "solo_reducir": 1}, "solo_reducir"),
        ({"tipo": "mercado", "tasa_retroceso": "1"}, "tasa_retroceso"),
        ({"tipo": "mercado", "id_cliente": "con espacio"}, "id_cliente"),
        ({"tipo": "mercado", "id_cliente": "x" * 37}, "id_cliente"),
        ({"tipo": "stop_mercado", "precio_disparo": 28000.05}, "precio_disparo"),
        ({"tipo": "stop_movil_mercado", "tasa_retroceso": 1.0, "precio_activacion": 5.0},
         "precio_activacion"),
        ({"tipo": "stop_mercado", "precio_disparo": 28000.0, "cantidad": 0.0001}, "cantidad"),
    ],
)  # fmt: skip
def test_a_refused_combination_is_a_422_naming_the_field(client, changes, field):
    response = client.post("/ordenes", json={**MARKET, **changes})
    assert response.status_code == 422, response.json
    assert field in response.json["detalle"]
    assert client.get("/ordenes").json["total"] == 0


def test_a_client_order_id_names_one_order(client):
    body = {**MARKET, "tipo": "mercado", "id_cliente": "intent-7"}
    assert client.post("/ordenes", json=body).status_code == 201
    again = client.post("/ordenes", json=body)
    assert again.status_code == 422 and set(again.json["detalle"]) == {"id_cliente"}
    assert client.get("/ordenes").json["total"] == 1


def test_an_immediate_fill_is_reported_from_pendiente(client):
    oid = client.post("/ordenes", json={**MARKET, "tipo": "mercado"}).json["id"]
    done = client.put(f"/ordenes/{oid}", json={"estado": "ejecutada", "motivo": "FILLED"})
    assert done.status_code == 200 and done.json["cantidad_ejecutada"] == 0.01
    events = client.get(f"/ordenes/{oid}/eventos").json["eventos"]
    assert [(e["desde"], e["hacia"]) for e in events] == [
        (None, "pendiente"),
        ("pendiente", "ejecutada"),
    ]
