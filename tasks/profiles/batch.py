"""One claimed batch: fetch -> store raw -> clean -> store cleaned -> upsert -> finish entries.

Fetches run with bounded concurrency (``rapidapi.concurrency``, shared by the batches in
flight of a fetch stage, ``tasks.profiles.stage``). Once a request holds its permit and
before it leaves, its entry is marked "requested" durably; marks of requests leaving together are committed together
(``RequestMarks``). The database is written once per batch, in a thread, in one transaction
with the batch's quota settlement; if that fails, entry by entry, so that one bad row fails
only its entry. An entry that could not be written at all stays FETCHING and is recovered later."""


from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from prefect import get_run_logger

from core.db import session_scope
from core.db.engine import get_engine, libpq_url
from core.db.types import utcnow
from core.db.upsert import UpsertResult, upsert_rows
from core.errors import (
    JobError,
    ProviderError,
    QuotaExhaustedError,
)
from core.profiles import entries, quota
from core.profiles.cleaning import clean_profile, object_keys, profile_row, validate_urn
from core.profiles.client import RapidApiClient
from core.profiles.entries import ClaimedEntry, EntryOutcome
from core.profiles.models import Profile
from core.runs.deferral import is_later, not_before
from core.runs.errors import ItemError, item_error
from core.settings import get_settings
from core.storage import ObjectStore, dump_json
from tasks._common import is_db_outage, ride_out, ride_out_db
from tasks.profiles.ledger import QuotaGrant, settle_grant
from tasks.profiles.release import discard_objects, release_batch


@dataclass
class BatchReport:
    """What a batch did; ``billable_calls`` are the HTTP 200 answers the provider counts."""

    succeeded: int = 0
    created: int = 0
    updated: int = 0
    errors: list[ItemError] = field(default_factory=list)
    api_calls: int = 0
    billable_calls: int = 0
    released: int = 0
    deferred: int = 0  # back to PENDING with a not-before time: the provider said later
    fatal_error: str | None = None
    provider_quota_exhausted: bool = False
    provider_remaining: int | None = None
    quota_remaining: int | None = None  # the ledger after settling the batch's grant
    sink_down: str | None = None  # our storage failed too often in a row: the stage stops claiming
    billed_by_entry: dict[int, int] = field(default_factory=dict)  # the answers seen, per entry
    released_after_failure: dict[str, int] | None = None  # what the batch gave back when it failed


class _NotSent(Exception):
    """A request the batch stopped before it went on the wire (nothing billed)."""


