"""orders grow what real orders have: conditional and trailing types, flags, trigger prices

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 12:00:00

Existing rows become valid orders through the server defaults: their type (limite, mercado) is
unchanged, reduce_only and close_position are false, time_in_force is GTC, the rest NULL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_NEW_COLUMNS = (
    "reduce_only",
    "close_position",
    "trigger_price",
    "callback_rate",
    "activation_price",
    "time_in_force",
    "good_till_date",
    "algo_id",
)


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild), so SQLite keeps order_events' foreign keys intact.
    op.add_column(
        "orders", sa.Column("reduce_only", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column(
        "orders",
        sa.Column("close_position", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("orders", sa.Column("trigger_price", sa.Double(), nullable=True))
    op.add_column("orders", sa.Column("callback_rate", sa.Double(), nullable=True))
    op.add_column("orders", sa.Column("activation_price", sa.Double(), nullable=True))
    op.add_column(
        "orders",
        sa.Column(
            "time_in_force", sa.String(length=3), server_default=sa.text("'GTC'"), nullable=False
        ),
    )
    op.add_column("orders", sa.Column("good_till_date", sa.BigInteger(), nullable=True))
    op.add_column("orders", sa.Column("algo_id", sa.String(length=36), nullable=True))
    # The new type names are longer than 10; SQLite does not enforce VARCHAR lengths.
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "orders", "type", type_=sa.String(length=30), existing_type=sa.String(length=10)
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "orders", "type", type_=sa.String(length=10), existing_type=sa.String(length=30)
        )
    for name in reversed(_NEW_COLUMNS):
        op.drop_column("orders", name)
