"""Stored backtest runs with their trades and (down-sampled) equity curves."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from itertools import chain
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import Engine, Row, Table, func, insert, select

from core.errors import DataError, NotFoundError
from core.models import BacktestRun, Side, Trade
from core.repository.engine import read_connection, write_transaction
from core.repository.tables import BacktestRunRow, BacktestTradeRow

_runs = cast(Table, BacktestRunRow.__table__)
_trades = cast(Table, BacktestTradeRow.__table__)
_TRADE_FIELDS = (
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "quantity",
    "pnl",
    "fees",
    "funding",
    "exit_reason",
    "return_pct",
)


def json_safe(value: Any) -> Any:
    """`value` with NaN and ±inf replaced by None: strict JSON (and PostgreSQL) reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


_NUMERIC_TRADE_FIELDS = tuple(f for f in _TRADE_FIELDS if f != "exit_reason")


def _check_finite(run: BacktestRun) -> None:
    trade_values = chain.from_iterable(map(attrgetter(*_NUMERIC_TRADE_FIELDS), run.trades))
    parts = {
        "capital": [run.capital],
        "equity": (value for _, value in run.equity),
        "trades": trade_values,
    }
    for name, values in parts.items():
        if not all(map(math.isfinite, values)):
            raise DataError(f"backtest not stored: its {name} holds numbers that are not finite")


def _run(row: Row, trades: tuple[Trade, ...] = (), with_equity: bool = True) -> BacktestRun:
    return BacktestRun(
        id=row.id,
        symbol=row.symbol,
        interval=row.interval,
        strategy=row.strategy,
        params=row.params,
        start_time=row.start_time,
        end_time=row.end_time,
        capital=row.capital,
        metrics=row.metrics,
        trades=trades,
        equity=tuple((int(t), float(v)) for t, v in row.equity) if with_equity else (),
        created_at=row.created_at,
    )


def _trade(row: Row) -> Trade:
    return Trade(side=Side(row.side), **{name: getattr(row, name) for name in _TRADE_FIELDS})


class BacktestRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def save(self, run: BacktestRun) -> BacktestRun:
        """Store a run and its trades in one transaction; returns it with `id` and `created_at`.

        Raises DataError, storing nothing, when the capital, a trade or the equity curve holds a
        number that is not finite: such a run could never be read back as JSON.
        """
        _check_finite(run)
        created = run.created_at or int(time.time() * 1000)
        values = {
            "symbol": run.symbol,
            "interval": run.interval,
            "strategy": run.strategy,
            "params": json_safe(run.params),
            "start_time": run.start_time,
            "end_time": run.end_time,
            "capital": run.capital,
            "metrics": json_safe(run.metrics),
            "equity": json_safe([list(point) for point in run.equity]),
            "created_at": created,
        }
        with write_transaction(self._engine) as connection:
            run_id = connection.execute(
                insert(_runs).values(values).returning(_runs.c.id)
            ).scalar_one()
            trade_rows = [
                {
                    "run_id": run_id,
                    "seq": seq,
                    "side": trade.side.value,
                    **{name: getattr(trade, name) for name in _TRADE_FIELDS},
                }
                for seq, trade in enumerate(run.trades)
            ]
            if trade_rows:
                connection.execute(insert(_trades), trade_rows)
        return replace(run, id=run_id, created_at=created)

    def get(self, run_id: int) -> BacktestRun:
        """The run with its trades and equity; raises NotFoundError."""
        with read_connection(self._engine) as connection:
            row = connection.execute(select(_runs).where(_runs.c.id == run_id)).first()
            if row is None:
                raise NotFoundError(f"backtest {run_id} does not exist")
            query = select(_trades).where(_trades.c.run_id == run_id).order_by(_trades.c.seq)
            trades = tuple(_trade(r) for r in connection.execute(query))
        return _run(row, trades)

    def find(self, limit: int = 50, offset: int = 0) -> list[BacktestRun]:
        """Runs newest first, without trades and equity (summaries for a listing)."""
        query = select(_runs).order_by(_runs.c.id.desc()).limit(limit).offset(offset)
        with read_connection(self._engine) as connection:
            return [_run(row, with_equity=False) for row in connection.execute(query)]

    def count(self) -> int:
        with read_connection(self._engine) as connection:
            return int(connection.execute(select(func.count()).select_from(_runs)).scalar_one())
