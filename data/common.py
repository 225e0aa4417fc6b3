"""What the data entry points share: one rule from the user's `db` argument to a Database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from config.settings import Settings, load_settings
from core.repository import Database


def database_target(db: str | Path | None, settings: Settings | None = None) -> str | Path:
    """Where `db` points, by the one rule the data functions and `run.py --db` follow.

    None is DATABASE_URL. A bare file name with no directory part (`"datos_historicos.db"`, as the
    user's examples write it) is that file in DATA_DIR, so the default name is the very file of the
    default DATABASE_URL that `python run.py` and the pages use. A path with a directory part
    (`"./x.db"`, `"sub/x.db"`, `"/abs/x.db"`), `":memory:"` or a SQLAlchemy URL is taken as given.
    """
    settings = settings or load_settings()
    if db is None:
        return settings.database_url
    if _is_bare_name(db):
        return settings.data_dir / os.fspath(db)
    return db


def _is_bare_name(db: str | Path) -> bool:
    text = os.fspath(db)
    return "://" not in text and text != ":memory:" and not os.path.dirname(text)


@contextmanager
def database_for(
    db: str | Path | Database | None, settings: Settings | None = None
) -> Iterator[Database]:
    """A migrated Database for `db` (see `database_target`), or `db` itself if it is a Database.

    A Database the caller passed stays open; one opened here is closed on exit. A SQLite file's
    folder (DATA_DIR for a bare name) is created by the engine.
    """
    if isinstance(db, Database):
        yield db
        return
    database = Database(database_target(db, settings or load_settings()))
    try:
        yield database
    finally:
        database.close()


def market_url() -> str:
    """The configured market's REST base URL, starting the demo exchange in-process if needed.

    With MARKET=demo (the default) and nothing listening on DEMO_HOST:DEMO_PORT, the user's
    examples still work in a plain Python session: see `ensure_demo_exchange`.
    """
    from core.exchange.demo import ensure_demo_exchange  # aiohttp only when the market is needed

    settings = load_settings()
    ensure_demo_exchange(settings)
    return settings.binance_rest_url
