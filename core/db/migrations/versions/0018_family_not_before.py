"""Work the provider refused for now (429 or 5xx after the retries) waits for a not-before time in
every family, as profile entries do (0016), and a later run takes it without a person:

- ``assets.contracts_not_before``: a coin whose details CoinGecko refused; contract collection
  leaves it out until then;
- ``riot_players.fetch_not_before`` / ``check_not_before``: a player whose matches (match
  fetcher, tracked player updater) or ban check Riot refused;
- ``collector_results.not_before`` with the status ``deferred``: an answer a collector refused;
  the brand's next run past that time asks it (and takes the row over);
- ``jobs.not_before``: a queue job whose handler met a provider's "later" is ``Pending`` again,
  claimed from then on.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

ANSWER_STATUSES = "('completed', 'failed', 'deferred')"
OLD_ANSWER_STATUSES = "('completed', 'failed')"


def _stamp(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.add_column(_stamp("contracts_not_before"))
    with op.batch_alter_table("riot_players") as batch:
        batch.add_column(_stamp("fetch_not_before"))
        batch.add_column(_stamp("check_not_before"))
    with op.batch_alter_table("collector_results") as batch:
        batch.add_column(_stamp("not_before"))
        batch.drop_constraint("ck_collector_results_status", type_="check")
        batch.create_check_constraint("ck_collector_results_status", f"status IN {ANSWER_STATUSES}")
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(_stamp("not_before"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("not_before")
    op.execute("UPDATE collector_results SET status = 'failed' WHERE status = 'deferred'")
    with op.batch_alter_table("collector_results") as batch:
        batch.drop_constraint("ck_collector_results_status", type_="check")
        batch.create_check_constraint("ck_collector_results_status", f"status IN {OLD_ANSWER_STATUSES}")
        batch.drop_column("not_before")
    with op.batch_alter_table("riot_players") as batch:
        batch.drop_column("check_not_before")
        batch.drop_column("fetch_not_before")
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("contracts_not_before")
