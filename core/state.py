"""The order state machine (one table of legal transitions for the API, brokers and the bot) and
the bot's own state machine (one object per state: what it allows, where each trigger leads)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from core.errors import BotStateError, InvalidOrderError, OrderStateError
from core.models import BotEvent, BotStatus, BotTrigger, Order, OrderEvent, OrderState

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


# The bot's state machine (State pattern): each state is an object that says what a bot in it may
# do and where each trigger takes it; anything a state does not list is refused.
B, T = BotStatus, BotTrigger


class BotState:
    """A bot state: the orders it allows and its moves; subclasses only set class attributes.

    `allows_entries`: may open or grow positions. `allows_reducing`: may send orders that shrink
    exposure (exits, stops, take-profits), which every running state but the reconciling ones
    allows, so a paused bot still protects its position. `must_reconcile`: nothing may be sent
    until the database and the exchange agree. `running`: the bot follows candles and fills.
    """

    status: BotStatus
    allows_entries = False
    allows_reducing = False
    must_reconcile = False
    running = True
    moves: Mapping[BotTrigger, BotStatus] = MappingProxyType({})

    def next_status(self, trigger: BotTrigger) -> BotStatus:
        """The state `trigger` leads to; raises BotStateError when this state forbids it."""
        if trigger not in self.moves:
            allowed = ", ".join(t.value for t in self.moves) or "none"
            raise BotStateError(
                f"bot {self.status.value}: {str(trigger)!r} is not allowed; allowed: {allowed}"
            )
        return self.moves[BotTrigger(trigger)]


def _moves(**pairs: BotStatus) -> Mapping[BotTrigger, BotStatus]:
    return MappingProxyType({BotTrigger[name]: target for name, target in pairs.items()})


class Stopped(BotState):
    status, running = B.STOPPED, False
    moves = _moves(START=B.STARTING)


class Starting(BotState):
    status, must_reconcile = B.STARTING, True
    moves = _moves(STARTED=B.SYNCING, STOP=B.STOPPING, FAIL=B.ERROR)


class Syncing(BotState):
    # A breaker found tripped while reconciling pauses the bot instead of letting it trade.
    status, must_reconcile = B.SYNCING, True
    moves = _moves(SYNCED=B.TRADING, PAUSE=B.PAUSED, STOP=B.STOPPING, FAIL=B.ERROR)


class Trading(BotState):
    status, allows_entries, allows_reducing = B.TRADING, True, True
    moves = _moves(
        REDUCE=B.REDUCING, PAUSE=B.PAUSED, RESYNC=B.SYNCING, STOP=B.STOPPING, FAIL=B.ERROR
    )


class Reducing(BotState):
    status, allows_reducing = B.REDUCING, True
    moves = _moves(
        CLEARED=B.TRADING, PAUSE=B.PAUSED, RESYNC=B.SYNCING, STOP=B.STOPPING, FAIL=B.ERROR
    )


class Paused(BotState):
    # Only a person leaves pausado, through a fresh reconciliation.
    status, allows_reducing = B.PAUSED, True
    moves = _moves(RESUME=B.SYNCING, STOP=B.STOPPING, FAIL=B.ERROR)


class Stopping(BotState):
    # Cancels orders and, when asked, closes positions reduce-only.
    status, allows_reducing = B.STOPPING, True
    moves = _moves(FINISHED=B.STOPPED, FAIL=B.ERROR)


class Failed(BotState):
    status, must_reconcile, running = B.ERROR, True, False
    moves = _moves(START=B.STARTING, STOP=B.STOPPED)


BOT_STATES: Mapping[BotStatus, BotState] = MappingProxyType(
    {state.status: state for state in (cls() for cls in BotState.__subclasses__())}
)


def bot_state(status: BotStatus) -> BotState:
    """The state object of `status` (what it allows, where it goes)."""
    return BOT_STATES[BotStatus(status)]


def bot_transition(
    status: BotStatus,
    trigger: BotTrigger,
    actor: str,
    at: int,
    reason: str = "",
    bot_id: int | None = None,
) -> BotEvent:
    """The event that moves a bot in `status` on `trigger` (its `to_state` is the new state).

    Raises BotStateError when `status` does not allow `trigger`.
    """
    current = bot_state(status)
    target = current.next_status(trigger)
    return BotEvent(
        bot_id=bot_id,
        from_state=current.status,
        to_state=target,
        trigger=BotTrigger(trigger),
        at=at,
        actor=actor,
        reason=reason,
    )
