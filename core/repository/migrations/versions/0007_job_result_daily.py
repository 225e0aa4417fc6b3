"""job_results.daily: each combination's equity at the close of every UTC day

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:10:00

An interrupted optimisation resumes with the combinations it had already run; the deflated Sharpe
ratio and PBO of the whole search need their daily equity too, so it is stored with each row.
Rows written before have none (NULL): a resume runs those combinations again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_results") as batch:
        batch.add_column(sa.Column("daily", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_results") as batch:
        batch.drop_column("daily")
