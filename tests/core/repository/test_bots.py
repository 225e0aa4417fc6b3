"""Bots with their transitions, snapshots, decisions and trades, against SQLite and PostgreSQL."""

import math
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from config.settings import TRADING_MODES
from core.errors import (
    BotStateError,
    DataError,
    InvalidOrderError,
    NotFoundError,
    RiskSettingsError,
)
from core.models import (
    Bot,
    BotDecision,
    BotMode,
    BotStatus,
    BotTrade,
    BotTrigger,
    Order,
    Side,
    Trade,
)
from core.risk_types import Purpose

ROOT = Path(__file__).resolve().parents[3]
B, T = BotStatus, BotTrigger
_BOT_TABLES = "bot_trades, bot_decisions, bot_events, order_events, orders, bots"


@pytest.fixture
def bots_db(db):
    """`db` with the bot tables empty too (the shared PostgreSQL database outlives a test)."""
    if db.dialect == "postgresql":
        with db.engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {_BOT_TABLES} RESTART IDENTITY CASCADE")
    return db


def _bot(name="cruce-btc", **kw) -> Bot:
    return Bot(name=name, strategy="sma_cruce", symbol="BTCUSDT", interval="1m", **kw)


FULL = _bot(
    params={"rapida": 9, "lenta": 21, "nested": {"a": [1, 2.5]}},
    mode="testnet",
    capital=1_000.0,
    taker_fee=0.0005,
    maker_fee=0.0002,
    slippage_bps=2.0,
    leverage=3.0,
    size=0.5,
    stop_loss="0.02",
    take_profit="3atr",
    funding_rate=0.0001,
    trailing=0.01,
    risk={"max_daily_loss": 0.05, "max_drawdown": 0.2, "cooldown_ms": 60_000},
    status_reason="creado",
    desired_running=True,
)


def test_every_bot_field_round_trips(bots_db):
    bot = bots_db.bots.create(FULL)
    assert bot.id is not None and bot.created_at > 0 and bot.updated_at == bot.created_at
    assert bot == replace(FULL, id=bot.id, created_at=bot.created_at, updated_at=bot.created_at)
    assert bot.mode is BotMode.TESTNET and bot.status is B.STOPPED
    assert bots_db.bots.get(bot.id) == bot
    assert bots_db.bots.get_by_name("cruce-btc") == bot
    plain = bots_db.bots.create(_bot("plain"))
    assert bots_db.bots.get(plain.id) == plain and plain.maker_fee is None and plain.risk == {}
    assert bots_db.bots.list() == [bot, plain]
    assert bots_db.bots.to_resume() == [bot]


def test_bot_modes_are_the_trading_modes():
    assert tuple(BotMode) == TRADING_MODES


def test_a_bot_name_is_used_once_and_a_new_bot_starts_stopped(bots_db):
    bots_db.bots.create(_bot())
    with pytest.raises(DataError, match="nombre: a bot named 'cruce-btc' exists"):
        bots_db.bots.create(_bot())
    with pytest.raises(BotStateError, match="starts detenido"):
        bots_db.bots.create(_bot("other", status=B.TRADING))
    assert [b.name for b in bots_db.bots.list()] == ["cruce-btc"]


@pytest.mark.parametrize(
    "changes, error, match",
    [
        ({"capital": math.nan}, DataError, "capital is nan"),
        ({"funding_rate": math.inf}, DataError, "funding_rate is inf"),
        ({"params": {"rapida": math.nan}}, DataError, "params is not JSON"),
        ({"params": {"when": object()}}, DataError, "params is not JSON"),
        ({"stop_loss": "nan"}, DataError, "stop_loss"),
        ({"take_profit": "mucho"}, DataError, "take_profit"),
        ({"trailing": 0.5}, DataError, "trailing must be between 0.001 and 0.1"),
        ({"trailing": 0.0001}, DataError, "trailing must be between"),
        ({"trailing": math.nan}, DataError, "trailing is nan"),
        ({"trailing": "0.01"}, DataError, "trailing must be a fraction"),
        ({"trailing": True}, DataError, "trailing must be a fraction"),
        ({"name": " "}, DataError, "name is empty"),
        ({"name": "x" * 61}, DataError, "name is longer than 60"),
        ({"risk": {"max_loss": 0.1}}, DataError, "unknown settings \\['max_loss'\\]"),
        ({"risk": {"max_drawdown": 1.5}}, RiskSettingsError, "max_drawdown"),
    ],
)
def test_values_that_cannot_be_stored_are_refused(bots_db, changes, error, match):
    with pytest.raises(error, match=match):
        bots_db.bots.create(replace(_bot(), **changes))
    assert bots_db.bots.list() == []
    stored = bots_db.bots.create(_bot())
    with pytest.raises(error, match=match):
        bots_db.bots.update_config(replace(stored, **changes))
    assert bots_db.bots.get(stored.id) == stored


