"""jobs and job_results: long work (optimisations now, long backtests later) run as a job with
an id, a state, progress, a cancel flag and its results, written as the job goes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 20:45:00

A job is stored `pendiente` by the web app and run by a separate process (`owner`, host:pid),
which writes its progress and result rows and finally its state and summary. New tables only:
nothing stored before changes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("done", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("best", sa.JSON(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_table(
        "job_results",
        sa.Column("job_id", _ID, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("ordinal", sa.BigInteger(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("feasible", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "ordinal"),
    )


def downgrade() -> None:
    op.drop_table("job_results")
    op.drop_index("ix_jobs_state", table_name="jobs")
    op.drop_table("jobs")
