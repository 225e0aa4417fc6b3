"""A bot's order intents in the orders table, against SQLite and PostgreSQL: stored before they
are sent, never recorded twice, resolved through the order state machine, read back whole."""

from decimal import Decimal

import pytest

from core.broker.intents import ClientIds, Intent
from core.errors import DataError
from core.models import Bot, OrderState, OrderType, Side
from core.repository.intents import OrderIntents
from core.risk_types import Purpose

_TABLES = "bot_trades, bot_decisions, bot_events, bot_commands, order_events, orders, bots"
D = Decimal


@pytest.fixture
def store(db) -> OrderIntents:
    if db.dialect == "postgresql":
        with db.engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")
    bot = db.bots.create(Bot(name="b", strategy="sma_cruce", symbol="BTCUSDT", interval="1m"))
    assert bot.id is not None
    return OrderIntents(db.orders, bot.id, ClientIds("k1"))


ENTRY = Intent("k1-1700000000000-e", "BTCUSDT", 1_700_000_000_000, "e", Side.BUY,
               OrderType.MARKET, D("0.003"))  # fmt: skip
STOP = Intent("k1-1700000000000-s", "BTCUSDT", 1_700_000_000_000, "s", Side.SELL,
              OrderType.STOP_MARKET, None, D("41234.5"))  # fmt: skip


def test_an_intent_reads_back_as_it_was_recorded(store):
    store.record(ENTRY)
    store.record(STOP)
    assert store.get(ENTRY.client_id) == ENTRY
    assert store.get(STOP.client_id) == STOP
    assert store.get("k1-1700000000000-t") is None
    assert store.pending() == [ENTRY, STOP]
    [stop_row, entry_row] = store.orders.find(bot_id=store.bot_id)
    assert entry_row.purpose == Purpose.ENTRY and stop_row.purpose == Purpose.STOP
    assert stop_row.close_position and stop_row.quantity == 0.0


def test_a_client_id_is_never_recorded_twice(store):
    store.record(ENTRY)
    with pytest.raises(DataError, match="already recorded"):
        store.record(ENTRY)
    assert len(store.orders.find(bot_id=store.bot_id)) == 1


def test_resolving_moves_the_state_and_links_the_exchange_id_once(store):
    store.record(ENTRY)
    store.record(STOP)
    store.resolve(ENTRY.client_id, OrderState.FILLED, 77)
    store.resolve(STOP.client_id, OrderState.PARTIAL, 91)  # live on the exchange
    entry, stop = store.get(ENTRY.client_id), store.get(STOP.client_id)
    assert entry is not None and (entry.state, entry.exchange_id) == (OrderState.FILLED, 77)
    assert stop is not None and (stop.state, stop.exchange_id) == (OrderState.OPEN, 91)
    assert store.pending() == []
    row = store.orders.get_by_client_id(ENTRY.client_id)
    assert row.exchange_order_id == "77" and row.algo_id is None
    assert row.filled_quantity == pytest.approx(0.003)
    assert store.orders.get_by_client_id(STOP.client_id).algo_id == "91"
    events = store.orders.events(row.id)
    assert [e.to_state for e in events] == [OrderState.PENDING, OrderState.FILLED]


def test_a_late_answer_does_not_undo_a_final_state(store):
    store.record(ENTRY)
    store.resolve(ENTRY.client_id, OrderState.FILLED, 5)
    store.resolve(ENTRY.client_id, OrderState.OPEN, 5)
    resolved = store.get(ENTRY.client_id)
    assert resolved is not None and resolved.state is OrderState.FILLED


def test_an_adopted_open_order_is_stored_open_with_its_id(store):
    adopted = Intent("k1-1700000060000-t", "BTCUSDT", 1_700_000_060_000, "t", Side.SELL,
                     OrderType.TAKE_PROFIT_MARKET, None, D("45000"), False, OrderState.OPEN,
                     12)  # fmt: skip
    store.record(adopted)
    assert store.get(adopted.client_id) == adopted
    assert store.pending() == []
