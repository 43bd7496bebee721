"""A profile entry the provider refused for now (429 or 5xx after the retries) goes back to
PENDING with a not-before time (issue 19 item 5): claims skip it until then.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("profile_entries") as batch:
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profile_entries") as batch:
        batch.drop_column("not_before")
