"""Shared rate limits: the sliding log of every API key, shared by all workers (issue 10).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rate_limit_keys",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("windows", sa.String(200), nullable=False),
        sa.Column("learned", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "rate_limit_permits",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_rate_limit_permits_key_at", "rate_limit_permits", ["key", "at"])


def downgrade() -> None:
    op.drop_table("rate_limit_permits")
    op.drop_table("rate_limit_keys")