def test_a_trailing_stop_is_set_changed_and_removed_by_update_config(bots_db):
    bot = bots_db.bots.create(_bot())
    assert bot.trailing is None
    for trailing in (0.001, 0.1, None):
        stored = bots_db.bots.update_config(replace(bot, trailing=trailing))
        assert stored.trailing == bots_db.bots.get(bot.id).trailing == trailing
    assert bots_db.bots.list() == [stored]


def test_update_config_leaves_status_and_history_alone(bots_db):
    bot = bots_db.bots.create(_bot())
    running, _ = bots_db.bots.update_status(bot.id, T.START, actor="api", desired_running=True)
    changed = replace(running, params={"rapida": 5}, risk={"max_leverage": 2}, status=B.STOPPED)
    stored = bots_db.bots.update_config(changed)
    assert stored == replace(changed, status=B.STARTING, updated_at=stored.updated_at)
    assert stored.desired_running and bots_db.bots.get(bot.id) == stored
    assert len(bots_db.bots.events(bot.id)) == 1
    bots_db.bots.create(_bot("other"))
    with pytest.raises(DataError, match="nombre"):
        bots_db.bots.update_config(replace(stored, name="other"))
    with pytest.raises(NotFoundError):
        bots_db.bots.update_config(replace(stored, id=999))


def test_transitions_are_stored_with_their_events(bots_db):
    bot = bots_db.bots.create(_bot())
    steps = [
        (T.START, "api", "pedido", True),
        (T.STARTED, "bot", "", None),
        (T.SYNCED, "bot", "exchange y base coinciden", None),
        (T.PAUSE, "risk", "max_perdida_diaria", None),
    ]
    for at, (trigger, actor, reason, desired) in enumerate(steps, start=100):
        updated, event = bots_db.bots.update_status(
            bot.id, trigger, actor, reason, at=at, desired_running=desired
        )
        assert (updated.status, updated.status_reason, updated.updated_at) == (
            event.to_state,
            reason,
            at,
        )
        assert updated.desired_running and event.id is not None
    events = bots_db.bots.events(bot.id)
    assert [(e.from_state, e.to_state, e.trigger, e.actor, e.at) for e in events] == [
        (B.STOPPED, B.STARTING, T.START, "api", 100),
        (B.STARTING, B.SYNCING, T.STARTED, "bot", 101),
        (B.SYNCING, B.TRADING, T.SYNCED, "bot", 102),
        (B.TRADING, B.PAUSED, T.PAUSE, "risk", 103),
    ]
    assert events[-1] == event and events[-1].reason == "max_perdida_diaria"
    assert bots_db.bots.get(bot.id) == updated and bots_db.bots.list(B.PAUSED) == [updated]
    assert bots_db.bots.list(B.TRADING) == []
    stopped, _ = bots_db.bots.update_status(bot.id, T.STOP, "api", desired_running=False)
    assert not stopped.desired_running and bots_db.bots.to_resume() == []


def test_an_illegal_transition_changes_nothing(bots_db):
    bot = bots_db.bots.create(_bot())
    with pytest.raises(BotStateError, match="'sincronizado' is not allowed; allowed: iniciar"):
        bots_db.bots.update_status(bot.id, T.SYNCED, "bot", desired_running=True)
    assert bots_db.bots.get(bot.id) == bot and bots_db.bots.events(bot.id) == []


