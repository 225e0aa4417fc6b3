"""Orders with their event history, against SQLite and PostgreSQL."""

from dataclasses import replace

import pytest

from core.errors import InvalidOrderError, NotFoundError, OrderStateError
from core.models import Order, OrderState, OrderType, Side, TimeInForce

S = OrderState


def _new(db, symbol="BTCUSDT", side=Side.BUY, **kw) -> Order:
    return db.orders.create(
        Order(symbol=symbol, side=side, quantity=0.01, price=29500.5, **kw), actor="api"
    )


def test_order_and_events_round_trip(db):
    order = _new(db)
    assert order.id is not None and order.created_at > 0 and order.state is S.PENDING
    assert db.orders.get(order.id) == order
    opened, _ = db.orders.apply(order.id, S.OPEN, actor="broker", reason="accepted")
    partial, _ = db.orders.apply(order.id, S.PARTIAL, actor="broker", filled_quantity=0.004)
    done, last = db.orders.apply(order.id, S.FILLED, actor="broker")
    assert done.state is S.FILLED and done.filled_quantity == 0.01
    assert db.orders.get(order.id) == done
    events = db.orders.events(order.id)
    assert [(e.from_state, e.to_state, e.actor) for e in events] == [
        (None, S.PENDING, "api"),
        (S.PENDING, S.OPEN, "broker"),
        (S.OPEN, S.PARTIAL, "broker"),
        (S.PARTIAL, S.FILLED, "broker"),
    ]
    assert events[1].reason == "accepted" and events[2].filled_quantity == 0.004
    assert events[-1] == last


def test_illegal_transition_changes_nothing(db):
    order = _new(db)
    db.orders.apply(order.id, S.CANCELED, actor="api")
    with pytest.raises(OrderStateError, match="cannot go from cancelada to abierta"):
        db.orders.apply(order.id, S.OPEN, actor="api")
    assert db.orders.get(order.id).state is S.CANCELED
    assert len(db.orders.events(order.id)) == 2


def test_unknown_order_is_not_found(db):
    with pytest.raises(NotFoundError):
        db.orders.get(999)
    with pytest.raises(NotFoundError):
        db.orders.apply(999, S.CANCELED, actor="api")
    with pytest.raises(NotFoundError):
        db.orders.events(999)


def test_new_orders_start_pending_or_open(db):
    with pytest.raises(OrderStateError):
        _new(db, state=S.FILLED)
    assert _new(db, state=S.OPEN).state is S.OPEN


def test_filters_pagination_and_counts(db):
    ids = [
        _new(db, "BTCUSDT", Side.BUY).id,
        _new(db, "ETHUSDT", Side.SELL).id,
        _new(db, "BTCUSDT", Side.SELL).id,
        _new(db, "BTCUSDT", Side.BUY).id,
    ]
    db.orders.apply(ids[0], S.CANCELED, actor="api")
    assert [o.id for o in db.orders.find()] == ids[::-1]
    assert [o.id for o in db.orders.find(symbol="BTCUSDT")] == [ids[3], ids[2], ids[0]]
    assert [o.id for o in db.orders.find(state=S.PENDING, side=Side.BUY)] == [ids[3]]
    assert [o.id for o in db.orders.find(limit=2, offset=1)] == [ids[2], ids[1]]
    assert db.orders.count(symbol="BTCUSDT", side=Side.SELL) == 1
    assert db.orders.count(state=S.CANCELED) == 1


EVERY_FIELD = [
    Order(
        symbol="BTCUSDT",
        side=Side.SELL,
        quantity=0.0,
        type=OrderType.STOP_MARKET,
        trigger_price=28000.5,
        close_position=True,
        client_order_id="kr-stop_1.a:b/C",
        exchange_order_id="8389765590123456789",
        algo_id="3000000123456789",
    ),
    Order(
        symbol="ETHUSDT",
        side=Side.BUY,
        quantity=0.5,
        price=3100.25,
        type=OrderType.TAKE_PROFIT,
        trigger_price=3100.0,
        reduce_only=True,
        time_in_force=TimeInForce.GTD,
        good_till_date=1_900_000_000_000,
        state=OrderState.OPEN,
    ),
    Order(
        symbol="BTCUSDT",
        side=Side.SELL,
        quantity=0.002,
        type=OrderType.TRAILING_STOP_MARKET,
        callback_rate=0.1,
        activation_price=31000.0,
        reduce_only=True,
        time_in_force=TimeInForce.IOC,
    ),
]


@pytest.mark.parametrize("order", EVERY_FIELD, ids=lambda o: o.type.value)
def test_every_order_field_round_trips(db, order):
    stored = db.orders.create(order, actor="broker")
    assert stored == db.orders.get(stored.id) == db.orders.find()[0]
    times = {"created_at": stored.created_at, "updated_at": stored.updated_at}
    assert stored == replace(order, id=stored.id, **times)
    moved, _ = db.orders.apply(stored.id, S.CANCELED, actor="api")
    assert db.orders.get(stored.id) == moved
    assert moved == replace(stored, state=S.CANCELED, updated_at=moved.updated_at)


def test_lookup_by_client_order_id(db):
    first = _new(db, client_order_id="intent-1")
    _new(db, client_order_id="intent-2")
    assert db.orders.get_by_client_id("intent-1") == first
    with pytest.raises(NotFoundError, match="intent-3"):
        db.orders.get_by_client_id("intent-3")


def test_a_client_order_id_is_used_once(db):
    _new(db, client_order_id="intent-1")
    with pytest.raises(InvalidOrderError) as error:
        _new(db, client_order_id="intent-1")
    assert error.value.field == "id_cliente"
    assert db.orders.count() == 1


def test_exchange_ids_are_recorded_once_and_a_different_one_is_refused(db):
    order = _new(db)
    linked = db.orders.link_exchange(order.id, exchange_order_id="8000000001")
    assert linked.exchange_order_id == "8000000001" and linked.algo_id is None
    assert db.orders.get(order.id).exchange_order_id == "8000000001"
    again = db.orders.link_exchange(order.id, exchange_order_id="8000000001", algo_id="4000000001")
    assert (again.exchange_order_id, again.algo_id) == ("8000000001", "4000000001")
    with pytest.raises(InvalidOrderError) as refused:
        db.orders.link_exchange(order.id, exchange_order_id="8000000002")
    assert refused.value.field == "id_exchange"
    assert db.orders.get(order.id).exchange_order_id == "8000000001"
    with pytest.raises(NotFoundError):
        db.orders.link_exchange(order.id + 1000, algo_id="1")
