"""Migration 0002: orders stored at revision 0001 read back unchanged after the upgrade."""

import pytest
from alembic import command
from sqlalchemy import text

from core.models import Order, OrderState, OrderType, Side, TimeInForce
from core.repository import Database
from core.repository.migrate import _config
from tests.conftest import create_pg_database, drop_pg_database, postgres_url

OLD_ROWS = [
    # id, symbol, side, type, price, quantity, state, filled, client id, exchange id, times
    (1, "BTCUSDT", "compra", "limite", 29500.5, 0.01, "pendiente", 0.0, None, None, 10, 10),
    (2, "ETHUSDT", "venta", "mercado", None, 1.5, "ejecutada", 1.5, "cli-2", "77", 20, 25),
    (3, "BTCUSDT", "venta", "limite", 31000.0, 0.2, "parcial", 0.05, "cli-3", None, 30, 35),
]
# Ids left to the database, so PostgreSQL's sequence moves on as it did at 0001.
COLUMNS = (
    "symbol, side, type, price, quantity, state, filled_quantity, client_order_id, "
    "exchange_order_id, created_at, updated_at"
)


def _expected(row: tuple) -> Order:
    oid, symbol, side, kind, price, qty, state, filled, cid, eid, created, updated = row
    return Order(
        id=oid,
        symbol=symbol,
        side=Side(side),
        type=OrderType(kind),
        price=price,
        quantity=qty,
        state=OrderState(state),
        filled_quantity=filled,
        client_order_id=cid,
        exchange_order_id=eid,
        created_at=created,
        updated_at=updated,
    )


def _at_0001_with_orders(target) -> None:
    database = Database(target, migrate=False)
    with database.engine.begin() as connection:
        command.upgrade(_config(connection), "0001")
        keys = [c.strip() for c in COLUMNS.split(",")]
        insert = text(f"INSERT INTO orders ({COLUMNS}) VALUES (:{', :'.join(keys)})")
        for row in OLD_ROWS:
            connection.execute(insert, dict(zip(keys, row[1:], strict=True)))
            connection.execute(
                text(
                    "INSERT INTO order_events (order_id, to_state, at, actor, reason, "
                    "filled_quantity) VALUES (:o, 'pendiente', :at, 'api', 'creada', 0)"
                ),
                {"o": row[0], "at": row[10]},
            )
    assert database.revision() == "0001"
    database.close()


def _check_upgrade(target) -> None:
    _at_0001_with_orders(target)
    database = Database(target)
    try:
        assert database.revision() == Database.head()
        expected = [_expected(row) for row in OLD_ROWS]
        assert [database.orders.get(o.id) for o in expected] == expected
        assert database.orders.find() == expected[::-1]
        assert database.orders.get_by_client_id("cli-3") == expected[2]
        old = database.orders.get(1)
        assert (old.reduce_only, old.close_position, old.time_in_force) == (
            False,
            False,
            TimeInForce.GTC,
        )
        assert (old.trigger_price, old.callback_rate, old.activation_price, old.algo_id) == (
            None,
            None,
            None,
            None,
        )
        # The old orders keep living, and the new types fit the widened column.
        database.orders.apply(1, OrderState.FILLED, actor="exchange")
        new = database.orders.create(
            Order(
                symbol="BTCUSDT",
                side=Side.SELL,
                quantity=0.0,
                type=OrderType.TAKE_PROFIT_MARKET,
                trigger_price=32000.0,
                close_position=True,
            ),
            actor="api",
        )
        assert database.orders.get(new.id) == new and new.id == 4
    finally:
        database.close()


def test_sqlite_orders_at_0001_upgrade_unchanged(tmp_path):
    _check_upgrade(tmp_path / "old.db")


def test_postgresql_orders_at_0001_upgrade_unchanged():
    url = create_pg_database(postgres_url())
    try:
        _check_upgrade(url)
    finally:
        drop_pg_database(url)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_downgrade_to_0001_keeps_the_old_orders(tmp_path, dialect):
    target = tmp_path / "down.db" if dialect == "sqlite" else create_pg_database(postgres_url())
    try:
        _at_0001_with_orders(target)
        database = Database(target)
        with database.engine.begin() as connection:
            command.downgrade(_config(connection), "0001")
        assert database.revision() == "0001"
        with database.engine.connect() as connection:
            query = text(f"SELECT id, {COLUMNS} FROM orders ORDER BY id")
            rows = connection.execute(query).all()
        assert [tuple(r) for r in rows] == OLD_ROWS
        database.close()
    finally:
        if dialect == "postgresql":
            drop_pg_database(str(target))
