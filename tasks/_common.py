"""What every task needs: the settings, a migrated database, and DB-error retry rules."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import DBAPIError, OperationalError

import core.models  # noqa: F401 - every table registered: foreign keys cross families
from core.db.engine import DatabaseUnreachable
from core.db.migrate import ensure_schema
from core.settings import Settings, get_settings

# Database tasks retry on connection-level failures only; a constraint violation or a bug
# fails at once instead of being repeated.
DB_RETRIES = 3
DB_RETRY_DELAYS: list[float] = [1, 2, 4]


def is_db_outage(exc: BaseException) -> bool:
    """The database was unreachable or dropped the connection (worth a retry), as opposed to
    a constraint violation or a bug (not worth one)."""
    if isinstance(exc, OperationalError | DatabaseUnreachable):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def retry_on_db_outage(task: Any, task_run: Any, state: Any) -> bool:
    """Retry condition of database tasks: the failure was an outage (``is_db_outage``)."""
    try:
        # _sync: inside an async task the dispatcher would otherwise hand back a coroutine.
        state.result(_sync=True)
    except Exception as exc:  # noqa: BLE001 - classified below
        return is_db_outage(exc)
    return False


def db_url(settings: Settings | None = None) -> str:
    """The app database URL, migrated to head on first use in this process."""
    url = (settings or get_settings()).database_url
    ensure_schema(url)
    return url


# The decorator of every database task: no result caching (inputs are live ids), retries
# only on outages.
db_task = task(
    cache_policy=NO_CACHE,
    retries=DB_RETRIES,
    retry_delay_seconds=DB_RETRY_DELAYS,
    retry_condition_fn=retry_on_db_outage,
)
