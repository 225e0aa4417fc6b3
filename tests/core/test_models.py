"""Order field combinations: what Binance accepts builds an Order, the rest names its field."""

import math

import pytest

from core.errors import InvalidOrderError
from core.models import Order, OrderType, Side, TimeInForce

T = OrderType
BASE = {"symbol": "BTCUSDT", "side": Side.SELL, "quantity": 0.01}


def _order(**fields) -> Order:
    return Order(**{**BASE, **fields})


@pytest.mark.parametrize(
    "fields",
    [
        {"type": T.LIMIT, "price": 30000.0},
        {"type": T.LIMIT, "price": 30000.0, "time_in_force": TimeInForce.GTX},
        {"type": T.LIMIT, "price": 30000.0, "time_in_force": "GTD", "good_till_date": 10**12},
        {"type": T.MARKET},
        {"type": T.MARKET, "reduce_only": True, "client_order_id": "bot-1_a.b:c/D"},
        {"type": T.STOP_MARKET, "trigger_price": 29000.0},
        {"type": T.STOP_MARKET, "trigger_price": 29000.0, "close_position": True, "quantity": 0},
        {"type": T.TAKE_PROFIT_MARKET, "trigger_price": 31000.0, "reduce_only": True},
        {"type": T.TAKE_PROFIT_MARKET, "trigger_price": 1.0, "close_position": True, "quantity": 0},
        {"type": T.STOP, "price": 28900.0, "trigger_price": 29000.0},
        {"type": T.TAKE_PROFIT, "price": 31100.0, "trigger_price": 31000.0},
        {"type": T.TRAILING_STOP_MARKET, "callback_rate": 0.1},
        {"type": T.TRAILING_STOP_MARKET, "callback_rate": 10.0, "activation_price": 31000.0},
        {"client_order_id": "x" * 36, "price": 1.0},
    ],
)
def test_combinations_binance_accepts_make_an_order(fields):
    order = _order(**fields)
    assert order.type is T(fields.get("type", T.LIMIT))
    assert isinstance(order.time_in_force, TimeInForce)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"type": T.LIMIT}, "precio"),
        ({"type": T.STOP, "trigger_price": 29000.0}, "precio"),
        ({"type": T.MARKET, "price": 30000.0}, "precio"),
        ({"type": T.STOP_MARKET}, "precio_disparo"),
        ({"type": T.TAKE_PROFIT, "price": 31100.0}, "precio_disparo"),
        ({"type": T.MARKET, "trigger_price": 29000.0}, "precio_disparo"),
        (
            {"type": T.TRAILING_STOP_MARKET, "trigger_price": 1.0, "callback_rate": 1.0},
            "precio_disparo",
        ),
        ({"type": T.TRAILING_STOP_MARKET}, "tasa_retroceso"),
        ({"type": T.TRAILING_STOP_MARKET, "callback_rate": 0.09}, "tasa_retroceso"),
        ({"type": T.TRAILING_STOP_MARKET, "callback_rate": 10.01}, "tasa_retroceso"),
        ({"type": T.TRAILING_STOP_MARKET, "callback_rate": math.nan}, "tasa_retroceso"),
        ({"type": T.MARKET, "callback_rate": 1.0}, "tasa_retroceso"),
        ({"type": T.MARKET, "activation_price": 30000.0}, "precio_activacion"),
        (
            {"type": T.TRAILING_STOP_MARKET, "callback_rate": 1.0, "activation_price": -1.0},
            "precio_activacion",
        ),
        ({"type": T.MARKET, "close_position": True, "quantity": 0}, "cerrar_posicion"),
        (
            {"type": T.STOP, "price": 1.0, "trigger_price": 1.0, "close_position": True},
            "cerrar_posicion",
        ),
        (
            {"type": T.STOP_MARKET, "trigger_price": 1.0, "close_position": True},
            "cantidad",
        ),
        (
            {
                "type": T.STOP_MARKET,
                "trigger_price": 1.0,
                "close_position": True,
                "quantity": 0,
                "reduce_only": True,
            },
            "solo_reducir",
        ),
        ({"type": T.MARKET, "quantity": 0}, "cantidad"),
        ({"type": T.MARKET, "quantity": -1.0}, "cantidad"),
        ({"type": T.MARKET, "quantity": math.inf}, "cantidad"),
        ({"price": 0.0}, "precio"),
        ({"price": math.nan}, "precio"),
        ({"type": T.STOP_MARKET, "trigger_price": math.inf}, "precio_disparo"),
        ({"price": 1.0, "time_in_force": TimeInForce.GTD}, "vigencia_hasta"),
        ({"price": 1.0, "good_till_date": 10**12}, "vigencia_hasta"),
        ({"price": 1.0, "client_order_id": ""}, "id_cliente"),
        ({"price": 1.0, "client_order_id": "x" * 37}, "id_cliente"),
        ({"price": 1.0, "client_order_id": "a b"}, "id_cliente"),
        ({"price": 1.0, "client_order_id": "abc\n"}, "id_cliente"),
        ({"price": 1.0, "client_order_id": "ñ"}, "id_cliente"),
        ({"type": "stop"}, "tipo"),
        ({"price": 1.0, "time_in_force": "GTE"}, "tiempo_en_vigor"),
    ],
)
def test_combinations_binance_refuses_name_the_public_field(fields, field):
    with pytest.raises(InvalidOrderError) as error:
        _order(**fields)
    assert error.value.field == field and field in str(error.value)


def test_the_spanish_type_words_are_the_documented_ones():
    assert [t.value for t in T] == [
        "limite",
        "mercado",
        "stop_mercado",
        "toma_ganancias_mercado",
        "stop_limite",
        "toma_ganancias_limite",
        "stop_movil_mercado",
    ]
    assert [t for t in T if t.is_conditional] == [
        T.STOP_MARKET,
        T.TAKE_PROFIT_MARKET,
        T.STOP,
        T.TAKE_PROFIT,
        T.TRAILING_STOP_MARKET,
    ]
