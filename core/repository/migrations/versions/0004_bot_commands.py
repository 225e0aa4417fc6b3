"""bot_commands: what a person asked the running bots (parar, pausar, reanudar, matar)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:45:00

A command is written by the web app and applied by the process that hosts the bots, which
marks it done with its result; a NULL bot_id means every bot (the kill switch).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bot_commands",
        sa.Column("id", _ID, nullable=False),
        sa.Column("bot_id", _ID, sa.ForeignKey("bots.id"), nullable=True),
        sa.Column("command", sa.String(length=10), nullable=False),
        sa.Column("close", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("done_at", sa.BigInteger(), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_bot_commands_done_at", "bot_commands", ["done_at"])


def downgrade() -> None:
    op.drop_index("ix_bot_commands_done_at", table_name="bot_commands")
    op.drop_table("bot_commands")
