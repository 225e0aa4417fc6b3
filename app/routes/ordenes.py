"""/ordenes: create, list, read, transition and cancel orders; every change is an order event."""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint

from app.api import RequestError, operation
from app.schemas import Orden, OrdenesPage, OrdenesQuery, OrdenEvento, OrdenIn, OrdenUpdate
from app.services import services
from core.models import Order, OrderEvent, OrderState, OrderType

bp = Blueprint("ordenes", __name__)
ACTOR = "api"


def order_json(order: Order) -> dict:
    return Orden(
        id=order.id or 0, symbol=order.symbol, lado=order.side, tipo=order.type,
        precio=order.price, cantidad=order.quantity, cantidad_ejecutada=order.filled_quantity,
        estado=order.state, creada=order.created_at, actualizada=order.updated_at,
    ).model_dump(mode="json")  # fmt: skip


def event_json(event: OrderEvent) -> dict:
    return OrdenEvento(
        id=event.id or 0, orden_id=event.order_id or 0, desde=event.from_state,
        hacia=event.to_state, momento=event.at, actor=event.actor, motivo=event.reason,
        cantidad_ejecutada=event.filled_quantity,
    ).model_dump(mode="json")  # fmt: skip


def _multiple(value: Decimal, step: Decimal) -> bool:
    return step == 0 or value % step == 0


def _reject(filter_name: str, message: str, **limits: Decimal) -> RequestError:
    detail = {"filtro": filter_name, **{k: str(v) for k, v in limits.items()}}
    return RequestError(422, f"{filter_name}: {message}", detail)


def check_filters(body: OrdenIn) -> None:
    """Refuse what the exchange would refuse, naming the filter (tick, step, min notional)."""
    rules = services().symbol_filters(body.symbol)
    quantity = Decimal(str(body.cantidad))
    if not _multiple(quantity, rules["stepSize"]):
        raise _reject(
            "LOT_SIZE",
            f"cantidad {quantity} is not a multiple of stepSize",
            stepSize=rules["stepSize"],
        )
    if not rules["minQty"] <= quantity <= rules["maxQty"]:
        raise _reject(
            "LOT_SIZE",
            f"cantidad {quantity} is outside [minQty, maxQty]",
            minQty=rules["minQty"],
            maxQty=rules["maxQty"],
        )
    if body.tipo is OrderType.MARKET:
        return
    if body.precio is None:
        raise RequestError(422, "precio is required for a limit order", {"precio": "required"})
    price = Decimal(str(body.precio))
    if not _multiple(price, rules["tickSize"]):
        raise _reject(
            "PRICE_FILTER",
            f"precio {price} is not a multiple of tickSize",
            tickSize=rules["tickSize"],
        )
    if price * quantity < rules["notional"]:
        raise _reject(
            "MIN_NOTIONAL",
            f"precio x cantidad = {price * quantity} is below the minimum notional",
            notional=rules["notional"],
        )


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
    filters = {"symbol": query.symbol, "state": query.estado, "side": query.lado}
    orders = db.orders.find(**filters, limit=query.limit, offset=query.offset)
    return {
        "ordenes": [order_json(o) for o in orders],
        "total": db.orders.count(**filters),
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
    check_filters(body)
    order = Order(
        symbol=body.symbol,
        side=body.lado,
        quantity=body.cantidad,
        price=body.precio,
        type=body.tipo,
        state=OrderState(body.estado),
    )
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
