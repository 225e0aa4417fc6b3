"""The order state machine: one table of legal transitions for the API, brokers and the bot."""

from __future__ import annotations

import math
import time
from dataclasses import replace

from core.errors import InvalidOrderError, OrderStateError
from core.models import Order, OrderEvent, OrderState

S = OrderState
# The public name of the filled quantity, so the API can point at the field.
FILL_FIELD = "cantidad_ejecutada"
# Exchanges report what happened, not every step: a market or IOC order that fills on arrival
# goes pendiente -> ejecutada (or -> parcial, then expirada for an IOC remainder).
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.PENDING: frozenset({S.OPEN, S.PARTIAL, S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED}),
    S.OPEN: frozenset({S.PARTIAL, S.FILLED, S.CANCELED, S.EXPIRED}),
    # Each further partial fill is a new event, so parcial -> parcial is legal.
    S.PARTIAL: frozenset({S.PARTIAL, S.FILLED, S.CANCELED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}


def allowed_transitions(state: OrderState) -> frozenset[OrderState]:
    """States an order in `state` may move to (empty for final states)."""
    return TRANSITIONS[state]


def _check_fill(order: Order, target: OrderState, filled: float | None) -> float:
    """The filled quantity after the move: a partial fill lies strictly between what was
    filled and the order's quantity, `ejecutada` means the whole quantity, and any other
    move leaves it unchanged. Raises InvalidOrderError naming `cantidad_ejecutada`."""
    if filled is not None and not math.isfinite(filled):
        raise InvalidOrderError(FILL_FIELD, f"order {order.id}: {filled} is not a finite quantity")
    if target is S.FILLED:
        if filled is not None and filled != order.quantity:
            raise InvalidOrderError(
                FILL_FIELD,
                f"order {order.id}: ejecutada means the whole quantity {order.quantity}, "
                f"got {filled}",
            )
        return order.quantity
    if target is S.PARTIAL:
        if filled is None or not order.filled_quantity < filled < order.quantity:
            raise InvalidOrderError(
                FILL_FIELD,
                f"order {order.id}: a partial fill needs filled_quantity between "
                f"{order.filled_quantity} and {order.quantity} (exclusive), got {filled}",
            )
        return filled
    if filled is not None and filled != order.filled_quantity:
        raise InvalidOrderError(
            FILL_FIELD, f"order {order.id}: {target.value} does not change the filled quantity"
        )
    return order.filled_quantity


def transition(
    order: Order,
    target: OrderState,
    actor: str,
    reason: str = "",
    filled_quantity: float | None = None,
    at: int | None = None,
) -> tuple[Order, OrderEvent]:
    """Move `order` to `target`, returning the new order and the event that records the move.

    Raises OrderStateError when the table forbids the move, InvalidOrderError when the fill
    quantity is inconsistent.
    """
    target = OrderState(target)
    if target not in TRANSITIONS[order.state]:
        allowed = (
            ", ".join(sorted(s.value for s in TRANSITIONS[order.state])) or "none (final state)"
        )
        raise OrderStateError(
            f"order {order.id}: cannot go from {order.state.value} to {target.value}; "
            f"allowed: {allowed}"
        )
    filled = _check_fill(order, target, filled_quantity)
    now = int(time.time() * 1000) if at is None else at
    new_order = replace(order, state=target, filled_quantity=filled, updated_at=now)
    event = OrderEvent(
        order_id=order.id,
        from_state=order.state,
        to_state=target,
        at=now,
        actor=actor,
        reason=reason,
        filled_quantity=filled,
    )
    return new_order, event


def creation_event(order: Order, actor: str, reason: str = "creada") -> OrderEvent:
    """The first event of every order: its birth in its initial state."""
    return OrderEvent(
        order_id=order.id,
        from_state=None,
        to_state=order.state,
        at=order.created_at,
        actor=actor,
        reason=reason,
        filled_quantity=order.filled_quantity,
    )
