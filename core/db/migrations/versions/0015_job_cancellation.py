"""Job-queue jobs can be cancelled (seed 002's cancellation token; issue 22 item 8): a
``Cancelled`` status and ``cancel_requested_at``, set while the job runs and seen by the
worker's next heartbeat.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


STATUSES = "('Pending', 'Running', 'Completed', 'Failed', 'Cancelled')"
OLD_STATUSES = "('Pending', 'Running', 'Completed', 'Failed')"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint("ck_jobs_status", type_="check")
        batch.create_check_constraint("ck_jobs_status", f"status IN {STATUSES}")


def downgrade() -> None:
    op.execute("UPDATE jobs SET status = 'Failed' WHERE status = 'Cancelled'")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("ck_jobs_status", type_="check")
        batch.create_check_constraint("ck_jobs_status", f"status IN {OLD_STATUSES}")
        batch.drop_column("cancel_requested_at")
