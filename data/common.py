"""What the data entry points share: turning the user's `db` argument into a Database."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from config.settings import load_settings
from core.repository import Database

log = logging.getLogger(__name__)


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
    """The configured market's REST base URL, starting the demo exchange in-process if needed.

    With MARKET=demo (the default) and nothing listening on DEMO_HOST:DEMO_PORT, the user's
    examples (`obtener_datos_historicos(["BTCUSDT"], ["1m"], "datos_historicos.db")` in a plain
    Python session) still work: a demo exchange is started in a background thread for the rest of
    the process.
    """
    settings = load_settings()
    if settings.is_demo and not _listening(settings.demo_host, settings.demo_port):
        from core.exchange.demo import DemoExchangeThread, DemoOptions

        options = DemoOptions(speed=settings.demo_speed, seed=settings.demo_seed)
        exchange = DemoExchangeThread(options, settings.demo_host, settings.demo_port).start()
        log.info("started the local DEMO exchange at %s for this process", exchange.rest_url)
    return settings.binance_rest_url


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
