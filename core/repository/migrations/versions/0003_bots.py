"""bots: their configuration and state, transitions, decisions and trades; orders know their bot

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 15:30:00

Existing orders stay what they were: bot_id and purpose are NULL (a manual order).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _bot_id() -> sa.Column:
    return sa.Column("bot_id", _ID, sa.ForeignKey("bots.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "bots",
        sa.Column("id", _ID, nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("strategy", sa.String(length=40), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("interval", sa.String(length=3), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("capital", sa.Double(), nullable=False),
        sa.Column("taker_fee", sa.Double(), nullable=False),
        sa.Column("maker_fee", sa.Double(), nullable=True),
        sa.Column("slippage_bps", sa.Double(), nullable=False),
        sa.Column("leverage", sa.Double(), nullable=False),
        sa.Column("size", sa.Double(), nullable=False),
        sa.Column("stop_loss", sa.String(length=20), nullable=True),
        sa.Column("take_profit", sa.String(length=20), nullable=True),
        sa.Column("funding_rate", sa.Double(), nullable=True),
        sa.Column("risk", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=14), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("desired_running", sa.Boolean(), nullable=False),
        sa.Column("broker_state", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "bot_events",
        sa.Column("id", _ID, nullable=False),
        _bot_id(),
        sa.Column("from_state", sa.String(length=14), nullable=False),
        sa.Column("to_state", sa.String(length=14), nullable=False),
        sa.Column("trigger", sa.String(length=14), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_bot_events_bot_id", "bot_events", ["bot_id"])
    op.create_table(
        "bot_decisions",
        sa.Column("id", _ID, nullable=False),
        _bot_id(),
        sa.Column("open_time", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Double(), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_bot_decisions_bot_time", "bot_decisions", ["bot_id", "open_time"])
    op.create_table(
        "bot_trades",
        sa.Column("id", _ID, nullable=False),
        _bot_id(),
        sa.Column("side", sa.String(length=10), nullable=False),
        sa.Column("entry_time", sa.BigInteger(), nullable=False),
        sa.Column("entry_price", sa.Double(), nullable=False),
        sa.Column("exit_time", sa.BigInteger(), nullable=True),
        sa.Column("exit_price", sa.Double(), nullable=True),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("pnl", sa.Double(), nullable=False),
        sa.Column("fees", sa.Double(), nullable=False),
        sa.Column("funding", sa.Double(), nullable=False),
        sa.Column("exit_reason", sa.String(length=40), nullable=False),
        sa.Column("return_pct", sa.Double(), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_bot_trades_bot_open", "bot_trades", ["bot_id", "open"])
    # Plain ADD COLUMN with an inline REFERENCES (no table rebuild), so SQLite keeps
    # order_events' foreign keys intact and still enforces this one.
    op.add_column(
        "orders",
        sa.Column("bot_id", _ID, sa.ForeignKey("bots.id"), nullable=True),
        inline_references=True,
    )
    op.add_column("orders", sa.Column("purpose", sa.String(length=20), nullable=True))
    op.create_index("ix_orders_bot_id", "orders", ["bot_id"])


def downgrade() -> None:
    op.drop_index("ix_orders_bot_id", table_name="orders")
    op.drop_column("orders", "purpose")
    op.drop_column("orders", "bot_id")  # its constraint goes with it on both databases
    op.drop_index("ix_bot_trades_bot_open", table_name="bot_trades")
    op.drop_table("bot_trades")
    op.drop_index("ix_bot_decisions_bot_time", table_name="bot_decisions")
    op.drop_table("bot_decisions")
    op.drop_index("ix_bot_events_bot_id", table_name="bot_events")
    op.drop_table("bot_events")
    op.drop_table("bots")
