"""Migration 0003: orders stored at revision 0002 read back unchanged, and belong to no bot."""

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from core.models import Bot, Order, OrderState, OrderType, Side, TimeInForce
from core.repository import Database
from core.repository.migrate import _config
from core.repository.tables import Base
from core.risk_types import Purpose
from tests.conftest import create_pg_database, drop_pg_database, postgres_url

OLD_ORDERS = [
    Order("BTCUSDT", Side.BUY, 0.01, 29500.5, id=1, created_at=10, updated_at=10),
    Order(
        "ETHUSDT", Side.SELL, 0.0, type=OrderType.STOP_MARKET, state=OrderState.OPEN, id=2,
        client_order_id="cli-2", exchange_order_id="77", created_at=20, updated_at=25,
        close_position=True, trigger_price=1800.0, algo_id="9001",
    ),
    Order(
        "BTCUSDT", Side.SELL, 0.2, type=OrderType.TRAILING_STOP_MARKET, state=OrderState.PARTIAL,
        filled_quantity=0.05, id=3, client_order_id="cli-3", created_at=30, updated_at=35,
        reduce_only=True, callback_rate=1.5, activation_price=31000.0,
        time_in_force=TimeInForce.GTD, good_till_date=99_000,
    ),
]  # fmt: skip
# Every column revision 0002 has; ids left to the database, so PostgreSQL's sequence moves on.
COLUMNS = (
    "symbol", "side", "type", "price", "quantity", "state", "filled_quantity", "client_order_id",
    "exchange_order_id", "created_at", "updated_at", "reduce_only", "close_position",
    "trigger_price", "callback_rate", "activation_price", "time_in_force", "good_till_date",
    "algo_id",
)  # fmt: skip


def _row(order: Order) -> dict:
    row = {name: getattr(order, name) for name in COLUMNS}
    return row | {name: str(row[name]) for name in ("side", "type", "state", "time_in_force")}


def _at_0002_with_orders(target) -> None:
    database = Database(target, migrate=False)
    with database.engine.begin() as connection:
        command.upgrade(_config(connection), "0002")
        insert = text(f"INSERT INTO orders ({', '.join(COLUMNS)}) VALUES (:{', :'.join(COLUMNS)})")
        for order in OLD_ORDERS:
            connection.execute(insert, _row(order))
            connection.execute(
                text(
                    "INSERT INTO order_events (order_id, to_state, at, actor, reason, "
                    "filled_quantity) VALUES (:o, 'pendiente', :at, 'api', 'creada', 0)"
                ),
                {"o": order.id, "at": order.created_at},
            )
    assert database.revision() == "0002"
    database.close()


def _check_upgrade(target) -> None:
    _at_0002_with_orders(target)
    database = Database(target)
    try:
        assert database.revision() == Database.head()
        assert [database.orders.get(o.id) for o in OLD_ORDERS] == OLD_ORDERS
        assert database.orders.find() == OLD_ORDERS[::-1]
        assert all(o.bot_id is None and o.purpose is None for o in database.orders.find())
        assert len(database.orders.events(2)) == 1
        # The old orders keep living next to a bot's.
        database.orders.apply(3, OrderState.FILLED, actor="exchange")
        bot = database.bots.create(Bot("b", "sma_cruce", "BTCUSDT", "1m"))
        assert bot.id == 1
        assert database.orders.find(bot_id=bot.id) == []
        new = database.orders.create(
            Order("BTCUSDT", Side.BUY, 0.01, bot_id=bot.id, purpose="entrada",
                  type=OrderType.MARKET, client_order_id="kr-1-60000-entrada"),
            actor="bot",
        )  # fmt: skip
        assert new.id == 4 and new.purpose is Purpose.ENTRY
        assert database.orders.find(bot_id=bot.id) == [new]
        # The new foreign key holds on an upgraded database too (SQLite: the inline REFERENCES).
        with pytest.raises(IntegrityError), database.engine.begin() as connection:
            connection.execute(text("UPDATE orders SET bot_id = 999 WHERE id = 1"))
        assert database.orders.get(1) == OLD_ORDERS[0]
    finally:
        database.close()


def test_sqlite_orders_at_0002_upgrade_unchanged(tmp_path):
    _check_upgrade(tmp_path / "old.db")


def test_postgresql_orders_at_0002_upgrade_unchanged():
    url = create_pg_database(postgres_url())
    try:
        _check_upgrade(url)
    finally:
        drop_pg_database(url)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_downgrade_to_0002_keeps_the_old_orders(tmp_path, dialect):
    target = tmp_path / "down.db" if dialect == "sqlite" else create_pg_database(postgres_url())
    try:
        _at_0002_with_orders(target)
        database = Database(target)
        database.bots.create(Bot("b", "sma_cruce", "BTCUSDT", "1m"))
        with database.engine.begin() as connection:
            command.downgrade(_config(connection), "0002")
        assert database.revision() == "0002"
        with database.engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            columns = {c["name"] for c in inspect(connection).get_columns("orders")}
            query = text(f"SELECT {', '.join(COLUMNS)} FROM orders ORDER BY id")
            rows = [dict(r._mapping) for r in connection.execute(query)]
        assert not tables & {"bots", "bot_events", "bot_decisions", "bot_trades"}
        assert "bot_id" not in columns and "purpose" not in columns
        assert [Order(id=o.id, **r) for o, r in zip(OLD_ORDERS, rows, strict=True)] == OLD_ORDERS
        database.close()
    finally:
        if dialect == "postgresql":
            drop_pg_database(str(target))


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_migrations_create_exactly_the_table_models(tmp_path, dialect):
    target = tmp_path / "fresh.db" if dialect == "sqlite" else create_pg_database(postgres_url())
    try:
        database = Database(target)
        with database.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        database.close()
        # 0002 leaves SQLite's orders.type at VARCHAR(10) on purpose: SQLite ignores lengths.
        if dialect == "sqlite":
            diff = [d for d in diff if not (d[0][0] == "modify_type" and d[0][3] == "type")]
        assert diff == []
    finally:
        if dialect == "postgresql":
            drop_pg_database(str(target))
