"""Shares of a profile-fetcher run (issue 23): the parts of one run that Prefect task workers
take, each a row its task keeps beating while it fetches, so the run can tell a live share from
a dead one and release exactly what a dead one held.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fetch_shares",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False, server_default="SCHEDULED"),
        sa.Column("task_run_id", sa.String(64)),
        sa.Column("worker", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("beat_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("tally", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
    )
    op.create_index("ix_fetch_shares_run", "fetch_shares", ["run_id"])
    op.create_index("ix_fetch_shares_live", "fetch_shares", ["state", "beat_at"])


def downgrade() -> None:
    op.drop_index("ix_fetch_shares_live", table_name="fetch_shares")
    op.drop_index("ix_fetch_shares_run", table_name="fetch_shares")
    op.drop_table("fetch_shares")