def test_an_unknown_bot_is_not_found(bots_db):
    calls = [
        lambda: bots_db.bots.get(999),
        lambda: bots_db.bots.get_by_name("nadie"),
        lambda: bots_db.bots.update_status(999, T.START, "api"),
        lambda: bots_db.bots.events(999),
        lambda: bots_db.bots.save_broker_state(999, {}),
        lambda: bots_db.bots.load_broker_state(999),
        lambda: bots_db.bots.add_decision(BotDecision(999, 0, 1.0, 1.0)),
        lambda: bots_db.bots.latest_decisions(999),
        lambda: bots_db.bots.open_trade(BotTrade(999, Side.BUY, 0, 1.0, 1.0)),
        lambda: bots_db.bots.close_trade(BotTrade(1, Side.BUY, 0, 1.0, 1.0, 5, 2.0, id=999)),
        lambda: bots_db.bots.trades(999),
    ]
    for call in calls:
        with pytest.raises(NotFoundError):
            call()


def test_the_broker_snapshot_round_trips_and_a_bad_one_keeps_the_last(bots_db):
    bot = bots_db.bots.create(_bot())
    assert bots_db.bots.load_broker_state(bot.id) is None
    state = {"balance": 1000.123456789012, "position": {"side": 1, "qty": 0.1}, "orders": []}
    bots_db.bots.save_broker_state(bot.id, state)
    assert bots_db.bots.load_broker_state(bot.id) == state
    with pytest.raises(DataError, match="not JSON of finite numbers"):
        bots_db.bots.save_broker_state(bot.id, {"balance": math.nan})
    assert bots_db.bots.load_broker_state(bot.id) == state
    assert bots_db.bots.get(bot.id) == bot  # the snapshot is not part of the bot


def test_latest_decisions_newest_candle_first(bots_db):
    bot = bots_db.bots.create(_bot())
    other = bots_db.bots.create(_bot("other"))
    for open_time in (60_000, 0, 180_000, 120_000):
        stored = bots_db.bots.add_decision(
            BotDecision(bot.id, open_time, 1.0 if open_time else 0.0, 100.5, f"t{open_time}")
        )
        assert stored.id is not None
    bots_db.bots.add_decision(BotDecision(other.id, 240_000, -1.0, 99.0))
    latest = bots_db.bots.latest_decisions(bot.id, 3)
    assert [(d.open_time, d.position, d.reason) for d in latest] == [
        (180_000, 1.0, "t180000"),
        (120_000, 1.0, "t120000"),
        (60_000, 1.0, "t60000"),
    ]
    assert len(bots_db.bots.latest_decisions(bot.id)) == 4
    with pytest.raises(DataError, match="price is nan"):
        bots_db.bots.add_decision(BotDecision(bot.id, 300_000, 1.0, math.nan))
    assert len(bots_db.bots.latest_decisions(bot.id, 10)) == 4


def test_trades_open_then_close_in_a_backtest_trades_shape(bots_db):
    bot = bots_db.bots.create(_bot())
    first = bots_db.bots.open_trade(BotTrade(bot.id, Side.BUY, 120_000, 100.0, 0.5, fees=0.02))
    second = bots_db.bots.open_trade(BotTrade(bot.id, Side.SELL, 60_000, 101.0, 0.4))
    assert first.open and first.id is not None and bots_db.bots.trades(bot.id) == [second, first]
    exit_ = dict(exit_time=180_000, exit_price=102.0, pnl=0.95, fees=0.05, funding=-0.01)
    closed = bots_db.bots.close_trade(
        replace(first, **exit_, exit_reason="stop_loss", return_pct=0.019)
    )
    assert not closed.open and closed.exit_reason == "stop_loss"
    assert closed.as_trade() == Trade(
        Side.BUY, 120_000, 100.0, 180_000, 102.0, 0.5, 0.95, 0.05, -0.01, "stop_loss", 0.019
    )
    assert bots_db.bots.trades(bot.id, open=False) == [closed]
    assert bots_db.bots.trades(bot.id, open=True) == [second]
    assert bots_db.bots.trades(bot.id) == [second, closed]
    assert bots_db.bots.close_trade(closed) == closed  # a replayed close is harmless
    with pytest.raises(DataError, match="already closed"):
        bots_db.bots.close_trade(replace(closed, pnl=1.0))
    with pytest.raises(DataError, match="is not its entry"):
        bots_db.bots.close_trade(replace(second, **exit_, quantity=0.3))
    with pytest.raises(DataError, match="pnl is nan"):
        bots_db.bots.close_trade(replace(second, **exit_ | {"pnl": math.nan}))
    with pytest.raises(DataError, match="no exit_time"):
        bots_db.bots.open_trade(replace(second, id=None, exit_time=1, exit_price=1.0))
    with pytest.raises(DataError, match="still open"):
        second.as_trade()
    assert bots_db.bots.trades(bot.id) == [second, closed]


