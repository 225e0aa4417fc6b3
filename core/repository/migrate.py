"""Schema migrations (Alembic), applied automatically when a database is opened."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from core.repository.engine import read_connection, write_transaction

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same for every Kryptelion process.
_PG_LOCK_KEY = 7_263_551


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with read_connection(engine) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the schema to head and return the head revision.

    Several processes may start at once (web, bridge, updater); the write lock (SQLite) or an
    advisory lock (PostgreSQL) makes exactly one of them migrate while the others wait.
    """
    head = head_revision()
    if current_revision(engine) == head:
        return head
    with write_transaction(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        if MigrationContext.configure(connection).get_current_revision() != head:
            command.upgrade(_config(connection), "head")
    return head
