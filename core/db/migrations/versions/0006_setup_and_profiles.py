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


def downgrade() -> None:
    _set_defaults(restore=True)
