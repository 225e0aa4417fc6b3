"""bots grow an optional trailing stop — its callback fraction (0.01 trails 1 % behind the best
price since the entry) — and a lease: the process running the bot (`host`) and until when

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 16:00:00

Existing bots keep trading as they did: their trailing is NULL (no trailing stop), and nobody
holds their lease.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild), so SQLite keeps the foreign keys into bots intact.
    op.add_column("bots", sa.Column("trailing", sa.Double(), nullable=True))
    op.add_column("bots", sa.Column("host", sa.String(120), nullable=True))
    op.add_column("bots", sa.Column("lease_until", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    for column in ("lease_until", "host", "trailing"):
        op.drop_column("bots", column)
