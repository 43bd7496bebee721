"""Job queue near its peers (issue 13): partial indexes for the claim and the per-type count.

Claims read the oldest Pending jobs of one type (``ix_jobs_pending``: only Pending rows, in
claim order) and count the Running jobs of that type (``ix_jobs_running``); neither walks
the finished jobs any more, which are almost all of the table.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_pending", "jobs", ["job_type", "created_at", "id"],
                    postgresql_where=sa.text("status = 'Pending'"), sqlite_where=sa.text("status = 'Pending'"))
    op.create_index("ix_jobs_running", "jobs", ["job_type"],
                    postgresql_where=sa.text("status = 'Running'"), sqlite_where=sa.text("status = 'Running'"))


def downgrade() -> None:
    op.drop_index("ix_jobs_running", "jobs")
    op.drop_index("ix_jobs_pending", "jobs")
