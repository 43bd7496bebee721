"""What a Prefect or SMTP outage left out of a finished run (issue 19 item 2): the history row
says whether its artifact and its e-mail are still to be made, and a later run of any job (or
the ``release-crashed-run`` flow) fills them in.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_execution_history") as batch:
        batch.add_column(sa.Column("artifact_pending", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("email_pending", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_history_followups", "job_execution_history", ["id"],
                    postgresql_where=sa.text("artifact_pending OR email_pending"),
                    sqlite_where=sa.text("artifact_pending OR email_pending"))


def downgrade() -> None:
    op.drop_index("ix_history_followups", table_name="job_execution_history")
    with op.batch_alter_table("job_execution_history") as batch:
        batch.drop_column("email_pending")
        batch.drop_column("artifact_pending")
