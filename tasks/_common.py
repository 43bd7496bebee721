"""What every task needs: the settings, a migrated database, and DB-error retry rules."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import DBAPIError, OperationalError

import core.models  # noqa: F401 - every table registered: foreign keys cross families
from core.db.migrate import ensure_schema
from core.settings import Settings, get_settings

# Database tasks retry on connection-level failures only; a constraint violation or a bug
# fails at once instead of being repeated.
DB_RETRIES = 3
DB_RETRY_DELAYS: list[float] = [1, 2, 4]


def retry_on_db_outage(task: Any, task_run: Any, state: Any) -> bool:
    """Retry condition: the database was unreachable or dropped the connection."""
    try:
        # _sync: inside an async task the dispatcher would otherwise hand back a coroutine.
        state.result(_sync=True)
    except OperationalError:
        return True
    except DBAPIError as exc:
        return bool(exc.connection_invalidated)
    except Exception:
        return False
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
