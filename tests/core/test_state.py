"""The order and bot state machines: every legal move works and records an event, every other
one raises."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import BotStateError, InvalidOrderError, OrderStateError
from core.models import BotStatus, BotTrigger, Order, OrderState, Side
from core.state import (
    BOT_STATES,
    TRANSITIONS,
    bot_state,
    bot_transition,
    creation_event,
    transition,
)

S = OrderState
# Sorted: the targets are sets, and parallel test workers must collect the same order.
LEGAL = [(a, b) for a, targets in TRANSITIONS.items() for b in sorted(targets, key=list(S).index)]
ILLEGAL = [(a, b) for a in S for b in S if b not in TRANSITIONS[a]]


def _order(state: OrderState, filled: float = 0.0) -> Order:
    return Order(
        symbol="BTCUSDT",
        side=Side.BUY,
        quantity=1.0,
        price=30000.0,
        state=state,
        filled_quantity=filled,
        id=7,
        created_at=1,
    )


def _fill_for(order: Order, target: OrderState) -> float | None:
    if target is S.PARTIAL:
        return (order.filled_quantity + order.quantity) / 2
    return None


def test_the_table_matches_the_documented_lifecycle():
    assert TRANSITIONS[S.PENDING] == {
        S.OPEN,
        S.PARTIAL,
        S.FILLED,
        S.CANCELED,
        S.REJECTED,
        S.EXPIRED,
    }
    assert TRANSITIONS[S.OPEN] == {S.PARTIAL, S.FILLED, S.CANCELED, S.EXPIRED}
    assert all(not TRANSITIONS[s] for s in S if s.is_final)
    assert {s for s in S if s.is_final} == {S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED}


@pytest.mark.parametrize(("source", "target"), LEGAL)
def test_every_legal_transition_produces_an_event(source, target):
    order = _order(source, 0.25 if source is S.PARTIAL else 0.0)
    moved, event = transition(
        order, target, actor="api", reason="test", at=42, filled_quantity=_fill_for(order, target)
    )
    assert moved.state is target and moved.updated_at == 42
    assert (event.order_id, event.from_state, event.to_state, event.at, event.actor) == (
        7,
        source,
        target,
        42,
        "api",
    )
    if target is S.FILLED:
        assert moved.filled_quantity == order.quantity
    assert order.state is source, "the input order is immutable"


@pytest.mark.parametrize(("source", "target"), ILLEGAL)
def test_every_illegal_transition_raises(source, target):
    with pytest.raises(OrderStateError, match=f"from {source.value} to {target.value}"):
        transition(_order(source), target, actor="api")


def test_partial_fill_must_grow_and_stay_below_quantity():
    order = _order(S.OPEN)
    with pytest.raises(InvalidOrderError) as missing:
        transition(order, S.PARTIAL, actor="broker")
    assert missing.value.field == "cantidad_ejecutada"
    with pytest.raises(InvalidOrderError):
        transition(order, S.PARTIAL, actor="broker", filled_quantity=1.0)
    half, _ = transition(order, S.PARTIAL, actor="broker", filled_quantity=0.5)
    with pytest.raises(InvalidOrderError):
        transition(half, S.PARTIAL, actor="broker", filled_quantity=0.4)
    with pytest.raises(InvalidOrderError):
        transition(half, S.CANCELED, actor="api", filled_quantity=0.9)


@pytest.mark.parametrize("filled", [999.0, 0.0, 0.4, 0.99, math.inf, math.nan])
def test_filled_means_the_whole_quantity(filled):
    half, _ = transition(_order(S.OPEN), S.PARTIAL, actor="broker", filled_quantity=0.5)
    with pytest.raises(InvalidOrderError, match="cantidad|finite|whole"):
        transition(half, S.FILLED, actor="broker", filled_quantity=filled)
    done, event = transition(half, S.FILLED, actor="broker", filled_quantity=1.0)
    assert done.filled_quantity == event.filled_quantity == 1.0
    assert transition(half, S.FILLED, actor="broker")[0].filled_quantity == 1.0


def test_creation_event_records_the_initial_state():
    event = creation_event(_order(S.PENDING), actor="api")
    assert event.from_state is None and event.to_state is S.PENDING and event.at == 1


@given(st.lists(st.sampled_from(list(S)), max_size=12))
def test_random_walks_obey_the_table(targets):
    order = _order(S.PENDING)
    history = [order.state]
    for target in targets:
        legal = target in TRANSITIONS[order.state]
        try:
            order, event = transition(
                order, target, actor="walk", filled_quantity=_fill_for(order, target)
            )
        except (OrderStateError, InvalidOrderError):
            assert not legal
            continue
        assert legal and event.from_state is history[-1] and event.to_state is target
        history.append(order.state)
    assert all(b in TRANSITIONS[a] for a, b in zip(history, history[1:], strict=False))
    assert all(not s.is_final for s in history[:-1])


def test_an_immediate_fill_goes_from_pendiente_to_ejecutada():
    done, event = transition(_order(S.PENDING), S.FILLED, actor="exchange", at=5)
    assert (done.state, done.filled_quantity) == (S.FILLED, 1.0)
    assert (event.from_state, event.to_state, event.filled_quantity) == (S.PENDING, S.FILLED, 1.0)


def test_an_ioc_remainder_goes_pendiente_parcial_expirada():
    partial, _ = transition(_order(S.PENDING), S.PARTIAL, actor="exchange", filled_quantity=0.3)
    expired, event = transition(partial, S.EXPIRED, actor="exchange")
    assert (expired.state, expired.filled_quantity) == (S.EXPIRED, 0.3)
    assert event.from_state is S.PARTIAL and event.filled_quantity == 0.3


@pytest.mark.parametrize("filled", [None, 0.0, 1.0, 1.5])
def test_a_partial_fill_from_pendiente_keeps_the_fill_rules(filled):
    with pytest.raises(InvalidOrderError) as error:
        transition(_order(S.PENDING), S.PARTIAL, actor="exchange", filled_quantity=filled)
    assert error.value.field == "cantidad_ejecutada"


def test_pendiente_to_ejecutada_still_means_the_whole_quantity():
    with pytest.raises(InvalidOrderError) as error:
        transition(_order(S.PENDING), S.FILLED, actor="exchange", filled_quantity=0.5)
    assert error.value.field == "cantidad_ejecutada"


# The bot's state machine.
BS, BT = BotStatus, BotTrigger
BOT_TABLE = {
    BS.STOPPED: {BT.START: BS.STARTING},
    BS.STARTING: {BT.STARTED: BS.SYNCING, BT.STOP: BS.STOPPING, BT.FAIL: BS.ERROR},
    BS.SYNCING: {
        BT.SYNCED: BS.TRADING,
        BT.PAUSE: BS.PAUSED,
        BT.STOP: BS.STOPPING,
        BT.FAIL: BS.ERROR,
    },
    BS.TRADING: {
        BT.REDUCE: BS.REDUCING,
        BT.PAUSE: BS.PAUSED,
        BT.RESYNC: BS.SYNCING,
        BT.STOP: BS.STOPPING,
        BT.FAIL: BS.ERROR,
    },
    BS.REDUCING: {
        BT.CLEARED: BS.TRADING,
        BT.PAUSE: BS.PAUSED,
        BT.RESYNC: BS.SYNCING,
        BT.STOP: BS.STOPPING,
        BT.FAIL: BS.ERROR,
    },
    BS.PAUSED: {BT.RESUME: BS.SYNCING, BT.STOP: BS.STOPPING, BT.FAIL: BS.ERROR},
    BS.STOPPING: {BT.FINISHED: BS.STOPPED, BT.FAIL: BS.ERROR},
    BS.ERROR: {BT.START: BS.STARTING, BT.STOP: BS.STOPPED},
}
BOT_LEGAL = [(s, t) for s, moves in BOT_TABLE.items() for t in moves]
BOT_ILLEGAL = [(s, t) for s in BS for t in BT if t not in BOT_TABLE[s]]
# (opens positions, reduces, must reconcile first, running) per state.
BOT_FLAGS = {
    BS.STOPPED: (False, False, False, False),
    BS.STARTING: (False, False, True, True),
    BS.SYNCING: (False, False, True, True),
    BS.TRADING: (True, True, False, True),
    BS.REDUCING: (False, True, False, True),
    BS.PAUSED: (False, True, False, True),
    BS.STOPPING: (False, True, False, True),
    BS.ERROR: (False, False, True, False),
}


def test_the_bot_states_are_the_readmes_words():
    assert [s.value for s in BS] == [
        "detenido",
        "iniciando",
        "sincronizando",
        "operando",
        "reduciendo",
        "pausado",
        "deteniendo",
        "error",
    ]
    assert set(BOT_STATES) == set(BS)
    assert {s: dict(BOT_STATES[s].moves) for s in BS} == BOT_TABLE


@pytest.mark.parametrize(("source", "trigger"), BOT_LEGAL)
def test_every_legal_bot_transition_returns_a_stored_ready_event(source, trigger):
    event = bot_transition(source, trigger, actor="bot", at=42, reason="porque", bot_id=3)
    assert (event.bot_id, event.from_state, event.to_state, event.trigger) == (
        3,
        source,
        BOT_TABLE[source][trigger],
        trigger,
    )
    assert (event.at, event.actor, event.reason, event.id) == (42, "bot", "porque", None)


@pytest.mark.parametrize(("source", "trigger"), BOT_ILLEGAL)
def test_every_illegal_bot_transition_raises(source, trigger):
    with pytest.raises(BotStateError, match=f"bot {source.value}: '{trigger.value}'"):
        bot_transition(source, trigger, actor="api", at=1)


def test_an_unknown_trigger_word_is_refused_like_an_illegal_one():
    with pytest.raises(BotStateError, match="allowed: iniciar"):
        bot_transition(BS.STOPPED, "despegar", actor="api", at=1)
    assert bot_transition("detenido", "iniciar", "api", 1).to_state is BS.STARTING


@pytest.mark.parametrize("status", list(BS))
def test_each_state_says_what_it_allows(status):
    state = bot_state(status)
    assert state.status is status
    assert (
        state.allows_entries,
        state.allows_reducing,
        state.must_reconcile,
        state.running,
    ) == BOT_FLAGS[status]


def test_a_bot_that_can_open_positions_can_always_reduce_them():
    assert all(s.allows_reducing for s in BOT_STATES.values() if s.allows_entries)
    assert not any(s.allows_entries or s.allows_reducing for s in BOT_STATES.values()
                   if s.must_reconcile)  # fmt: skip


def test_a_life_through_the_states():
    walk = [
        (BT.START, BS.STARTING),
        (BT.STARTED, BS.SYNCING),
        (BT.SYNCED, BS.TRADING),
        (BT.REDUCE, BS.REDUCING),
        (BT.CLEARED, BS.TRADING),
        (BT.PAUSE, BS.PAUSED),
        (BT.RESUME, BS.SYNCING),  # a person resumes: reconcile before trading again
        (BT.SYNCED, BS.TRADING),
        (BT.RESYNC, BS.SYNCING),
        (BT.SYNCED, BS.TRADING),
        (BT.STOP, BS.STOPPING),
        (BT.FINISHED, BS.STOPPED),
    ]
    status = BS.STOPPED
    for at, (trigger, expected) in enumerate(walk):
        event = bot_transition(status, trigger, actor="test", at=at)
        assert (event.from_state, event.to_state) == (status, expected)
        status = event.to_state


def test_every_running_state_can_fail_and_stop_and_every_state_is_reachable():
    for status in BS:
        state = bot_state(status)
        if state.running:  # deteniendo is stopping already
            assert BOT_TABLE[status][BT.FAIL] is BS.ERROR
            assert state.moves.get(BT.STOP, status) is BS.STOPPING
    seen, frontier = {BS.STOPPED}, [BS.STOPPED]
    while frontier:
        for target in BOT_TABLE[frontier.pop()].values():
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(BS)


def test_only_a_person_leaves_pausado():
    assert set(BOT_TABLE[BS.PAUSED]) == {BT.RESUME, BT.STOP, BT.FAIL}
    assert BT.CLEARED not in BOT_TABLE[BS.PAUSED] and BT.SYNCED not in BOT_TABLE[BS.PAUSED]
