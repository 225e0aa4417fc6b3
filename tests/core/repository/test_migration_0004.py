"""Migration 0004: bots stored at revision 0003 read back unchanged and take commands; the
downgrade drops only bot_commands."""

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from core.errors import DataError, NotFoundError
from core.models import Bot, BotCommand, BotStatus, BotTrigger
from core.repository import Database
from core.repository.migrate import _config
from tests.conftest import create_pg_database, drop_pg_database, postgres_url

# A bot as revision 0003 stores it (written in SQL: today's repository reads later columns).
OLD_ROW = {
    "name": "viejo", "strategy": "sma_cruce", "params": '{"rapida": 5}', "symbol": "BTCUSDT",
    "interval": "1m", "mode": "paper", "capital": 10_000.0, "taker_fee": 0.0004,
    "slippage_bps": 0.0, "leverage": 1.0, "size": 1.0, "risk": '{"max_drawdown": 0.2}',
    "status": "iniciando", "status_reason": "arranque", "desired_running": False,
    "created_at": 10, "updated_at": 20,
}  # fmt: skip


def _insert(connection, table: str, row: dict) -> None:
    names = ", ".join(row)
    connection.execute(text(f"INSERT INTO {table} ({names}) VALUES (:{', :'.join(row)})"), row)


def _at_0003_with_a_bot(target) -> int:
    """The id of the one bot (with one event) stored at revision 0003."""
    database = Database(target, migrate=False)
    with database.engine.begin() as connection:
        command.upgrade(_config(connection), "0003")
        _insert(connection, "bots", OLD_ROW)
        _insert(connection, "bot_events", {
            "bot_id": 1, "from_state": "detenido", "to_state": "iniciando", "trigger": "iniciar",
            "actor": "api", "reason": "arranque", "at": 20,
        })  # fmt: skip
    assert database.revision() == "0003"
    database.close()
    return 1


def _check_upgrade(target) -> None:
    bot_id = _at_0003_with_a_bot(target)
    database = Database(target)
    try:
        assert database.revision() == Database.head()
        bot = database.bots.get(bot_id)
        assert (bot.name, bot.params, bot.risk, bot.status) == (
            "viejo", {"rapida": 5}, {"max_drawdown": 0.2}, BotStatus.STARTING,
        )  # fmt: skip
        assert [e.trigger for e in database.bots.events(bot_id)] == [BotTrigger.START]
        assert database.bots.pending_commands() == []
        one = database.bots.add_command(bot_id, "parar", close=True)
        every = database.bots.add_command(None, "matar")
        assert (one.id, every.id) == (1, 2)
        assert database.bots.pending_commands() == [one, every]
        with pytest.raises(IntegrityError), database.engine.begin() as connection:
            connection.execute(text("UPDATE bot_commands SET bot_id = 999 WHERE id = 1"))
    finally:
        database.close()


def test_sqlite_bots_at_0003_upgrade_unchanged(tmp_path):
    _check_upgrade(tmp_path / "old.db")


def test_postgresql_bots_at_0003_upgrade_unchanged():
    url = create_pg_database(postgres_url())
    try:
        _check_upgrade(url)
    finally:
        drop_pg_database(url)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_downgrade_to_0003_drops_only_the_commands(tmp_path, dialect):
    target = tmp_path / "down.db" if dialect == "sqlite" else create_pg_database(postgres_url())
    try:
        bot_id = _at_0003_with_a_bot(target)
        database = Database(target)
        database.bots.add_command(bot_id, "pausar")
        with database.engine.begin() as connection:
            command.downgrade(_config(connection), "0003")
        assert database.revision() == "0003"
        with database.engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            names = connection.execute(text("SELECT name FROM bots")).scalars().all()
        assert "bot_commands" not in tables and names == ["viejo"]
        database.close()
    finally:
        if dialect == "postgresql":
            drop_pg_database(str(target))


def test_commands_are_pending_until_finished_once(db):
    bot = db.bots.create(Bot("b", "sma_cruce", "BTCUSDT", "1m"))
    first = db.bots.add_command(bot.id, "pausar")
    assert first == BotCommand(bot.id, "pausar", False, first.created_at, id=first.id)
    assert first.pending and first.created_at > 0
    second = db.bots.add_command(None, "matar", close=True)
    done = db.bots.finish_command(first.id, "pausado")
    assert (done.pending, done.result, done.done_at >= done.created_at) == (False, "pausado", True)
    assert db.bots.pending_commands() == [second]
    # A second host finishing it too does not overwrite what happened.
    assert db.bots.finish_command(first.id, "otra cosa") == done
    with pytest.raises(NotFoundError):
        db.bots.finish_command(999, "x")
    with pytest.raises(NotFoundError):
        db.bots.add_command(999, "parar")
    with pytest.raises(DataError, match="not one of"):
        db.bots.add_command(bot.id, "explotar")
    assert db.bots.pending_commands() == [second]


def test_set_desired_running_changes_only_the_wish(db):
    bot = db.bots.create(Bot("b", "sma_cruce", "BTCUSDT", "1m", desired_running=True))
    db.bots.set_desired_running(bot.id, False)
    after = db.bots.get(bot.id)
    assert (after.desired_running, after.status, db.bots.events(bot.id)) == (
        False, BotStatus.STOPPED, [],
    )  # fmt: skip
    with pytest.raises(NotFoundError):
        db.bots.set_desired_running(999, True)
