"""Profile fetcher: job configs, quota ledger, entries, profiles, run history.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "cron_job_configs",
        sa.Column("id", _id, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("job_type", sa.String(50), nullable=False),
        sa.Column("schedule", sa.String(100), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("batch_size", sa.Integer(), nullable=False, server_default="10"),
        sa.Column("respect_quota", sa.Boolean(), nullable=False, server_default=sa.true()),
        _ts("last_run", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("batch_size > 0", name="ck_cron_job_configs_batch_size"),
    )
    op.create_table(
        "api_quota_ledger",
        sa.Column("id", _id, primary_key=True),
        sa.Column("provider", sa.String(50), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("monthly_limit", sa.Integer(), nullable=False),
        sa.Column("calls_used", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("reserved", sa.Integer(), nullable=False, server_default="0"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("provider", "period", name="uq_api_quota_provider_period"),
        sa.CheckConstraint("reserved >= 0", name="ck_api_quota_reserved"),
    )
    op.create_table(
        "profile_entries",
        sa.Column("id", _id, primary_key=True),
        sa.Column("urn", sa.String(200), nullable=False, unique=True),
        sa.Column("status", sa.String(20), nullable=False, server_default="PENDING"),
        sa.Column("error_message", sa.Text()),
        sa.Column("fetch_count", sa.Integer(), nullable=False, server_default="0"),
        _ts("last_fetched_at", nullable=True),
        sa.Column("claimed_by", sa.String(64)),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "status IN ('PENDING', 'FETCHING', 'COMPLETED', 'FAILED')",
            name="ck_profile_entries_status",
        ),
    )
    op.create_index(
        "ix_profile_entries_status_created", "profile_entries", ["status", "created_at", "id"]
    )
    op.create_table(
        "profiles",
        sa.Column("id", _id, primary_key=True),
        sa.Column("urn", sa.String(200), nullable=False, unique=True),
        sa.Column("username", sa.String(200)),
        sa.Column("first_name", sa.String(200)),
        sa.Column("last_name", sa.String(200)),
        sa.Column("headline", sa.Text()),
        sa.Column("geo", _json),
        sa.Column("educations", _json),
        sa.Column("full_positions", _json),
        sa.Column("skills", _json),
        sa.Column("raw_s3_key", sa.String(500), nullable=False),
        sa.Column("cleaned_s3_key", sa.String(500), nullable=False),
        _ts("fetched_at"),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_table(
        "job_execution_history",
        sa.Column("id", _id, primary_key=True),
        sa.Column("job_name", sa.String(100), nullable=False),
        sa.Column("job_type", sa.String(50), nullable=False),
        sa.Column("flow_run_id", sa.String(64)),
        sa.Column("status", sa.String(20), nullable=False),
        _ts("started_at"),
        _ts("finished_at"),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("total_processed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("successful_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failed_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("api_calls_made", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("quota_remaining", sa.Integer()),
        sa.Column("error_summary", sa.Text()),
        sa.Column("metrics", _json, nullable=False),
        sa.Column(
            "config_id",
            _id,
            sa.ForeignKey("cron_job_configs.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_job_execution_history_job_started", "job_execution_history", ["job_name", "started_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_job_execution_history_job_started", "job_execution_history")
    op.drop_table("job_execution_history")
    op.drop_table("profiles")
    op.drop_index("ix_profile_entries_status_created", "profile_entries")
    op.drop_table("profile_entries")
    op.drop_table("api_quota_ledger")
    op.drop_table("cron_job_configs")
