"""Moving-average crossovers found by strategies, for `/cruces` and `/ultimos_cruces`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from sqlalchemy import Engine, Row, Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.models import CrossKind, Crossover
from core.repository.engine import read_connection, write_transaction
from core.repository.tables import CrossoverRow

_table = cast(Table, CrossoverRow.__table__)


def _crossover(row: Row) -> Crossover:
    return Crossover(
        id=row.id,
        symbol=row.symbol,
        interval=row.interval,
        open_time=row.open_time,
        kind=CrossKind(row.kind),
        price=row.price,
        fast=row.fast,
        slow=row.slow,
        strategy=row.strategy,
    )


class CrossoverRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, crossovers: Iterable[Crossover]) -> int:
        """Store crossovers, ignoring ones already stored (the bridge may see a candle twice).

        Returns how many were new.
        """
        values = [
            {
                "symbol": c.symbol,
                "interval": c.interval,
                "strategy": c.strategy,
                "open_time": c.open_time,
                "kind": c.kind.value,
                "price": c.price,
                "fast": c.fast,
                "slow": c.slow,
            }
            for c in crossovers
        ]
        if not values:
            return 0
        with write_transaction(self._engine) as connection:
            dialect_insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
            statement = (
                dialect_insert(_table)
                .on_conflict_do_nothing(
                    index_elements=["symbol", "interval", "strategy", "open_time"]
                )
                .returning(_table.c.id)
            )
            # RETURNING lists only inserted rows; executemany's rowcount is -1 on psycopg.
            return len(connection.execute(statement, values).all())

    def find(
        self,
        symbol: str | None = None,
        interval: str | None = None,
        since: int | None = None,
        limit: int = 100,
    ) -> list[Crossover]:
        """Crossovers matching the filters, newest first."""
        query = select(_table)
        if symbol is not None:
            query = query.where(_table.c.symbol == symbol)
        if interval is not None:
            query = query.where(_table.c.interval == interval)
        if since is not None:
            query = query.where(_table.c.open_time >= since)
        query = query.order_by(_table.c.open_time.desc(), _table.c.id.desc()).limit(limit)
        with read_connection(self._engine) as connection:
            return [_crossover(row) for row in connection.execute(query)]

    def latest_per_stream(self) -> list[Crossover]:
        """The newest crossover of every (symbol, interval, strategy)."""
        newest = (
            select(
                _table.c.symbol,
                _table.c.interval,
                _table.c.strategy,
                func.max(_table.c.open_time).label("open_time"),
            )
            .group_by(_table.c.symbol, _table.c.interval, _table.c.strategy)
            .subquery()
        )
        query = (
            select(_table)
            .join(
                newest,
                (_table.c.symbol == newest.c.symbol)
                & (_table.c.interval == newest.c.interval)
                & (_table.c.strategy == newest.c.strategy)
                & (_table.c.open_time == newest.c.open_time),
            )
            .order_by(_table.c.open_time.desc())
        )
        with read_connection(self._engine) as connection:
            return [_crossover(row) for row in connection.execute(query)]
