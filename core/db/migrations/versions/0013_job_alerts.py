"""Alarms when a schedule does not fire (issue 17): one row per alarm of a job, open until
its condition clears, e-mailed once.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("job_id", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ux_job_alerts_open", "job_alerts", ["job_id", "kind"], unique=True,
                    postgresql_where=sa.text("resolved_at IS NULL"), sqlite_where=sa.text("resolved_at IS NULL"))
    op.create_index("ix_job_alerts_opened", "job_alerts", ["opened_at"])


def downgrade() -> None:
    op.drop_index("ix_job_alerts_opened", "job_alerts")
    op.drop_index("ux_job_alerts_open", "job_alerts")
    op.drop_table("job_alerts")
