"""Profile entries remember that their request was sent (``requested_at``), so the release of
a run that died mid-flight counts exactly the calls the provider billed (issue 10).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("profile_entries") as batch:
        batch.add_column(sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profile_entries") as batch:
        batch.drop_column("requested_at")
