"""The answers of a brand run: which (query, collector) pairs it asks, and their group commit.

A pair answered ``deferred`` (the collector said later: 429 after the retries) stays the brand's
open item: runs before its ``not_before`` leave the pair out, and the first run past it takes the
row over (it becomes this run's) and asks the pair again, so the pair is asked once, not once
per run meanwhile, and no person is needed."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from core.brands import repo
from core.brands.models import AnswerStatus
from core.db import session_scope
from core.db.types import utcnow
from tasks._common import ride_out_db


@dataclass(frozen=True)
class Plan:
    """What a run asks: ``ask`` (query id, collector) pairs; ``done`` those it answered already
    (a retried attempt), ``waiting`` those whose deferral has not run out."""

    ask: list[tuple[str, str]]
    done: int
    waiting: int


async def plan_pairs(url: str, run_id: uuid.UUID, brand_id: uuid.UUID, pairs: list[tuple[str, str]],
                     lease_seconds: float) -> Plan:
    """The pairs this run asks now, having taken over the brand's due deferred answers among them
    (held for ``lease_seconds``, so a run of the brand going on at the same time leaves them)."""
    return await ride_out_db(_plan, url, run_id, brand_id, pairs, lease_seconds, what="the answers to collect")


def _plan(url: str, run_id: uuid.UUID, brand_id: uuid.UUID, pairs: list[tuple[str, str]],
          lease_seconds: float) -> Plan:
    wanted = set(pairs)
    now = utcnow()
    with session_scope(url) as session:
        mine = {(str(q), c): status for q, c, status in repo.run_answers(session, run_id)}
        done = {p for p, status in mine.items() if status == AnswerStatus.COMPLETED}
        waiting: set[tuple[str, str]] = set()
        decided: set[tuple[str, str]] = set()
        for row in repo.deferred_answers(session, brand_id):  # the longest waiting first
            pair = (str(row.query_id), row.collector)
            if pair not in wanted or pair in done or pair in decided:
                continue
            decided.add(pair)
            if row.not_before is not None and row.not_before > now:
                waiting.add(pair)  # later stays later
            elif row.job_run_id == run_id or pair in mine:
                continue  # this run asks the pair again anyway: its own row is replaced in place
            elif not repo.take_deferred(session, row.id, run_id, now=now,
                                        lease_until=now + timedelta(seconds=lease_seconds)):
                waiting.add(pair)  # a run of the brand going on at the same time took it
    ask = [p for p in pairs if p not in done and p not in waiting]
    return Plan(ask, len(done & wanted), len(waiting))


class AnswerWriter:
    """Commits the answers handed to it, as soon as it can, riding out a database outage.

    Each transaction holds every answer that arrived while the previous one committed: one
    answer when they come one at a time, a group when several requests end together. No
    answer waits for a request or a timer, so a crash still loses only the answers in flight
    or committing, for a fraction of the transactions of a commit per answer. ``write``
    returns once the answer is committed and raises what its transaction raised (an outage
    past ``database.outageBudgetSeconds`` included). An answer handed over is committed even if
    its caller is cancelled meanwhile; ``close`` waits for the last one.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._pending: list[dict[str, Any]] = []
        self._waiter: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0

    async def write(self, row: dict[str, Any]) -> None:
        self._pending.append(row)
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        waiter = self._waiter
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        await asyncio.shield(waiter)  # a cancelled caller must not cancel its group's commit

    async def _flush(self) -> None:
        while self._pending:
            rows, waiter = self._pending, self._waiter
            self._pending, self._waiter = [], None
            assert waiter is not None
            try:
                await ride_out_db(self._save, rows, what="the answers' write")
            except Exception as exc:  # noqa: BLE001 - handed to every answer of the transaction
                waiter.set_exception(exc)
                waiter.exception()  # retrieved here too: a group whose callers are gone must not warn
            else:
                self.transactions += 1
                waiter.set_result(None)

    def _save(self, rows: list[dict[str, Any]]) -> None:
        with session_scope(self._url) as session:
            repo.save_answers(session, rows)

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
