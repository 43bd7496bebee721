"""Riot: rank snapshots (riot_rank_snapshots); job configs lose the platform that was never used (issue 12).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# `platform` in these configs never chose which players a job processed (and, since every
# player is checked on their own platform, no longer chooses a host): drop it, so that
# keeping the old seeded value does not start filtering players. Set it again to filter.
_PLATFORM_JOBS = ("TRACKED_PLAYER_UPDATER", "MATCH_FETCHER", "BAN_CHECKER")
_configs = sa.table("job_configurations", sa.column("job_type", sa.String()), sa.column("config_json", _json))


def _set_platform(value: str | None) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_configs.c.job_type, _configs.c.config_json)
                        .where(_configs.c.job_type.in_(_PLATFORM_JOBS))).all()
    for job_type, config in rows:
        config = {k: v for k, v in (config or {}).items() if k != "platform"}
        if value is not None:
            config["platform"] = value
        conn.execute(sa.update(_configs).where(_configs.c.job_type == job_type).values(config_json=config))


def upgrade() -> None:
    _set_platform(None)
    op.create_table(
        "riot_rank_snapshots",
        sa.Column("id", _id, primary_key=True),
        sa.Column("puuid", sa.String(78), nullable=False),
        sa.Column("queue", sa.String(40), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("rank", sa.String(4), nullable=False),
        sa.Column("league_points", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("wins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("losses", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.UniqueConstraint("puuid", "queue", "captured_at", name="uq_riot_rank_snapshots"),
    )


def downgrade() -> None:
    op.drop_table("riot_rank_snapshots")
    _set_platform("na1")  # 0004's required field
