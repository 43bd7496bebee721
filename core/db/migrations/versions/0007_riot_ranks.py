"""Riot: rank snapshots; job configs lose the platform that was never used (issue 12).

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


def downgrade() -> None:
    _set_platform("na1")  # 0004's required field
