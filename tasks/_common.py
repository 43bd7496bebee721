"""What every task needs: the settings, a migrated database, and DB-error retry rules."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

import core.models  # noqa: F401 - every table registered: foreign keys cross families
from core.db import outage
from core.db.migrate import ensure_schema
from core.db.outage import is_db_outage
from core.settings import Settings, get_settings

T = TypeVar("T")

# Database tasks retry on connection-level failures only; a constraint violation or a bug
# fails at once instead of being repeated.
DB_RETRIES = 3
DB_RETRY_DELAYS: list[float] = [1, 2, 4]


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
    up to ``database.outageBudgetSeconds``: ``core.db.outage``, the one mechanism every run's
    database steps share, logging to the run's log."""
    return await ride_out(lambda: asyncio.to_thread(fn, *args), what=what, budget=budget)


async def ride_out(call: Callable[[], Awaitable[T]], *, what: str, budget: float | None = None) -> T:
    """``ride_out_db`` for a coroutine (a step on an async connection of its own)."""
    limit = get_settings().database.outage_budget_seconds if budget is None else budget
    return await outage.ride_out(call, what=what, budget=limit, log=run_logger())


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


def shared_limits(settings: Settings | None = None) -> dict[str, Any]:
    """A provider client's shared rate-limit budget: in the app database, riding out its
    outages for ``database.outageBudgetSeconds`` (``limits_url=``, ``outage_budget=``)."""
    settings = settings or get_settings()
    return {"limits_url": db_url(settings), "outage_budget": settings.database.outage_budget_seconds}


# The decorator of every database task: no result caching (inputs are live ids), retries
# only on outages.
db_task = task(
    cache_policy=NO_CACHE,
    retries=DB_RETRIES,
    retry_delay_seconds=DB_RETRY_DELAYS,
    retry_condition_fn=retry_on_db_outage,
)
