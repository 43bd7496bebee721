"""One task per batch: fetch -> store raw -> clean -> store cleaned -> upsert -> finish entries.

Inside it, fetches run with bounded concurrency (``rapidapi.concurrency``, shared by a run's
batches in flight). The database is written once per batch in one transaction with the
batch's quota settlement; if that fails, entry by entry, so that one bad row fails only its
entry. An entry that could not be written at all stays FETCHING and is recovered later."""


from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import text

from core.db import session_scope
from core.db.types import utcnow
from core.db.upsert import UpsertResult, upsert_rows
from core.errors import JobError, ProviderError, QuotaExhaustedError
from core.profiles import entries, quota
from core.profiles.cleaning import clean_profile, object_keys, profile_row, validate_urn
from core.profiles.client import RapidApiClient
from core.profiles.entries import ClaimedEntry, EntryOutcome
from core.profiles.models import Profile
from core.runs.errors import ItemError, item_error
from core.settings import get_settings
from core.storage import ObjectStore, dump_json
from tasks._common import db_url
from tasks.profiles.ledger import QuotaGrant, settle_in_session
from tasks.storage import open_store


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
    fatal_error: str | None = None
    provider_quota_exhausted: bool = False
    provider_remaining: int | None = None
    quota_remaining: int | None = None  # the ledger after settling the batch's grant


@dataclass
class _Fetched:
    entry: ClaimedEntry
    row: dict[str, Any] | None = None
    keys: tuple[str, str] | None = None
    error: str | None = None
    skipped: bool = False


def _mark_requested(url: str, entry_id: int) -> None:
    with session_scope(url) as session:
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            # Durable against this process dying (what the mark is for) without waiting for
            # the WAL flush: only a crash of the database server itself could lose it.
            session.execute(text("SET LOCAL synchronous_commit = off"))
        entries.mark_requested(session, entry_id)


async def _fetch_one(
    entry: ClaimedEntry,
    client: RapidApiClient,
    store: ObjectStore,
    gate: asyncio.Semaphore,
    stop: asyncio.Event,
    report: BatchReport,
    url: str,
) -> _Fetched:
    async with gate:
        if stop.is_set():
            return _Fetched(entry, skipped=True)
        try:
            validate_urn(entry.urn)
            # Durable before the request leaves: if this process dies before the answer is
            # stored, the release of the run still counts the call the provider billed.
            await asyncio.to_thread(_mark_requested, url, entry.id)
            result = await client.fetch_profile(entry.urn)
        except ProviderError as exc:
            report.api_calls += exc.attempts
            report.billable_calls += exc.status == 200
            if exc.fatal:
                stop.set()
                report.fatal_error = report.fatal_error or str(exc)
                report.provider_quota_exhausted |= isinstance(exc, QuotaExhaustedError)
                return _Fetched(entry, skipped=True)
            return _Fetched(entry, error=str(exc))
        except JobError as exc:
            return _Fetched(entry, error=str(exc))
        report.api_calls += result.attempts
        report.billable_calls += 1
        if result.provider_remaining is not None:
            report.provider_remaining = result.provider_remaining
        return await _store(entry, result.raw, result.data, store)


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


async def discard_objects(store: ObjectStore, *keys: str) -> None:
    """Best effort: remove objects no database row will point to."""
    for key in keys:
        try:
            await store.delete(key)
        except Exception:  # noqa: BLE001 - the store may be the thing that is down
            logging.getLogger(__name__).debug("could not delete orphan object %s", key)


def _write(url: str, done: list[_Fetched], failed: list[_Fetched], skipped: list[_Fetched],
           reason: str, settle: tuple[QuotaGrant, int] | None = None) -> tuple[UpsertResult, int | None]:
    """One transaction: profiles, entry statuses and, with ``settle``, the batch's grant, so
    a run that dies at any moment leaves either all of it or none of it (then its entries
    are still FETCHING and still reserved: ``release_run_claims`` knows what to give back)."""
    with session_scope(url) as session:
        counts = upsert_rows(session, Profile.__table__, [f.row for f in done if f.row],
                             conflict_columns=["urn"])
        entries.mark_completed(session, [(f.entry.id, f.row["fetched_at"]) for f in done if f.row])
        entries.mark_failed(session, [EntryOutcome(f.entry.id, f.entry.urn, f.error) for f in failed])
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
        counts, report.quota_remaining = _write(url, done, failed, skipped, reason,
                                                settle=(grant, report.billable_calls) if grant is not None else None)
        settled = grant is not None
    except Exception as exc:  # noqa: BLE001 - fall back to one transaction per entry
        logger = get_run_logger()
        logger.warning("batch write failed (%s); writing entry by entry", type(exc).__name__)
        for fetched in results:
            try:
                one, _ = _write(url, [fetched] if fetched.row else [], [fetched] if fetched.error else [],
                             [fetched] if fetched.skipped else [], reason)
                counts.created += one.created
                counts.updated += one.updated
            except Exception as entry_exc:  # noqa: BLE001
                fetched.error = f"database error: {type(entry_exc).__name__}: {entry_exc}"[:500]
                fetched.row = None
                if fetched.keys:
                    await discard_objects(store, *fetched.keys)
                try:
                    _write(url, [], [fetched], [], reason)
                except Exception:  # noqa: BLE001 - entry stays FETCHING; the stale sweep recovers it
                    logger.error("entry %s left FETCHING: database unavailable", fetched.entry.urn)
    report.succeeded = sum(1 for r in results if r.row is not None)
    report.created, report.updated = counts.created, counts.updated
    report.errors = [item_error(r.entry.urn, r.error) for r in results if r.error]
    report.released = len(skipped)
    return settled


# The requests in flight of each run, shared by its batches in flight (see flows.profiles).
_GATES: dict[str, asyncio.Semaphore] = {}


def _gate(key: str | None, concurrency: int) -> asyncio.Semaphore:
    if key is None:
        return asyncio.Semaphore(concurrency)
    return _GATES.setdefault(key, asyncio.Semaphore(concurrency))


def release_gate(key: str) -> None:
    """Forget a run's shared gate once its last batch is done."""
    _GATES.pop(key, None)


@task(name="process-profile-batch", cache_policy=NO_CACHE)
async def process_profile_batch(batch: list[ClaimedEntry], grant: QuotaGrant | None = None,
                                gate: str | None = None) -> BatchReport:
    """Fetch, store and upsert one claimed batch; every entry ends COMPLETED, FAILED or PENDING.

    With ``grant``, the batch's reservation is settled last (billable calls used, the rest
    released), so a batch costs two task runs: ``reserve_and_claim`` and this one."""
    settings = get_settings()
    store = open_store(settings.storage_url)
    report = BatchReport()
    semaphore = _gate(gate, settings.rapidapi.concurrency)
    stop = asyncio.Event()
    async with RapidApiClient(settings.rapidapi, limits_url=db_url(settings)) as client:
        results = await asyncio.gather(
            *(_fetch_one(e, client, store, semaphore, stop, report, db_url(settings)) for e in batch)
        )
    settled = await _persist(db_url(settings), list(results), store, report, grant)
    if grant is not None and not settled:
        report.quota_remaining = settle_in_session(grant, report.billable_calls)
    get_run_logger().info(
        "batch of %d: %d completed, %d failed, %d released, %d API calls",
        len(batch), report.succeeded, len(report.errors), report.released, report.api_calls,
    )
    return report


