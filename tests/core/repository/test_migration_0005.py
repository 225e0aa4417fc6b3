"""Migration 0005: bots stored at revision 0004 read back unchanged, with no trailing stop and
no lease, and take a trailing stop; the downgrade drops only what 0005 added."""

from dataclasses import replace

import pytest
from alembic import command
from sqlalchemy import inspect, text

from core.models import Bot, BotCommand, BotStatus, BotTrigger
from core.repository import Database
from core.repository.migrate import _config
from tests.conftest import create_pg_database, drop_pg_database, postgres_url

# Every column revision 0004 gives a bot (written in SQL: today's repository reads `trailing`).
OLD_ROW = {
    "name": "viejo", "strategy": "sma_cruce", "params": '{"rapida": 5, "lenta": 20}',
    "symbol": "BTCUSDT", "interval": "1m", "mode": "testnet", "capital": 1_000.0,
    "taker_fee": 0.0005, "maker_fee": 0.0002, "slippage_bps": 2.0, "leverage": 3.0, "size": 0.5,
    "stop_loss": "0.02", "take_profit": "3atr", "funding_rate": 0.0001,
    "risk": '{"max_drawdown": 0.2}', "status": "iniciando", "status_reason": "arranque",
    "desired_running": True, "broker_state": '{"equity": 1000.0}', "created_at": 10,
    "updated_at": 20,
}  # fmt: skip
OLD = Bot(
    "viejo", "sma_cruce", "BTCUSDT", "1m", params={"rapida": 5, "lenta": 20}, mode="testnet",
    capital=1_000.0, taker_fee=0.0005, maker_fee=0.0002, slippage_bps=2.0, leverage=3.0,
    size=0.5, stop_loss="0.02", take_profit="3atr", funding_rate=0.0001,
    risk={"max_drawdown": 0.2}, status=BotStatus.STARTING, status_reason="arranque",
    desired_running=True, created_at=10, updated_at=20, id=1,
)  # fmt: skip
OLD_COMMAND = BotCommand(1, "pausar", False, 30, id=1)


def _insert(connection, table: str, row: dict) -> None:
    names = ", ".join(row)
    connection.execute(text(f"INSERT INTO {table} ({names}) VALUES (:{', :'.join(row)})"), row)


def _at_0004_with_a_bot(target) -> None:
    """Revision 0004 holding one bot with an event and a pending command."""
    database = Database(target, migrate=False)
    with database.engine.begin() as connection:
        command.upgrade(_config(connection), "0004")
        _insert(connection, "bots", OLD_ROW)
        _insert(connection, "bot_events", {
            "bot_id": 1, "from_state": "detenido", "to_state": "iniciando", "trigger": "iniciar",
            "actor": "api", "reason": "arranque", "at": 20,
        })  # fmt: skip
        _insert(connection, "bot_commands", {
            "bot_id": 1, "command": "pausar", "close": False, "created_at": 30, "result": "",
        })  # fmt: skip
    assert database.revision() == "0004"
    database.close()


def _check_upgrade(target) -> None:
    _at_0004_with_a_bot(target)
    database = Database(target)
    try:
        assert database.revision() == Database.head()  # 0005 and every later migration
        assert database.bots.get(1) == OLD and OLD.trailing is None
        assert database.bots.holder(1, 0) is None  # nobody holds an old bot's lease
        assert database.bots.load_broker_state(1) == {"equity": 1000.0}
        assert [e.trigger for e in database.bots.events(1)] == [BotTrigger.START]
        assert database.bots.pending_commands() == [OLD_COMMAND]
        trailing = database.bots.update_config(replace(OLD, trailing=0.01))
        assert trailing == replace(OLD, trailing=0.01, updated_at=trailing.updated_at)
        assert database.bots.get(1) == trailing
        new = database.bots.create(Bot("nuevo", "sma_cruce", "ETHUSDT", "1h", trailing=0.005))
        assert (new.id, database.bots.get(new.id).trailing) == (2, 0.005)
    finally:
        database.close()


def test_sqlite_bots_at_0004_upgrade_unchanged(tmp_path):
    _check_upgrade(tmp_path / "old.db")


def test_postgresql_bots_at_0004_upgrade_unchanged():
    url = create_pg_database(postgres_url())
    try:
        _check_upgrade(url)
    finally:
        drop_pg_database(url)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_downgrade_to_0004_drops_only_what_0005_added(tmp_path, dialect):
    target = tmp_path / "down.db" if dialect == "sqlite" else create_pg_database(postgres_url())
    try:
        _at_0004_with_a_bot(target)
        database = Database(target)
        database.bots.update_config(replace(OLD, trailing=0.02))
        with database.engine.begin() as connection:
            command.downgrade(_config(connection), "0004")
        assert database.revision() == "0004"
        with database.engine.connect() as connection:
            columns = {c["name"] for c in inspect(connection).get_columns("bots")}
            query = text(f"SELECT {', '.join(OLD_ROW)} FROM bots")
            rows = [dict(row._mapping) for row in connection.execute(query)]
            commands = connection.execute(text("SELECT command FROM bot_commands")).all()
        assert columns == set(OLD_ROW) | {"id"}
        assert rows == [OLD_ROW | {"updated_at": rows[0]["updated_at"]}]
        assert [c.command for c in commands] == ["pausar"]
        database.close()
    finally:
        if dialect == "postgresql":
            drop_pg_database(str(target))
