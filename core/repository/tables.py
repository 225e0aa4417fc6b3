"""SQLAlchemy 2.0 typed table models; the migrations in `migrations/` create exactly these."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid alias); PostgreSQL gets BIGINT.
_ID = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class CandleRow(Base):
    """One kline; the composite key makes upserts idempotent and range reads index-ordered."""

    __tablename__ = "candles"
    __table_args__ = {"sqlite_with_rowid": False}

    symbol: Mapped[str] = mapped_column(String(20), primary_key=True)
    interval: Mapped[str] = mapped_column(String(3), primary_key=True)
    open_time: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    open: Mapped[float] = mapped_column(Double)
    high: Mapped[float] = mapped_column(Double)
    low: Mapped[float] = mapped_column(Double)
    close: Mapped[float] = mapped_column(Double)
    volume: Mapped[float] = mapped_column(Double)
    quote_volume: Mapped[float] = mapped_column(Double, default=0.0)
    trades: Mapped[int] = mapped_column(BigInteger, default=0)
    taker_buy_base: Mapped[float] = mapped_column(Double, default=0.0)
    taker_buy_quote: Mapped[float] = mapped_column(Double, default=0.0)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_symbol_state", "symbol", "state"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(20))
    side: Mapped[str] = mapped_column(String(10))
    type: Mapped[str] = mapped_column(String(30))
    price: Mapped[float | None] = mapped_column(Double, nullable=True)
    quantity: Mapped[float] = mapped_column(Double)
    state: Mapped[str] = mapped_column(String(12))
    filled_quantity: Mapped[float] = mapped_column(Double, default=0.0)
    client_order_id: Mapped[str | None] = mapped_column(String(36), unique=True, nullable=True)
    exchange_order_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    # Server defaults so the rows written before migration 0002 read back as the orders they were.
    reduce_only: Mapped[bool] = mapped_column(Boolean, server_default=false())
    close_position: Mapped[bool] = mapped_column(Boolean, server_default=false())
    trigger_price: Mapped[float | None] = mapped_column(Double, nullable=True)
    callback_rate: Mapped[float | None] = mapped_column(Double, nullable=True)
    activation_price: Mapped[float | None] = mapped_column(Double, nullable=True)
    time_in_force: Mapped[str] = mapped_column(String(3), server_default=text("'GTC'"))
    good_till_date: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    algo_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # Migration 0003: the bot that sent the order and why (NULL for manual orders).
    bot_id: Mapped[int | None] = mapped_column(ForeignKey("bots.id"), nullable=True, index=True)
    purpose: Mapped[str | None] = mapped_column(String(20), nullable=True)


class OrderEventRow(Base):
    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(12), nullable=True)
    to_state: Mapped[str] = mapped_column(String(12))
    at: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(200), default="")
    filled_quantity: Mapped[float] = mapped_column(Double, default=0.0)


class CrossoverRow(Base):
    __tablename__ = "crossovers"
    __table_args__ = (
        UniqueConstraint("symbol", "interval", "strategy", "open_time", name="uq_crossovers_key"),
        Index("ix_crossovers_time", "open_time"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(20))
    interval: Mapped[str] = mapped_column(String(3))
    strategy: Mapped[str] = mapped_column(String(40))
    open_time: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))
    price: Mapped[float] = mapped_column(Double)
    fast: Mapped[float] = mapped_column(Double)
    slow: Mapped[float] = mapped_column(Double)


class BacktestRunRow(Base):
    __tablename__ = "backtest_runs"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(20))
    interval: Mapped[str] = mapped_column(String(3))
    strategy: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    start_time: Mapped[int] = mapped_column(BigInteger)
    end_time: Mapped[int] = mapped_column(BigInteger)
    capital: Mapped[float] = mapped_column(Double)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    equity: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)


class BacktestTradeRow(Base):
    __tablename__ = "backtest_trades"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("backtest_runs.id"), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    side: Mapped[str] = mapped_column(String(10))
    entry_time: Mapped[int] = mapped_column(BigInteger)
    entry_price: Mapped[float] = mapped_column(Double)
    exit_time: Mapped[int] = mapped_column(BigInteger)
    exit_price: Mapped[float] = mapped_column(Double)
    quantity: Mapped[float] = mapped_column(Double)
    pnl: Mapped[float] = mapped_column(Double)
    fees: Mapped[float] = mapped_column(Double)
    funding: Mapped[float] = mapped_column(Double)
    exit_reason: Mapped[str] = mapped_column(String(40))
    return_pct: Mapped[float] = mapped_column(Double)


class BotRow(Base):
    """A bot's configuration, state and the paper broker's snapshot (JSON text, opaque here)."""

    __tablename__ = "bots"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    strategy: Mapped[str] = mapped_column(String(40))
    params: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(String(20))
    interval: Mapped[str] = mapped_column(String(3))
    mode: Mapped[str] = mapped_column(String(10))
    capital: Mapped[float] = mapped_column(Double)
    taker_fee: Mapped[float] = mapped_column(Double)
    maker_fee: Mapped[float | None] = mapped_column(Double, nullable=True)
    slippage_bps: Mapped[float] = mapped_column(Double)
    leverage: Mapped[float] = mapped_column(Double)
    size: Mapped[float] = mapped_column(Double)
    stop_loss: Mapped[str | None] = mapped_column(String(20), nullable=True)
    take_profit: Mapped[str | None] = mapped_column(String(20), nullable=True)
    funding_rate: Mapped[float | None] = mapped_column(Double, nullable=True)
    trailing: Mapped[float | None] = mapped_column(Double, nullable=True)
    # Migration 0005 too: the process running the bot and until when (core.repository.bot_leases).
    host: Mapped[str | None] = mapped_column(String(120), nullable=True)
    lease_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    risk: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(14))
    status_reason: Mapped[str] = mapped_column(Text)
    desired_running: Mapped[bool] = mapped_column(Boolean)
    broker_state: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class BotEventRow(Base):
    __tablename__ = "bot_events"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id"), index=True)
    from_state: Mapped[str] = mapped_column(String(14))
    to_state: Mapped[str] = mapped_column(String(14))
    trigger: Mapped[str] = mapped_column(String(14))
    actor: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[int] = mapped_column(BigInteger)


class BotDecisionRow(Base):
    __tablename__ = "bot_decisions"
    __table_args__ = (Index("ix_bot_decisions_bot_time", "bot_id", "open_time"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id"))
    open_time: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[float] = mapped_column(Double)
    price: Mapped[float] = mapped_column(Double)
    reason: Mapped[str] = mapped_column(Text)


class BotTradeRow(Base):
    """A backtest trade's columns, the exit ones NULL while `open`."""

    __tablename__ = "bot_trades"
    __table_args__ = (Index("ix_bot_trades_bot_open", "bot_id", "open"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id"))
    side: Mapped[str] = mapped_column(String(10))
    entry_time: Mapped[int] = mapped_column(BigInteger)
    entry_price: Mapped[float] = mapped_column(Double)
    exit_time: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    exit_price: Mapped[float | None] = mapped_column(Double, nullable=True)
    quantity: Mapped[float] = mapped_column(Double)
    pnl: Mapped[float] = mapped_column(Double)
    fees: Mapped[float] = mapped_column(Double)
    funding: Mapped[float] = mapped_column(Double)
    exit_reason: Mapped[str] = mapped_column(String(40))
    return_pct: Mapped[float] = mapped_column(Double)
    open: Mapped[bool] = mapped_column(Boolean)


class BotCommandRow(Base):
    """A person's command to the bots (NULL bot_id: every bot); `done_at` NULL until applied."""

    __tablename__ = "bot_commands"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    bot_id: Mapped[int | None] = mapped_column(ForeignKey("bots.id"), nullable=True)
    command: Mapped[str] = mapped_column(String(10))
    close: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[int] = mapped_column(BigInteger)
    done_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    result: Mapped[str] = mapped_column(Text)


class JobRow(Base):
    """Long work run as a job (migration 0006): `kind` says what (optimizacion), `request` its
    input as the API took it; progress, best and summary are written by the job's process."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state", "state"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(12))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    done: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    phase: Mapped[str] = mapped_column(String(20))
    best: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean)
    owner: Mapped[str | None] = mapped_column(String(120), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class JobResultRow(Base):
    """One result of a job (an optimisation's combination): its params and metrics."""

    __tablename__ = "job_results"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    ordinal: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    feasible: Mapped[bool] = mapped_column(Boolean)
    daily: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
