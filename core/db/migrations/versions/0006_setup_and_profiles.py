"""Server-side defaults for outside writers; quota period that follows the reset schedule (issue 12).

Other systems fill some tables with plain SQL (``INSERT INTO profile_entries (urn) VALUES
(...)``): every NOT NULL column of those tables that such a writer cannot be expected to
know gets a database-side default (timestamps CURRENT_TIMESTAMP, ids a random UUID, JSON
payloads empty). Statuses, flags and counters already had theirs since 0001-0005. The
models declare the same defaults (``core.db.types.SERVER_NOW`` and friends).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from core.db.types import EMPTY_JSON_ARRAY, EMPTY_JSON_OBJECT, SERVER_NOW, SERVER_UUID

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_json = sa.JSON()

# table -> column -> (type, server default) added by this revision
SERVER_DEFAULTS: dict[str, dict[str, tuple[sa.types.TypeEngine[Any], sa.TextClause | sa.sql.ColumnElement[Any]]]] = {
    "profile_entries": {"created_at": (_TS, SERVER_NOW), "updated_at": (_TS, SERVER_NOW)},
    "api_quota_ledger": {"created_at": (_TS, SERVER_NOW), "updated_at": (_TS, SERVER_NOW)},
    "cron_job_configs": {"created_at": (_TS, SERVER_NOW), "updated_at": (_TS, SERVER_NOW)},
    "jobs": {"id": (sa.Uuid(), SERVER_UUID), "job_data": (_json, EMPTY_JSON_OBJECT),
             "created_at": (_TS, SERVER_NOW)},
    "registrations": {"created_at": (_TS, SERVER_NOW)},
    "scheduled_jobs": {"id": (sa.Uuid(), SERVER_UUID), "job_data": (_json, EMPTY_JSON_OBJECT),
                       "created_at": (_TS, SERVER_NOW), "updated_at": (_TS, SERVER_NOW)},
    "riot_players": {"discovered_at": (_TS, SERVER_NOW), "updated_at": (_TS, SERVER_NOW)},
    "job_configurations": {"created_at": (_TS, SERVER_NOW), "updated_at": (_TS, SERVER_NOW)},
    "brands": {"id": (sa.Uuid(), SERVER_UUID), "competitors": (_json, EMPTY_JSON_ARRAY),
               "created_at": (_TS, SERVER_NOW)},
    "brand_topics": {"id": (sa.Uuid(), SERVER_UUID), "created_at": (_TS, SERVER_NOW)},
    "generated_queries": {"id": (sa.Uuid(), SERVER_UUID), "created_at": (_TS, SERVER_NOW)},
    "assets": {"created_at": (_TS, SERVER_NOW), "updated_at": (_TS, SERVER_NOW)},
}


def _set_defaults(restore: bool) -> None:
    # On SQLite, batch mode rebuilds each table (env.py turns foreign keys off meanwhile, so
    # that dropping the old table does not cascade); on PostgreSQL it is ALTER ... SET DEFAULT.
    for table, columns in SERVER_DEFAULTS.items():
        with op.batch_alter_table(table) as batch:
            for column, (type_, default) in columns.items():
                batch.alter_column(column, existing_type=type_, existing_nullable=False,
                                   server_default=None if restore else default)


def upgrade() -> None:
    _set_defaults(restore=False)
    # The quota period follows cron.quotaResetSchedule: a period is named by the reset's fire
    # time in UTC ("2026-01-15T00:00Z") instead of a calendar month ("2026-01"). Old month
    # rows become the month's first day at 00:00 UTC, the period the default schedule
    # ("0 0 1 * *", UTC) gives, so a running month keeps its usage.
    with op.batch_alter_table("api_quota_ledger") as batch:
        batch.alter_column("period", existing_type=sa.String(7), type_=sa.String(32), existing_nullable=False)
    op.execute("UPDATE api_quota_ledger SET period = period || '-01T00:00Z' WHERE length(period) = 7")


def downgrade() -> None:
    op.execute("DELETE FROM api_quota_ledger WHERE period NOT LIKE '%-01T00:00Z'")
    op.execute("UPDATE api_quota_ledger SET period = substr(period, 1, 7)")
    with op.batch_alter_table("api_quota_ledger") as batch:
        batch.alter_column("period", existing_type=sa.String(32), type_=sa.String(7), existing_nullable=False)
    _set_defaults(restore=True)
