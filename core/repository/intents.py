"""A bot's order intents in the orders table: stored before they are sent, so a process killed at
any moment finds, on restart, every order it may have sent — and asks the exchange about it by
its client id instead of sending it again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

from core.broker.intents import ENTRY, STOP, TAKE, TRAIL, ClientIds, Intent, leg_kind
from core.errors import DataError, InvalidOrderError, NotFoundError
from core.models import Order, OrderState
from core.repository.orders import OrderRepository
from core.risk_types import Purpose
from core.state import allowed_transitions

log = logging.getLogger(__name__)
ACTOR = "bot"
PENDING_LIMIT = 1_000  # a bot has a handful of unresolved intents at most; bounded read
PURPOSES = {ENTRY: Purpose.ENTRY, STOP: Purpose.STOP, TRAIL: Purpose.STOP,
            TAKE: Purpose.TAKE_PROFIT}  # fmt: skip


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))


class OrderIntents:
    """core.broker.intents.IntentStore for one stored bot, over OrderRepository.

    Each intent is an order row with the bot's id, its purpose and its client id (the table's
    unique key, so a client id is never recorded twice); every outcome is a state transition
    with its event, as for any order. `on_change` sees every order row as stored after a
    change (the bot host shows them live).
    """

    def __init__(
        self,
        orders: OrderRepository,
        bot_id: int,
        ids: ClientIds,
        on_change: Callable[[Order], None] | None = None,
    ) -> None:
        self.orders, self.bot_id, self.ids = orders, bot_id, ids
        self.on_change = on_change or (lambda order: None)

    def record(self, intent: Intent) -> None:
        """Store a new intent; DataError if its client id was ever used."""
        close = intent.quantity is None
        known = None if intent.exchange_id is None else str(intent.exchange_id)
        order = Order(
            symbol=intent.symbol, side=intent.side, type=intent.type,
            quantity=0.0 if close else float(intent.quantity),  # type: ignore[arg-type]
            state=intent.state, client_order_id=intent.client_id,
            reduce_only=intent.reduce_only and not close, close_position=close,
            trigger_price=None if intent.trigger_price is None else float(intent.trigger_price),
            callback_rate=None if intent.callback_rate is None else float(intent.callback_rate),
            bot_id=self.bot_id, purpose=PURPOSES.get(leg_kind(intent.leg), Purpose.EXIT),
            algo_id=known if intent.is_algo else None,
            exchange_order_id=None if intent.is_algo else known,
        )  # fmt: skip
        try:
            stored = self.orders.create(order, ACTOR, f"intent {intent.leg}")
        except InvalidOrderError as error:
            raise DataError(f"client id {intent.client_id} is already recorded") from error
        self.on_change(stored)

    def pending(self) -> list[Intent]:
        """This bot's intents whose outcome is not known yet, oldest first."""
        rows = self.orders.find(state=OrderState.PENDING, bot_id=self.bot_id, limit=PENDING_LIMIT)
        return [self._intent(order) for order in reversed(rows)]

    def resolve(self, client_id: str, state: OrderState, exchange_id: int | None) -> None:
        """Record what the exchange said: its id once, and the state if it moved. A state the
        order cannot move to from where it is (an older answer arriving late) is logged and
        left, since the stored state is the later word. A partial fill (its quantity is the
        exchange's fills' business) only marks a pending intent as live."""
        order = self.orders.get_by_client_id(client_id)
        order_id, before = order.id, order
        assert order_id is not None
        if exchange_id is not None:
            order = self.orders.link_exchange(order_id, **self._link(order, exchange_id))
        if state is OrderState.PARTIAL:
            state = OrderState.OPEN
        if state is not order.state and state not in allowed_transitions(order.state):
            log.info("%s: %s after %s left as it is", client_id, state.value, order.state.value)
        elif state is not order.state:
            order, _ = self.orders.apply(order_id, state, ACTOR, "exchange")
        if order != before:
            self.on_change(order)

    def get(self, client_id: str) -> Intent | None:
        try:
            order = self.orders.get_by_client_id(client_id)
        except NotFoundError:
            return None
        return self._intent(order)

    def _intent(self, order: Order) -> Intent:
        assert order.client_order_id is not None
        parsed = self.ids.parse(order.client_order_id) or (0, "x")
        exchange = order.algo_id or order.exchange_order_id
        return Intent(
            order.client_order_id, order.symbol, parsed[0], parsed[1], order.side, order.type,
            None if order.close_position else _decimal(order.quantity),
            _decimal(order.trigger_price), order.reduce_only, order.state,
            None if exchange is None else int(exchange), _decimal(order.callback_rate),
        )  # fmt: skip

    @staticmethod
    def _link(order: Order, exchange_id: int) -> dict[str, str]:
        key = "algo_id" if order.type.is_conditional else "exchange_order_id"
        return {key: str(exchange_id)}
