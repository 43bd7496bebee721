"""Operations surface (issue 11): the config tables become the source of every job's schedule.

``job_configurations`` gets a ``timezone`` (its schedule's IANA zone; the seed-001 rows are
UTC). The crypto jobs' rows (schedule, timezone, active, ``{"limit": N}``) are inserted on
first deploy from settings (``deployments.control.configs.ensure_job_rows``), not here, so that
the seed's ``*_SCHEDULE``/``*_ENABLED``/``*_LIMIT`` variables give the first values.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_configurations",
                  sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"))


def downgrade() -> None:
    with op.batch_alter_table("job_configurations") as batch:
        batch.drop_column("timezone")
