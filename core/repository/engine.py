"""Engines and transactions: SQLite tuned for several processes on one file, PostgreSQL as is."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

from config.settings import quote_database_password, redact_url
from core.errors import ConfigError, DatabaseError

BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10


def database_url(target: str | Path) -> str:
    """A SQLAlchemy URL from either a URL or a plain SQLite file path (as the user's examples pass).

    `postgresql://` and `postgres://` mean psycopg 3, the only PostgreSQL driver we ship; a
    password holding `@` or `/` is percent-encoded so that it is read whole.
    """
    text = str(target)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    text = quote_database_password(text)
    for prefix in ("postgresql://", "postgres://"):
        if text.startswith(prefix):
            return "postgresql+psycopg://" + text[len(prefix) :]
    return text


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL (a persistent setting). The switch needs an exclusive lock and
    SQLite does not wait on the busy timeout for it, so two processes creating the same file at
    once must retry here."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")  # in-memory databases answer "memory"
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.02)


def _sqlite_engine(url: str) -> Engine:
    path = make_url(url).database or ":memory:"
    if path == ":memory:":
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # We issue BEGIN ourselves (below): pysqlite's implicit transactions would start deferred
        # ones, and a deferred reader that later writes fails at once with "database is locked".
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def make_engine(url: str) -> Engine:
    """An Engine for `url`; raises ConfigError for a URL SQLAlchemy cannot use."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"DATABASE_URL: cannot parse {redact_url(url)!r}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"DATABASE_URL: unsupported database {parsed.get_backend_name()!r}")
    # A server that silently drops packets fails within 10 s, not the OS's TCP timeout.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
    )


def open_engine(url: str) -> Engine:
    """An Engine for `url` that has connected once (so a SQLite file and its folder exist).

    Raises DatabaseError, one line naming DATABASE_URL (password hidden) and the cause, when the
    server cannot be reached, refuses the login or an option of the URL, or the file or its
    folder cannot be created;
    ConfigError for a URL SQLAlchemy cannot use.
    """
    try:
        engine = make_engine(url)  # creates a SQLite file's folder
    except OSError as error:
        raise _unavailable(url, error) from None
    try:
        with engine.connect():
            pass
    except (OperationalError, InterfaceError, sqlite3.OperationalError, OSError) as error:
        engine.dispose()
        raise _unavailable(url, error) from None
    except ProgrammingError as error:  # libpq refused the URL itself: an unknown query option
        engine.dispose()
        raise _unavailable(url, error) from None
    return engine


def _unavailable(url: str, error: Exception) -> DatabaseError:
    # The driver's own first line (psycopg, sqlite3, the OS), without SQLAlchemy's wrapping.
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    cause = lines[0].strip() if lines else type(error).__name__
    return DatabaseError(f"DATABASE_URL: cannot open {redact_url(url)}: {redact_url(cause)}")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the write lock from its first statement.

    On SQLite this is BEGIN IMMEDIATE, so concurrent writers queue on the busy timeout instead of
    failing; PostgreSQL needs nothing special.
    """
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            yield connection


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a read transaction (a consistent snapshot under WAL)."""
    with engine.connect() as connection, connection.begin():
        yield connection
