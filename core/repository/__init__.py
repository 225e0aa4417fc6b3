"""The only package that touches SQLAlchemy: `Database` opens a URL and hands out repositories."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from config.settings import redact_url
from core.repository.backtests import BacktestRepository
from core.repository.bots import BotRepository
from core.repository.candles import CandleArrays, CandleRepository, Gap, StreamStats
from core.repository.crossovers import CrossoverRepository
from core.repository.engine import database_url, open_engine
from core.repository.jobs import Job, JobRepository, JobResult
from core.repository.migrate import current_revision, head_revision, upgrade
from core.repository.orders import OrderRepository

__all__ = [
    "CandleArrays",
    "Database",
    "Gap",
    "Job",
    "JobResult",
    "StreamStats",
    "database_url",
]


class Database:
    """One database (SQLite file or PostgreSQL) with its schema migrated and its repositories.

    Open one per process and share it; repositories open and close their own connections.
    """

    def __init__(self, target: str | Path, migrate: bool = True) -> None:
        self.url = database_url(target)
        self.engine = open_engine(self.url)
        if migrate:
            upgrade(self.engine)
        self.candles = CandleRepository(self.engine)
        self.orders = OrderRepository(self.engine)
        self.crossovers = CrossoverRepository(self.engine)
        self.backtests = BacktestRepository(self.engine)
        self.bots = BotRepository(self.engine)
        self.jobs = JobRepository(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def revision(self) -> str | None:
        """The schema revision the database is at (None before the first migration)."""
        return current_revision(self.engine)

    @staticmethod
    def head() -> str:
        """The newest schema revision this code knows."""
        return head_revision()

    def size_bytes(self) -> int | None:
        """Bytes on disk (SQLite file plus WAL, or PostgreSQL's database size)."""
        if self.dialect == "sqlite":
            path = make_url(self.url).database
            if not path or path == ":memory:":
                return None
            return sum(p.stat().st_size for p in Path(path).parent.glob(Path(path).name + "*"))
        with self.engine.connect() as connection:
            return int(
                connection.exec_driver_sql(
                    "SELECT pg_database_size(current_database())"
                ).scalar_one()
            )

    def redacted_url(self) -> str:
        """The URL with its password hidden, for logs and status output."""
        return redact_url(self.url)

    def close(self) -> None:
        self.engine.dispose()
