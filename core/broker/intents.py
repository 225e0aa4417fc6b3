"""Order intents of an exchange broker: deterministic client ids, and the store that holds every
intent before it is sent (so a crash or a lost answer is resolved by asking, never by resending).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol

from core.errors import DataError
from core.exchange.order_requests import MAX_CLIENT_ID, client_order_id
from core.models import OrderState, OrderType, Side

# Legs of an order, the last part of its client id: exit, entry, stop, take-profit, trailing
# stop ("móvil"), the exit
# after the exchange refused a stop as already triggered (-2021), and the kill switch's exit.
# A leg placed again for the same candle (a stop re-placed) gets a generation: "s2", "s3", …
EXIT, ENTRY, STOP, TAKE, TRAIL, REFUSED_EXIT, KILL_EXIT = "x", "e", "s", "t", "m", "r", "k"
PROTECTION_LEGS = (STOP, TAKE, TRAIL)
MAX_BOT_ID = 16  # bot + "-" + 13-digit ms + "-" + leg (≤ 4) stays within Binance's 36
MAX_GENERATION = 99


@dataclass(frozen=True, slots=True)
class Intent:
    """One order the broker decided to send, as stored before sending it."""

    client_id: str
    symbol: str
    candle: int  # open time of the candle the decision belongs to (the entry's, for protection)
    leg: str
    side: Side
    type: OrderType
    quantity: Decimal | None  # None: closePosition
    trigger_price: Decimal | None = None
    reduce_only: bool = False
    state: OrderState = OrderState.PENDING
    exchange_id: int | None = None  # orderId, or algoId for conditional orders
    callback_rate: Decimal | None = None  # a trailing stop's, in percent as Binance takes it

    @property
    def is_algo(self) -> bool:
        return self.type.is_conditional


class IntentStore(Protocol):
    """Where intents live across restarts (the database; MemoryIntents in tests)."""

    def record(self, intent: Intent) -> None: ...

    def pending(self) -> list[Intent]: ...

    def resolve(self, client_id: str, state: OrderState, exchange_id: int | None) -> None: ...

    def get(self, client_id: str) -> Intent | None: ...


class MemoryIntents:
    """An IntentStore in memory (thread-safe): tests, and bots nobody needs to resume."""

    def __init__(self) -> None:
        self._intents: dict[str, Intent] = {}
        self._lock = threading.Lock()

    def record(self, intent: Intent) -> None:
        """Store a new intent; DataError if its client id was ever used."""
        with self._lock:
            if intent.client_id in self._intents:
                raise DataError(f"client id {intent.client_id} is already recorded")
            self._intents[intent.client_id] = intent

    def pending(self) -> list[Intent]:
        """Intents whose outcome is not known yet, oldest first."""
        with self._lock:
            return [i for i in self._intents.values() if i.state is OrderState.PENDING]

    def resolve(self, client_id: str, state: OrderState, exchange_id: int | None) -> None:
        with self._lock:
            intent = self._intents[client_id]
            self._intents[client_id] = replace(
                intent, state=state, exchange_id=exchange_id or intent.exchange_id
            )

    def get(self, client_id: str) -> Intent | None:
        with self._lock:
            return self._intents.get(client_id)

    def all(self) -> list[Intent]:
        with self._lock:
            return list(self._intents.values())


@dataclass(frozen=True, slots=True)
class ClientIds:
    """The client ids of one bot: `<bot>-<candle ms>-<leg>`, linked to it by their prefix."""

    bot_id: str

    def __post_init__(self) -> None:
        cleaned = client_order_id(self.bot_id)
        if cleaned != self.bot_id or len(cleaned) > MAX_BOT_ID or "-" in cleaned:
            raise DataError(
                f"bot id {self.bot_id!r}: up to {MAX_BOT_ID} of [A-Za-z0-9_.:/], no '-'"
            )

    @property
    def prefix(self) -> str:
        return f"{self.bot_id}-"

    def make(self, candle: int, leg: str, generation: int = 1) -> str:
        """The id of `leg` for `candle`; generation 2, 3, … for the same leg placed again."""
        suffix = leg if generation == 1 else f"{leg}{generation}"
        made = client_order_id(self.bot_id, candle, suffix)
        if len(made) > MAX_CLIENT_ID or made != f"{self.prefix}{candle}-{suffix}":
            raise DataError(f"client id {made!r} is not this bot's plain id")
        return made

    def fresh(self, store: IntentStore, candle: int, leg: str) -> str:
        """The first id of `leg` for `candle` the store has never recorded."""
        for generation in range(1, MAX_GENERATION + 1):
            made = self.make(candle, leg, generation)
            if store.get(made) is None:
                return made
        raise DataError(f"{leg} of candle {candle} placed {MAX_GENERATION} times")

    def parse(self, client_id: str) -> tuple[int, str] | None:
        """(candle, leg) of one of this bot's ids; None for anyone else's."""
        if not client_id.startswith(self.prefix):
            return None
        parts = client_id[len(self.prefix) :].split("-")
        if len(parts) != 2 or not parts[0].isdigit() or not parts[1]:
            return None
        return int(parts[0]), parts[1]


def leg_kind(leg: str) -> str:
    """The leg without its generation ("s3" → "s")."""
    return leg.rstrip("0123456789")
