"""A permit of the shared rate limiter is one short statement: each key's recent permits move
from a row per permit (``rate_limit_permits``) into a bounded log on the key's own row.

``rate_limit_permits`` is no longer written; it stays while something still names it (the test
fixtures' clean-up, the benchmark's baseline).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("rate_limit_keys", sa.Column("log", postgresql.ARRAY(sa.Float()), nullable=False,
                                                   server_default=sa.text("'{}'::float8[]")))
        # Every permit rewrites its key's row: room on the page keeps those updates HOT.
        op.execute("ALTER TABLE rate_limit_keys SET (fillfactor = 50)")
    else:
        with op.batch_alter_table("rate_limit_keys") as batch:
            batch.add_column(sa.Column("log", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE rate_limit_keys RESET (fillfactor)")
    with op.batch_alter_table("rate_limit_keys") as batch:
        batch.drop_column("log")
