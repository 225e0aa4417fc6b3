"""What the data entry points share: turning the user's `db` argument into a Database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from config.settings import load_settings
from core.repository import Database


@contextmanager
def database_for(db: str | Path | Database | None) -> Iterator[Database]:
    """A migrated Database for a SQLite path, a SQLAlchemy URL, a Database, or None (configured).

    A Database the caller passed stays open; one opened here is closed on exit.
    """
    if isinstance(db, Database):
        yield db
        return
    database = Database(load_settings().database_url if db is None else db)
    try:
        yield database
    finally:
        database.close()


def market_url() -> str:
    """The configured market's REST base URL."""
    return load_settings().binance_rest_url
