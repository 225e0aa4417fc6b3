"""/ordenes: create, list, read, transition and cancel orders; every change is an order event."""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint

from app.api import operation
from app.schemas import Orden, OrdenesPage, OrdenesQuery, OrdenEvento, OrdenIn, OrdenUpdate
from app.services import services
from core.models import Order, OrderEvent, OrderState, OrderType
from core.rules import check_order, check_price

bp = Blueprint("ordenes", __name__)
ACTOR = "api"


def order_json(order: Order) -> dict:
    return Orden(**order.public()).model_dump(mode="json")  # type: ignore[arg-type]


def order_from(body: OrdenIn) -> Order:
    """The core order the body describes; raises InvalidOrderError (422) naming the field."""
    return Order(
        symbol=body.symbol, side=body.lado, quantity=body.cantidad or 0.0, price=body.precio,
        type=body.tipo, state=OrderState(body.estado), trigger_price=body.precio_disparo,
        callback_rate=body.tasa_retroceso, activation_price=body.precio_activacion,
        reduce_only=body.solo_reducir, close_position=body.cerrar_posicion,
        time_in_force=body.tiempo_en_vigor, good_till_date=body.vigencia_hasta,
        client_order_id=body.id_cliente,
    )  # fmt: skip


def event_json(event: OrderEvent) -> dict:
    return OrdenEvento(
        id=event.id or 0, orden_id=event.order_id or 0, desde=event.from_state,
        hacia=event.to_state, momento=event.at, actor=event.actor, motivo=event.reason,
        cantidad_ejecutada=event.filled_quantity,
    ).model_dump(mode="json")  # fmt: skip


OPEN_STATES = (OrderState.PENDING, OrderState.OPEN, OrderState.PARTIAL)


# The order each type becomes once triggered, for the exchange filters.
MARKET_LIKE = frozenset(
    {OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET,
     OrderType.TRAILING_STOP_MARKET}
)  # fmt: skip


def check_filters(order: Order) -> None:
    """Refuse what the exchange would refuse (core.rules), naming the filter: 422.

    A limit order here is a record that may be sent later, so PERCENT_PRICE (a band around the
    price of the moment) is left to whoever sends it; a market order is priced at the last
    trade for MIN_NOTIONAL, as the exchange would at once, and a conditional one that becomes
    a market order at its trigger (or activation) price. A close-position order has no
    quantity to check; its trigger price still meets PRICE_FILTER.
    """
    svc = services()
    rules = svc.symbol_rules(order.symbol)
    for field, price in (
        ("precio_disparo", order.trigger_price),
        ("precio_activacion", order.activation_price),
    ):
        if price is not None:
            check_price(rules, Decimal(str(price)), None, field)
    if order.close_position:
        return
    open_orders = sum(svc.db.orders.count(symbol=order.symbol, state=s) for s in OPEN_STATES)
    kind = OrderType.MARKET if order.type in MARKET_LIKE else OrderType.LIMIT
    reference = order.trigger_price or order.activation_price
    if kind is OrderType.MARKET and reference is None:
        reference = svc.last_price(order.symbol)
    last = reference if kind is OrderType.MARKET else None
    check_order(rules, kind, order.quantity, order.price, last, open_orders)


@operation(
    bp,
    "/ordenes",
    "GET",
    "List orders, newest first",
    query=OrdenesQuery,
    response=OrdenesPage,
    statuses=(400,),
)
def list_orders(query: OrdenesQuery):  # type: ignore[no-untyped-def]
    db = services().db
    orders = db.orders.find(
        query.symbol, query.estado, query.lado, limit=query.limit, offset=query.offset
    )
    return {
        "ordenes": [order_json(o) for o in orders],
        "total": db.orders.count(query.symbol, query.estado, query.lado),
        "limit": query.limit,
        "offset": query.offset,
    }


@operation(
    bp,
    "/ordenes",
    "POST",
    "Create an order (validated against the exchange filters)",
    body=OrdenIn,
    response=Orden,
    statuses=(201, 400, 415, 422, 502),
)
def create_order(body: OrdenIn):  # type: ignore[no-untyped-def]
    order = order_from(body)
    check_filters(order)
    return order_json(services().db.orders.create(order, actor=ACTOR)), 201


@operation(bp, "/ordenes/<int:order_id>", "GET", "One order", response=Orden, statuses=(404,))
def get_order(order_id: int):  # type: ignore[no-untyped-def]
    return order_json(services().db.orders.get(order_id))


@operation(
    bp,
    "/ordenes/<int:order_id>",
    "PUT",
    "Move an order to a new state",
    body=OrdenUpdate,
    response=Orden,
    statuses=(404, 409, 415, 422),
)
def update_order(order_id: int, body: OrdenUpdate):  # type: ignore[no-untyped-def]
    order, _ = services().db.orders.apply(
        order_id, body.estado, ACTOR, body.motivo, body.cantidad_ejecutada
    )
    return order_json(order)


@operation(
    bp,
    "/ordenes/<int:order_id>",
    "DELETE",
    "Cancel an order (the record is kept)",
    response=Orden,
    statuses=(404, 409),
)
def cancel_order(order_id: int):  # type: ignore[no-untyped-def]
    order, _ = services().db.orders.apply(order_id, OrderState.CANCELED, ACTOR, "cancelada")
    return order_json(order)


@operation(
    bp, "/ordenes/<int:order_id>/eventos", "GET", "An order's state history", statuses=(404,)
)
def order_events(order_id: int):  # type: ignore[no-untyped-def]
    return {"eventos": [event_json(e) for e in services().db.orders.events(order_id)]}
