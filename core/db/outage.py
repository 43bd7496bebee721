"""Riding out a database outage: the one mechanism every database step of every family shares.

A step (a claim, a request mark, a settlement, a limiter permit, a history row) that meets an
outage (``is_db_outage``: the server unreachable or the connection dropped, never a constraint
violation or a bug) is tried again with exponential backoff and jitter for up to its budget
(``database.outageBudgetSeconds``), logging one line when the outage starts and one when the
database is back. Past the budget the outage's error is raised and the run stops cleanly."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from sqlalchemy.exc import DBAPIError, OperationalError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from core.db.engine import DatabaseUnreachable

T = TypeVar("T")

DEFAULT_BUDGET_S = 60.0
_LOG = logging.getLogger("jobpipes.db")


def is_db_outage(exc: BaseException) -> bool:
    """The database was unreachable or dropped the connection (worth waiting out), as opposed
    to a constraint violation or a bug (not worth a retry)."""
    if isinstance(exc, OperationalError | DatabaseUnreachable | psycopg.OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


async def ride_out(call: Callable[[], Awaitable[T]], *, what: str, budget: float = DEFAULT_BUDGET_S,
                   log: Any = None) -> T:
    """``await call()``, waiting out a database outage for up to ``budget`` seconds."""
    logger = log or _LOG
    down_since: float | None = None
    async for attempt in AsyncRetrying(retry=retry_if_exception(is_db_outage), reraise=True,
                                       stop=stop_after_delay(budget),
                                       wait=wait_exponential_jitter(multiplier=0.5, max=5)):
        with attempt:
            try:
                result = await call()
            except Exception as exc:
                if is_db_outage(exc) and down_since is None:
                    down_since = time.monotonic()
                    logger.warning("database unavailable during %s (%s); waiting up to %g s",
                                   what, str(exc).strip().splitlines()[0][:200], budget)
                raise
    if down_since is not None:
        logger.warning("database back after %.1f s (%s)", time.monotonic() - down_since, what)
    return result


async def ride_out_thread(fn: Callable[..., T], *args: object, what: str,
                          budget: float = DEFAULT_BUDGET_S, log: Any = None) -> T:
    """``fn(*args)`` in a thread (a synchronous session's step), riding out an outage."""
    return await ride_out(lambda: asyncio.to_thread(fn, *args), what=what, budget=budget, log=log)
