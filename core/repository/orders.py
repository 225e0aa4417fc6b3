"""Orders and their event history; every state change is stored with its event atomically."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import cast

from sqlalchemy import Connection, Engine, Row, Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import InvalidOrderError, NotFoundError, OrderStateError
from core.models import Order, OrderEvent, OrderState, OrderType, Side, TimeInForce
from core.repository.engine import read_connection, write_transaction
from core.repository.tables import BotRow, OrderEventRow, OrderRow
from core.risk_types import Purpose
from core.state import creation_event, transition

_orders = cast(Table, OrderRow.__table__)
_events = cast(Table, OrderEventRow.__table__)
_bots = cast(Table, BotRow.__table__)


def _order(row: Row) -> Order:
    return Order(
        id=row.id,
        symbol=row.symbol,
        side=Side(row.side),
        type=OrderType(row.type),
        price=row.price,
        quantity=row.quantity,
        state=OrderState(row.state),
        filled_quantity=row.filled_quantity,
        client_order_id=row.client_order_id,
        exchange_order_id=row.exchange_order_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        reduce_only=bool(row.reduce_only),
        close_position=bool(row.close_position),
        trigger_price=row.trigger_price,
        callback_rate=row.callback_rate,
        activation_price=row.activation_price,
        time_in_force=TimeInForce(row.time_in_force),
        good_till_date=row.good_till_date,
        algo_id=row.algo_id,
        bot_id=row.bot_id,
        purpose=None if row.purpose is None else Purpose(row.purpose),
    )


def _order_values(order: Order) -> dict[str, object]:
    return {
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.type.value,
        "price": order.price,
        "quantity": order.quantity,
        "state": order.state.value,
        "filled_quantity": order.filled_quantity,
        "client_order_id": order.client_order_id,
        "exchange_order_id": order.exchange_order_id,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "reduce_only": order.reduce_only,
        "close_position": order.close_position,
        "trigger_price": order.trigger_price,
        "callback_rate": order.callback_rate,
        "activation_price": order.activation_price,
        "time_in_force": order.time_in_force.value,
        "good_till_date": order.good_till_date,
        "algo_id": order.algo_id,
        "bot_id": order.bot_id,
        "purpose": None if order.purpose is None else str(order.purpose),
    }


def _purpose(order: Order) -> Purpose | None:
    """The order's purpose as a Purpose; raises InvalidOrderError (`proposito`) for another word."""
    if order.purpose is None:
        return None
    try:
        return Purpose(order.purpose)
    except ValueError:
        words = ", ".join(p.value for p in Purpose)
        raise InvalidOrderError(
            "proposito", f"proposito: {order.purpose!r} is not one of {words}"
        ) from None


def _check_bot(connection: Connection, bot_id: int | None) -> None:
    """Raise NotFoundError for a bot that does not exist (before the foreign key would)."""
    query = select(_bots.c.id).where(_bots.c.id == bot_id)
    if bot_id is not None and connection.execute(query).first() is None:
        raise NotFoundError(f"bot {bot_id} does not exist")


def _event(row: Row) -> OrderEvent:
    return OrderEvent(
        id=row.id,
        order_id=row.order_id,
        from_state=None if row.from_state is None else OrderState(row.from_state),
        to_state=OrderState(row.to_state),
        at=row.at,
        actor=row.actor,
        reason=row.reason,
        filled_quantity=row.filled_quantity,
    )


def _event_values(event: OrderEvent, order_id: int) -> dict[str, object]:
    return {
        "order_id": order_id,
        "from_state": None if event.from_state is None else event.from_state.value,
        "to_state": event.to_state.value,
        "at": event.at,
        "actor": event.actor,
        "reason": event.reason,
        "filled_quantity": event.filled_quantity,
    }