class UnsettledBatch(Exception):
    """A batch wrote its entries but could not settle its reservation: ``used`` calls of
    ``grant`` (the stage settles them once more, exactly)."""

    def __init__(self, grant: QuotaGrant, used: int, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.grant, self.used = grant, used


@dataclass
class _Fetched:
    entry: ClaimedEntry
    row: dict[str, Any] | None = None
    keys: tuple[str, str] | None = None
    error: str | None = None
    skipped: bool = False
    deferred: datetime | None = None  # with ``error``: the provider said later; not before this


class RequestMarks:
    """Group commit of "request sent" marks: a request waits until its entry's mark is
    committed, and the marks of all requests that ask while a commit is running go out
    together in the next one, so the mark costs one statement per group, not a transaction
    per request, and a request never leaves unmarked.

    On PostgreSQL the marks use an async psycopg connection of their own, in autocommit: one
    statement per group, sent from the event loop (no thread hop), committed with
    ``synchronous_commit = off``: durable against this process dying (what the mark is for)
    without waiting for the WAL flush; only a crash of the database server itself could lose
    a mark. On SQLite each group is a short transaction of the pool's."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._postgres = get_engine(url).dialect.name == "postgresql"
        self._pg: psycopg.AsyncConnection[Any] | None = None  # PostgreSQL only
        self._pending: list[int] = []
        self._waiter: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None

    async def mark(self, entry_id: int) -> None:
        self._pending.append(entry_id)
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        waiter = self._waiter
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        await asyncio.shield(waiter)  # a cancelled request must not cancel its group's commit

    async def _flush(self) -> None:
        while self._pending:
            ids, waiter = self._pending, self._waiter
            self._pending, self._waiter = [], None
            assert waiter is not None
            try:
                # A database outage is waited out (the requests wait unsent, so nothing is billed).
                await ride_out(functools.partial(self._commit, ids), what="the request marks")
            except Exception as exc:  # noqa: BLE001 - each request of the group gets the error
                waiter.set_exception(exc)
                waiter.exception()  # retrieved here too: a group whose requests are gone must not warn
            else:
                waiter.set_result(None)

    async def _commit(self, ids: list[int]) -> None:
        if self._postgres and self._pg is None:
            self._pg = await psycopg.AsyncConnection.connect(libpq_url(self._url), autocommit=True)
            await self._pg.execute("SET synchronous_commit = off")
        try:
            if self._pg is not None:  # on the event loop: no thread hop per group
                await self._pg.execute(entries.mark_requested_sql(), {"at": utcnow(), "ids": ids})
            else:
                await asyncio.to_thread(self._commit_sync, ids)
        except Exception:
            await self._discard()  # a broken connection is not reused: the next group opens another
            raise

    def _commit_sync(self, ids: list[int]) -> None:
        # SQLite: a transaction per group, its connection back to the pool at once (SQLite
        # has one writer, and its pool may be one connection: holding it would block the rest).
        with session_scope(self._url) as session:
            entries.mark_requested(session, ids)

    async def _discard(self) -> None:
        pg, self._pg = self._pg, None
        if pg is not None:
            await pg.close()

    async def close(self) -> None:
        """Wait for the last group, then close the connection."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        pg, self._pg = self._pg, None
        if pg is not None:
            await pg.close()


@dataclass
class SinkWatch:
    """Failures of our own storage, in a row: past ``limit`` the sink counts as down, and the
    stage stops spending quota on answers it cannot keep.

    A success ends the streak only if its store began after the last failure: a write that
    was already under way (on a connection opened before the outage) says nothing about the
    sink now, and letting it reset the count would let an outage cost more answers."""

    limit: int = 3
    streak: int = 0
    failures: int = 0  # all so far: a store's ticket
    reason: str | None = None  # the error that took it down

    @property
    def down(self) -> bool:
        return self.reason is not None

    def ticket(self) -> int:
        """Taken as a store begins; handed back to ``ok``."""
        return self.failures

    def failed(self, error: str) -> None:
        self.failures += 1
        self.streak += 1
        if self.streak >= self.limit and self.reason is None:
            self.reason = error

    def ok(self, ticket: int) -> None:
        if ticket == self.failures:  # no failure since this store began
            self.streak = 0


@dataclass
class BatchContext:
    """What a fetch stage's batches share: one client, one store, one gate on the requests
    in flight, one group commit of request marks, and the watch on the store."""

    url: str
    client: RapidApiClient
    store: ObjectStore
    gate: asyncio.Semaphore
    marks: RequestMarks
    sink: SinkWatch = field(default_factory=SinkWatch)


async def _fetch_one(entry: ClaimedEntry, ctx: BatchContext, stop: asyncio.Event, report: BatchReport) -> _Fetched:
    async with ctx.gate:
        if stop.is_set() or ctx.sink.down:  # not sent: nothing billed for an answer we could not keep
            return _Fetched(entry, skipped=True)
        try:
            validate_urn(entry.urn)
            # Durable before the request leaves, and only once it holds its permit (issue 23):
            # if this process dies before the answer is stored, the release of the run counts
            # the call the provider billed, and never one still waiting for its permit.
            marked = False

            async def mark() -> None:
                nonlocal marked
                if stop.is_set():  # the batch stopped while this one waited for its permit
                    raise _NotSent
                if not marked:  # one mark per entry; a retry's call is counted from its answer
                    await ctx.marks.mark(entry.id)
                    marked = True
            result = await ctx.client.fetch_profile(entry.urn, on_send=mark)
        except _NotSent:
            return _Fetched(entry, skipped=True)
        except ProviderError as exc:
            report.api_calls += exc.attempts
            report.billable_calls += exc.billed  # every 200, a truncated or malformed one included
            report.billed_by_entry[entry.id] = exc.billed
            if exc.fatal:
                stop.set()
                report.fatal_error = report.fatal_error or str(exc)
                report.provider_quota_exhausted |= isinstance(exc, QuotaExhaustedError)
                return _Fetched(entry, skipped=True)
            if is_later(exc):  # "later", not "never" (fatal ones returned above)
                later = get_settings().rapidapi  # Retry-After, else deferSeconds, at most deferMaxSeconds
                return _Fetched(entry, error=str(exc), deferred=not_before(
                    exc, defer_seconds=later.defer_seconds, defer_max_seconds=later.defer_max_seconds))
            return _Fetched(entry, error=str(exc))
        except JobError as exc:
            return _Fetched(entry, error=str(exc))
        report.api_calls += result.attempts
        report.billable_calls += result.billed
        report.billed_by_entry[entry.id] = result.billed
        if result.provider_remaining is not None:
            report.provider_remaining = result.provider_remaining
        ticket = ctx.sink.ticket()
        stored = await _store(entry, result.raw, result.data, ctx.store)
        if stored.row is None:  # our side failed, not the provider: PENDING again at once, not FAILED
            ctx.sink.failed(stored.error or "storage error")
            stored.error, stored.deferred = f"{entries.STORAGE_UNAVAILABLE}: {stored.error}", utcnow()
        else:
            ctx.sink.ok(ticket)
        return stored


async def _store(entry: ClaimedEntry, raw: bytes, data: dict[str, Any], store: ObjectStore) -> _Fetched:
    fetched_at = utcnow()
    raw_key, cleaned_key = object_keys(entry.urn, fetched_at)
    cleaned = clean_profile(data)
    try:
        await store.put_bytes(raw_key, raw)
        await store.put_bytes(cleaned_key, dump_json(cleaned))
    except JobError as exc:
        await discard_objects(store, raw_key, cleaned_key)
        return _Fetched(entry, error=str(exc))
    row = profile_row(entry.urn, cleaned, raw_key=raw_key, cleaned_key=cleaned_key,
                      fetched_at=fetched_at)
    return _Fetched(entry, row=row, keys=(raw_key, cleaned_key))


def _write(url: str, done: list[_Fetched], failed: list[_Fetched], skipped: list[_Fetched],
           reason: str, settle: tuple[QuotaGrant, int] | None = None) -> tuple[UpsertResult, int | None]:
    """One transaction: profiles, entry statuses and, with ``settle``, the batch's grant, so
    a run that dies at any moment leaves either all of it or none of it (then its entries
    are still FETCHING and still reserved: ``tasks.profiles.release`` knows what to give back)."""
    with session_scope(url) as session:
        ids = [f.entry.id for f in (*done, *failed, *skipped)]
        if ids and not entries.still_fetching(session, ids):
            # Written already: a retry after a commit whose answer was lost (the connection
            # dropped as it committed), or the entries were released meanwhile. Writing again
            # would settle the grant twice.
            return UpsertResult(), None
        counts = upsert_rows(session, Profile.__table__, [f.row for f in done if f.row],
                             conflict_columns=["urn"])
        entries.mark_completed(session, [(f.entry.id, f.row["fetched_at"]) for f in done if f.row])
        entries.mark_failed(session, [EntryOutcome(f.entry.id, f.entry.urn, f.error) for f in failed
                                      if f.deferred is None])
        entries.defer(session, [(EntryOutcome(f.entry.id, f.entry.urn, f"deferred: {f.error}"), f.deferred)
                                for f in failed if f.deferred is not None])
        entries.release_claimed(session, [f.entry.id for f in skipped], reason=reason)
        remaining = None
        if settle is not None:
            grant, used = settle
            remaining = quota.settle(session, provider=grant.provider, period=grant.period,
                                     reserved=grant.granted, used=used).remaining
    return counts, remaining


async def _persist(url: str, results: list[_Fetched], store: ObjectStore, report: BatchReport,
                   grant: QuotaGrant | None = None) -> bool:
    """Write the batch; returns whether ``grant`` was settled with it (else the caller settles)."""
    done = [r for r in results if r.row is not None]
    failed = [r for r in results if r.error is not None]
    skipped = [r for r in results if r.skipped]
    reason = f"not fetched: run stopped ({report.fatal_error})"
    counts = UpsertResult()
    settled = False
    try:
        # An outage is waited out first (the whole batch in one transaction, as planned); any
        # other error, or an outage past its budget, falls back to one transaction per entry.
        counts, report.quota_remaining = await ride_out_db(
            _write, url, done, failed, skipped, reason,
            (grant, report.billable_calls) if grant is not None else None, what="the batch's write")
        settled = grant is not None
    except Exception as exc:  # noqa: BLE001 - fall back to one transaction per entry
        logger = get_run_logger()
        logger.warning("batch write failed (%s); writing entry by entry", type(exc).__name__)
        budget = 0.0 if is_db_outage(exc) else None  # an outage past its budget is not waited out again
        for fetched in results:
            try:
                one, _ = await ride_out_db(
                    _write, url, [fetched] if fetched.row else [], [fetched] if fetched.error else [],
                    [fetched] if fetched.skipped else [], reason, what="an entry's write", budget=budget)
                counts.created += one.created
                counts.updated += one.updated
            except Exception as entry_exc:  # noqa: BLE001
                fetched.error = f"database error: {type(entry_exc).__name__}: {entry_exc}"[:500]
                fetched.row = None
                if fetched.keys:
                    await discard_objects(store, *fetched.keys)
                try:
                    await asyncio.to_thread(_write, url, [], [fetched], [], reason)
                except Exception:  # noqa: BLE001 - entry stays FETCHING; the stale sweep recovers it
                    logger.error("entry %s left FETCHING: database unavailable", fetched.entry.urn)
    report.succeeded = sum(1 for r in results if r.row is not None)
    report.created, report.updated = counts.created, counts.updated
    report.errors = [item_error(r.entry.urn, r.error) for r in results if r.error and r.deferred is None]
    report.deferred = sum(1 for r in results if r.error and r.deferred is not None)
    report.released = len(skipped)
    return settled


async def process_batch(batch: list[ClaimedEntry], grant: QuotaGrant | None, ctx: BatchContext) -> BatchReport:
    """Fetch, store and upsert one claimed batch; every entry ends COMPLETED, FAILED or PENDING.

    With ``grant``, the batch's reservation is settled with its write (billable calls used,
    the rest released), or on its own if that write fell back to entry by entry."""
    report = BatchReport()
    stop = asyncio.Event()
    fetches = [asyncio.ensure_future(_fetch_one(e, ctx, stop, report)) for e in batch]
    try:
        results = await asyncio.gather(*fetches)
    except BaseException as exc:
        # One fetch failed unexpectedly (a bug, or the request marks' database past its outage
        # budget): the fetches not yet sent stop (nothing more spent on answers nobody
        # writes), those on the wire finish and store their answers (the provider bills them
        # either way), and the batch is given back like a dead run's claims (what it stored
        # adopted, what it sent counted, the rest of its reservation released). Then the
        # stage sees the error. Cancelled from outside (the stage or the run is stopping),
        # every fetch is cancelled.
        stop.set()
        if not isinstance(exc, Exception):
            for fetch in fetches:
                fetch.cancel()
        await asyncio.gather(*fetches, return_exceptions=True)
        if isinstance(exc, Exception) and grant is not None:
            try:
                report.released_after_failure = await ride_out(
                    functools.partial(release_batch, batch, grant, report.billed_by_entry),
                    what="the failed batch's release")
            except Exception as release_exc:  # noqa: BLE001 - its entries stay FETCHING: the run's release
                get_run_logger().error("could not release the failed batch: %s: %s",
                                       type(release_exc).__name__, release_exc)
            exc.add_note(f"batch released: {report.released_after_failure}")
        raise
    report.sink_down = ctx.sink.reason
    settled = await _persist(ctx.url, list(results), ctx.store, report, grant)
    if grant is not None and not settled:
        try:
            report.quota_remaining = await ride_out_db(settle_grant, grant, report.billable_calls,
                                                       what="the batch's settlement")
        except Exception as exc:
            raise UnsettledBatch(grant, report.billable_calls, exc) from exc
    # DEBUG: a log line costs the run ~3 ms (console and API handlers); the stage logs its
    # progress at INFO (``tasks.profiles.stage``), and failed entries are in the run's history.
    get_run_logger().debug(
        "batch of %d: %d completed, %d failed, %d released, %d API calls",
        len(batch), report.succeeded, len(report.errors), report.released, report.api_calls,
    )
    return report
