"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 07:02:32.195246
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backtest_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("interval", sa.String(length=3), nullable=False),
        sa.Column("strategy", sa.String(length=40), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.BigInteger(), nullable=False),
        sa.Column("capital", sa.Double(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("equity", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("backtest_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_backtest_runs_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "candles",
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("interval", sa.String(length=3), nullable=False),
        sa.Column("open_time", sa.BigInteger(), nullable=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("volume", sa.Double(), nullable=False),
        sa.Column("quote_volume", sa.Double(), nullable=False),
        sa.Column("trades", sa.BigInteger(), nullable=False),
        sa.Column("taker_buy_base", sa.Double(), nullable=False),
        sa.Column("taker_buy_quote", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "interval", "open_time"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "crossovers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("interval", sa.String(length=3), nullable=False),
        sa.Column("strategy", sa.String(length=40), nullable=False),
        sa.Column("open_time", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("fast", sa.Double(), nullable=False),
        sa.Column("slow", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "symbol", "interval", "strategy", "open_time", name="uq_crossovers_key"
        ),
    )
    with op.batch_alter_table("crossovers", schema=None) as batch_op:
        batch_op.create_index("ix_crossovers_time", ["open_time"], unique=False)

    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("price", sa.Double(), nullable=True),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("filled_quantity", sa.Double(), nullable=False),
        sa.Column("client_order_id", sa.String(length=36), nullable=True),
        sa.Column("exchange_order_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_order_id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_symbol_state", ["symbol", "state"], unique=False)

    op.create_table(
        "backtest_trades",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=False),
        sa.Column("entry_time", sa.BigInteger(), nullable=False),
        sa.Column("entry_price", sa.Double(), nullable=False),
        sa.Column("exit_time", sa.BigInteger(), nullable=False),
        sa.Column("exit_price", sa.Double(), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("pnl", sa.Double(), nullable=False),
        sa.Column("fees", sa.Double(), nullable=False),
        sa.Column("funding", sa.Double(), nullable=False),
        sa.Column("exit_reason", sa.String(length=40), nullable=False),
        sa.Column("return_pct", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["backtest_runs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("backtest_trades", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_backtest_trades_run_id"), ["run_id"], unique=False)

    op.create_table(
        "order_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("from_state", sa.String(length=12), nullable=True),
        sa.Column("to_state", sa.String(length=12), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("filled_quantity", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_events_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_events_order_id"))

    op.drop_table("order_events")
    with op.batch_alter_table("backtest_trades", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_backtest_trades_run_id"))

    op.drop_table("backtest_trades")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_symbol_state")

    op.drop_table("orders")
    with op.batch_alter_table("crossovers", schema=None) as batch_op:
        batch_op.drop_index("ix_crossovers_time")

    op.drop_table("crossovers")
    op.drop_table("candles")
    with op.batch_alter_table("backtest_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_backtest_runs_created_at"))

    op.drop_table("backtest_runs")
