"""Application job queue (seed 002): jobs (also the outbox), scheduled_jobs, registrations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("job_type", sa.String(200), nullable=False),
        sa.Column("job_data", _json, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="Pending"),
        _ts("created_at", nullable=False),
        _ts("started_at"),
        _ts("completed_at"),
        sa.Column("error_message", sa.Text()),
        sa.Column("progress_message", sa.Text()),
        sa.Column("progress_percent", sa.Integer()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("claimed_by", sa.String(200)),
        _ts("heartbeat_at"),
        sa.Column("flow_run_id", sa.String(64)),
        sa.Column("task_run_id", sa.String(64)),
        sa.Column("scheduled_job_id", sa.Uuid()),
        sa.CheckConstraint("status IN ('Pending', 'Running', 'Completed', 'Failed')",
                           name="ck_jobs_status"),
        sa.CheckConstraint("progress_percent IS NULL OR progress_percent BETWEEN 0 AND 100",
                           name="ck_jobs_progress_percent"),
    )
    op.create_index("ix_jobs_status_created", "jobs", ["status", "created_at"])
    op.create_table(
        "scheduled_jobs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("job_type", sa.String(200), nullable=False),
        sa.Column("job_data", _json, nullable=False),
        sa.Column("cron_expression", sa.String(100), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        _ts("next_run_time", nullable=False),
        _ts("last_run_time"),
        sa.Column("is_enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
    )
    op.create_table(
        "registrations",
        sa.Column("id", _id, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        _ts("created_at", nullable=False),
    )
    op.create_index("ix_registrations_created", "registrations", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_registrations_created", "registrations")
    op.drop_table("registrations")
    op.drop_table("scheduled_jobs")
    op.drop_index("ix_jobs_status_created", "jobs")
    op.drop_table("jobs")