class OrderRepository:
    """Create, read, filter and transition orders; orders are never deleted."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, order: Order, actor: str, reason: str = "creada") -> Order:
        """Store a new order with its creation event; returns it with `id` and timestamps set.

        Raises OrderStateError for a state other than pendiente/abierta, InvalidOrderError
        (`id_cliente`) when another order already has its client_order_id, (`proposito`) for
        a purpose that is not a Purpose word; NotFoundError when its bot_id names no bot."""
        if order.state not in (OrderState.PENDING, OrderState.OPEN):
            raise OrderStateError(
                f"a new order starts pendiente or abierta, not {order.state.value}"
            )
        now = order.created_at or int(time.time() * 1000)
        order = replace(order, created_at=now, updated_at=now, purpose=_purpose(order))
        try:
            with write_transaction(self._engine) as connection:
                _check_bot(connection, order.bot_id)
                order_id = connection.execute(
                    insert(_orders).values(_order_values(order)).returning(_orders.c.id)
                ).scalar_one()
                order = replace(order, id=order_id)
                event = creation_event(order, actor, reason)
                connection.execute(insert(_events).values(_event_values(event, order_id)))
        except IntegrityError:
            # client_order_id is the orders table's only unique column.
            if order.client_order_id is None:
                raise
            raise InvalidOrderError(
                "id_cliente", f"an order with id_cliente {order.client_order_id!r} exists"
            ) from None
        return order

    def get(self, order_id: int) -> Order:
        """The order with `order_id`; raises NotFoundError."""
        with read_connection(self._engine) as connection:
            row = connection.execute(select(_orders).where(_orders.c.id == order_id)).first()
        if row is None:
            raise NotFoundError(f"order {order_id} does not exist")
        return _order(row)

    def get_by_client_id(self, client_order_id: str) -> Order:
        """The order whose `client_order_id` (Binance's newClientOrderId) this is, so a retried
        submission finds the order it already made; raises NotFoundError."""
        query = select(_orders).where(_orders.c.client_order_id == client_order_id)
        with read_connection(self._engine) as connection:
            row = connection.execute(query).first()
        if row is None:
            raise NotFoundError(f"no order has client_order_id {client_order_id!r}")
        return _order(row)

    def link_exchange(
        self, order_id: int, exchange_order_id: str | None = None, algo_id: str | None = None
    ) -> Order:
        """Record the ids the exchange gave the order (orderId; algoId for a conditional one).

        Set once: an id already recorded may be written again only with the same value, so a
        replayed acknowledgement is harmless and a mix-up is loud. Raises NotFoundError, or
        InvalidOrderError naming the field that would change.
        """
        with write_transaction(self._engine) as connection:
            row = connection.execute(select(_orders).where(_orders.c.id == order_id)).first()
            if row is None:
                raise NotFoundError(f"order {order_id} does not exist")
            values: dict[str, object] = {}
            for column, field, value in (
                ("exchange_order_id", "id_exchange", exchange_order_id),
                ("algo_id", "id_algo", algo_id),
            ):
                current = getattr(row, column)
                if value is None or value == current:
                    continue
                if current is not None:
                    raise InvalidOrderError(
                        field, f"order {order_id} already has {field} {current!r}, not {value!r}"
                    )
                values[column] = value
            if values:
                values["updated_at"] = int(time.time() * 1000)
                connection.execute(update(_orders).where(_orders.c.id == order_id).values(**values))
                row = connection.execute(select(_orders).where(_orders.c.id == order_id)).one()
        return _order(row)

    def _filtered(  # type: ignore[no-untyped-def]
        self,
        query,
        symbol: str | None,
        state: OrderState | None,
        side: Side | None,
        bot_id: int | None = None,
    ):
        if bot_id is not None:
            query = query.where(_orders.c.bot_id == bot_id)
        if symbol is not None:
            query = query.where(_orders.c.symbol == symbol)
        if state is not None:
            query = query.where(_orders.c.state == OrderState(state).value)
        if side is not None:
            query = query.where(_orders.c.side == Side(side).value)
        return query

    def find(
        self,
        symbol: str | None = None,
        state: OrderState | None = None,
        side: Side | None = None,
        limit: int = 100,
        offset: int = 0,
        bot_id: int | None = None,
    ) -> list[Order]:
        """Orders matching every given filter (`bot_id`: the orders that bot sent), newest first."""
        query = self._filtered(select(_orders), symbol, state, side, bot_id)
        query = query.order_by(_orders.c.id.desc()).limit(limit).offset(offset)
        with read_connection(self._engine) as connection:
            return [_order(row) for row in connection.execute(query)]

    def count(
        self,
        symbol: str | None = None,
        state: OrderState | None = None,
        side: Side | None = None,
        bot_id: int | None = None,
    ) -> int:
        query = select(func.count()).select_from(_orders)
        query = self._filtered(query, symbol, state, side, bot_id)
        with read_connection(self._engine) as connection:
            return int(connection.execute(query).scalar_one())

    def apply(
        self,
        order_id: int,
        target: OrderState,
        actor: str,
        reason: str = "",
        filled_quantity: float | None = None,
    ) -> tuple[Order, OrderEvent]:
        """Transition an order through the state machine and store the event, atomically.

        The row is read inside the write transaction, so two concurrent transitions cannot both
        start from the same state. Raises NotFoundError or OrderStateError.
        """
        with write_transaction(self._engine) as connection:
            query = select(_orders).where(_orders.c.id == order_id)
            if connection.dialect.name == "postgresql":
                query = query.with_for_update()
            row = connection.execute(query).first()
            if row is None:
                raise NotFoundError(f"order {order_id} does not exist")
            order, event = transition(_order(row), target, actor, reason, filled_quantity)
            connection.execute(
                update(_orders)
                .where(_orders.c.id == order_id)
                .values(
                    state=order.state.value,
                    filled_quantity=order.filled_quantity,
                    updated_at=order.updated_at,
                )
            )
            event_id = connection.execute(
                insert(_events).values(_event_values(event, order_id)).returning(_events.c.id)
            ).scalar_one()
        return order, replace(event, id=event_id)

    def events(self, order_id: int) -> list[OrderEvent]:
        """The order's history, oldest first; raises NotFoundError for an unknown order."""
        self.get(order_id)
        query = select(_events).where(_events.c.order_id == order_id).order_by(_events.c.id)
        with read_connection(self._engine) as connection:
            return [_event(row) for row in connection.execute(query)]