def test_orders_of_a_bot_with_their_purpose(bots_db):
    bot = bots_db.bots.create(_bot())
    other = bots_db.bots.create(_bot("other"))

    def order(bot_id, purpose, cid):
        return bots_db.orders.create(
            Order("BTCUSDT", Side.BUY, 0.01, 100.0, bot_id=bot_id, purpose=purpose,
                  client_order_id=cid),
            actor="bot",
        )  # fmt: skip

    entry = order(bot.id, "entrada", f"kr-{bot.id}-60000-entrada")
    stop = order(bot.id, Purpose.STOP, f"kr-{bot.id}-60000-stop")
    order(other.id, "salida", "kr-other")
    manual = order(None, None, None)
    assert entry.purpose is Purpose.ENTRY and bots_db.orders.get(entry.id) == entry
    assert bots_db.orders.get(stop.id).purpose is Purpose.STOP
    assert bots_db.orders.find(bot_id=bot.id) == [stop, entry]
    assert bots_db.orders.count(bot_id=bot.id) == 2 and bots_db.orders.count() == 4
    assert bots_db.orders.find(bot_id=bot.id, symbol="ETHUSDT") == []
    assert bots_db.orders.get(manual.id).bot_id is None
    with pytest.raises(InvalidOrderError, match="proposito") as refused:
        order(bot.id, "cobertura", None)
    assert refused.value.field == "proposito"
    with pytest.raises(NotFoundError, match="bot 999"):
        order(999, "entrada", None)
    with pytest.raises(InvalidOrderError, match="id_cliente"):
        order(bot.id, "entrada", f"kr-{bot.id}-60000-entrada")
    assert bots_db.orders.count() == 4


def test_concurrent_starts_cannot_both_start_from_stopped(bots_db):
    bot = bots_db.bots.create(_bot())
    together = threading.Barrier(8)
    outcomes: list[str] = []

    def start(worker: int) -> None:
        together.wait()
        try:
            bots_db.bots.update_status(bot.id, T.START, actor=f"w{worker}")
            outcomes.append("started")
        except BotStateError:
            outcomes.append("refused")

    threads = [threading.Thread(target=start, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["refused"] * 7 + ["started"]
    assert [e.from_state for e in bots_db.bots.events(bot.id)] == [B.STOPPED]


FLIPPER = textwrap.dedent(
    """
    import sys
    from core.errors import BotStateError
    from core.models import BotTrigger
    from core.repository import Database

    url, bot_id, worker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    db = Database(url)
    done = 0
    for i in range(80):
        # iniciar is legal from detenido and error, fallar from iniciando: racing workers that
        # read the same state would both store a move from it.
        trigger = BotTrigger.START if i % 2 == 0 else BotTrigger.FAIL
        try:
            db.bots.update_status(bot_id, trigger, actor=worker)
            done += 1
        except BotStateError:
            pass
    print(done)
    """
)


def test_two_processes_transitioning_one_bot_keep_one_chain_of_events(bots_db, tmp_path):
    bot = bots_db.bots.create(_bot())
    script = tmp_path / "flipper.py"
    script.write_text(FLIPPER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), bots_db.url, str(bot.id), worker],
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in ("a", "b")
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    events = bots_db.bots.events(bot.id)
    assert sum(int(out) for out, _ in results) == len(events) > 0
    assert events[0].from_state is B.STOPPED
    assert all(a.to_state == b.from_state for a, b in zip(events, events[1:], strict=False))
    assert bots_db.bots.get(bot.id).status is events[-1].to_state
