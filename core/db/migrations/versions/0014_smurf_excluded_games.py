"""Smurf analyses say how many of a player's stored games were left out of the signals
(other queues than ``thresholds.queues``: Arena, ARAM, Swiftplay...; issue 22 item 2).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("smurf_analyses") as batch:
        batch.add_column(sa.Column("excluded_games", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("smurf_analyses") as batch:
        batch.drop_column("excluded_games")
