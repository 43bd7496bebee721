"""What every task needs: the settings, a migrated database, and DB-error retry rules."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import DBAPIError, OperationalError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

import core.models  # noqa: F401 - every table registered: foreign keys cross families
from core.db.engine import DatabaseUnreachable
from core.db.migrate import ensure_schema
from core.settings import Settings, get_settings

T = TypeVar("T")

# Database tasks retry on connection-level failures only; a constraint violation or a bug
# fails at once instead of being repeated.
DB_RETRIES = 3
DB_RETRY_DELAYS: list[float] = [1, 2, 4]


def is_db_outage(exc: BaseException) -> bool:
    """The database was unreachable or dropped the connection (worth a retry), as opposed to
    a constraint violation or a bug (not worth one)."""
    if isinstance(exc, OperationalError | DatabaseUnreachable | psycopg.OperationalError):
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


async def ride_out_db(fn: Callable[..., T], *args: object, what: str, budget: float | None = None) -> T:
    """``fn(*args)`` off the event loop, waiting out a database outage (``is_db_outage``) for
    up to ``database.outageBudgetSeconds`` with exponential backoff and jitter: the one
    mechanism every run's database steps share. One line when the outage starts, one when the
    database is back; past the budget the outage's error is raised (the run stops cleanly)."""
    return await ride_out(lambda: asyncio.to_thread(fn, *args), what=what, budget=budget)


async def ride_out(call: Callable[[], Awaitable[T]], *, what: str, budget: float | None = None) -> T:
    """``ride_out_db`` for a coroutine (a step on an async connection of its own)."""
    limit = get_settings().database.outage_budget_seconds if budget is None else budget
    down_since: float | None = None
    async for attempt in AsyncRetrying(retry=retry_if_exception(is_db_outage), reraise=True,
                                       stop=stop_after_delay(limit),
                                       wait=wait_exponential_jitter(multiplier=0.5, max=5)):
        with attempt:
            try:
                result = await call()
            except Exception as exc:
                if is_db_outage(exc) and down_since is None:
                    down_since = time.monotonic()
                    run_logger().warning("database unavailable during %s (%s); waiting up to %g s",
                                   what, str(exc).strip().splitlines()[0][:200], limit)
                raise
    if down_since is not None:
        run_logger().warning("database back after %.1f s (%s)", time.monotonic() - down_since, what)
    return result


def run_logger() -> Any:
    """The run's logger inside a flow or task run, else this module's."""
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - MissingContextError: outside a run
        return logging.getLogger("jobpipes.db")


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
