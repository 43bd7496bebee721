"""Profile-fetcher tasks (seed 000): job config, reserve and claim, one task per batch, settle, release.

One task per batch: fetch -> store raw -> clean -> store cleaned -> upsert -> finish entries.
Inside it, fetches run with bounded concurrency (``rapidapi.concurrency``). The database is
written once per batch in one transaction; if that fails, entry by entry, so that one bad row
fails only its entry. An entry that could not be written at all stays FETCHING and the stale
sweep of a later run puts it back to PENDING: nothing is lost. A run that died (SIGKILL, a
lost machine) is released at once by ``release_run_claims``: the next run, or the
``release-crashed-run`` flow, adopts what it fetched and gives back the rest.

Over 300 lines on purpose: the batch task, the small database tasks around it and the crash
release share the object-key layout and the write path; split, the family would have two
homes in ``tasks/``."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import select, text

from core.db import session_scope
from core.db.types import utcnow
from core.db.upsert import UpsertResult, upsert_rows
from core.errors import JobError, ProviderError, QuotaExhaustedError
from core.profiles import entries, job_configs, quota
from core.profiles.cleaning import clean_profile, object_keys, profile_row, validate_urn
from core.profiles.client import RapidApiClient
from core.profiles.entries import ClaimedEntry, EntryOutcome
from core.profiles.job_configs import JobConfig
from core.profiles.models import Profile
from core.runs.errors import ItemError, item_error
from core.settings import get_settings
from core.storage import ObjectStore, dump_json
from tasks._common import db_task, db_url
from tasks.prefect_api import deployment_name, trigger_deployment
from tasks.prefect_api.automations import ENDED_STATES, run_states
from tasks.storage import open_store


@db_task
async def load_job_config(name: str) -> JobConfig:
    """The job's config (defaults inserted when missing), with ``last_run`` set to now."""
    settings = get_settings()
    with session_scope(db_url(settings)) as session:
        return job_configs.load_for_run(session, name, settings.cron)


@dataclass(frozen=True)
class QuotaGrant:
    provider: str
    period: str
    requested: int
    granted: int
    remaining: int


@dataclass(frozen=True)
class Claim:
    """A reservation and the entries it covers: ``grant.granted == len(entries)``."""

    grant: QuotaGrant
    entries: list[ClaimedEntry]
    quota_granted: int  # what the ledger allowed before looking for entries (0: quota spent)


@db_task
async def reserve_and_claim(
    provider: str, requested: int, claimed_by: str, *, monthly_limit: int, respect_quota: bool = True
) -> Claim:
    """In one transaction: reserve up to ``requested`` calls, claim that many of the oldest
    PENDING entries (PENDING -> FETCHING), and give back the part of the reservation that
    found no entry. One task and one commit per batch instead of two of each; a crash in
    between can no longer leave a reservation without its entries."""
    settings = get_settings()
    with session_scope(db_url(settings)) as session:
        period = quota.current_period(session, settings.cron)
        granted, state = quota.reserve(
            session, provider=provider, period=period, requested=requested,
            monthly_limit=monthly_limit, enforce_limit=respect_quota,
        )
        batch = entries.claim_pending(session, limit=granted, claimed_by=claimed_by) if granted else []
        if len(batch) < granted:
            state = quota.settle(session, provider=provider, period=period, reserved=granted - len(batch), used=0)
    return Claim(QuotaGrant(provider, period, requested, len(batch), state.remaining), batch, granted)


def settle_in_session(grant: QuotaGrant, used: int) -> int:
    """``settle_quota`` for code already inside a task (the batch task settles its own grant)."""
    with session_scope(db_url()) as session:
        return quota.settle(session, provider=grant.provider, period=grant.period,
                            reserved=grant.granted, used=used).remaining


@db_task
async def settle_quota(grant: QuotaGrant, used: int) -> int:
    """Record ``used`` calls against ``grant``, release the rest; returns calls remaining."""
    return settle_in_session(grant, used)


@db_task
async def mark_provider_quota_exhausted(grant: QuotaGrant) -> None:
    """The provider said the plan is spent: make the ledger agree so later runs stop early."""
    with session_scope(db_url()) as session:
        quota.mark_exhausted(session, provider=grant.provider, period=grant.period)


@db_task
async def release_stale_entries(older_than_minutes: int) -> int:
    """FETCHING entries left behind by a crashed run go back to PENDING."""
    with session_scope(db_url()) as session:
        return entries.release_stale(session, older_than=timedelta(minutes=older_than_minutes))


@db_task
async def release_entries(ids: list[int], reason: str) -> int:
    """Claimed but unfetched entries go back to PENDING."""
    with session_scope(db_url()) as session:
        return entries.release_claimed(session, ids, reason=reason)


@db_task
async def finished_entries(ids: list[int]) -> list[EntryOutcome]:
    """Which of ``ids`` are COMPLETED or FAILED (what a crashed batch did finish)."""
    with session_scope(db_url()) as session:
        return entries.finished(session, ids)


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
        await _discard(store, raw_key, cleaned_key)
        return _Fetched(entry, error=str(exc))
    row = profile_row(entry.urn, cleaned, raw_key=raw_key, cleaned_key=cleaned_key,
                      fetched_at=fetched_at)
    return _Fetched(entry, row=row, keys=(raw_key, cleaned_key))


async def _discard(store: ObjectStore, *keys: str) -> None:
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
                    await _discard(store, *fetched.keys)
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


@db_task
async def start_quota_period(provider: str, monthly_limit: int, reset_usage: bool) -> quota.QuotaState:
    """Create (or re-limit) the current period's ledger row (the period follows the reset schedule)."""
    settings = get_settings()
    with session_scope(db_url(settings)) as session:
        return quota.start_period(session, provider=provider, period=quota.current_period(session, settings.cron),
                                  monthly_limit=monthly_limit, reset_usage=reset_usage)


@db_task
async def add_pending_entries(urns: list[str]) -> int:
    """Enqueue URNs as PENDING (all validated first); returns how many were new."""
    with session_scope(db_url()) as session:
        return entries.add_pending(session, urns)


@db_task
async def requeue_failed_entries(urns: list[str] | None) -> int:
    """FAILED entries (all, or only ``urns``) back to PENDING; returns how many."""
    with session_scope(db_url()) as session:
        return entries.requeue_failed(session, urns)


async def release_run_claims(run_id: str) -> dict[str, int]:
    """Release what dead run ``run_id`` held: its FETCHING entries and its quota reservation.

    Objects prove a fetch: an entry whose raw document the run stored (and no profile row
    points to) was answered and billed, so it is adopted (profile upserted, entry COMPLETED,
    the call counted as used). An entry whose request was sent (``requested_at``) but whose
    answer never got stored was billed too: it goes back to PENDING and its call counts as
    used. Any other entry goes back to PENDING and its share of the reservation is given back. Leftover objects of the run are removed. Only call this for a
    run that has ended: a live run would lose its batch.
    """
    settings = get_settings()
    url, store = db_url(settings), open_store(settings.storage_url)
    with session_scope(url) as session:
        before = entries.finished_by_run(session, run_id)
        claimed = entries.claimed_by_run(session, run_id)
        requested = entries.requested_by_run(session, run_id)
        known = {r.urn: (r.raw_s3_key, r.cleaned_s3_key) for r in session.execute(
            select(Profile.urn, Profile.raw_s3_key, Profile.cleaned_s3_key)
            .where(Profile.urn.in_([e.urn for e in claimed])))}
    if not claimed:
        return {f"entries_{k}_before": v for k, v in before.items()}
    adopted: list[dict[str, Any]] = []
    orphans: list[str] = []
    for entry in claimed:
        keys = [k for k in await store.list_keys(f"profiles/{entry.urn}-") if k not in known.get(entry.urn, ())]
        raws = sorted((k for k in keys if k.endswith("-raw.json")), key=_stamp)
        if raws:
            raw_key = raws[-1]
            cleaned_key = raw_key.removesuffix("-raw.json") + "-cleaned.json"
            try:
                cleaned = json.loads(await store.get_bytes(cleaned_key)) if cleaned_key in keys else None
                if cleaned is None:  # the run died between the two writes: clean the raw again
                    cleaned = clean_profile(json.loads(await store.get_bytes(raw_key)))
                    await store.put_bytes(cleaned_key, dump_json(cleaned))
                fetched_at = datetime.fromtimestamp(_stamp(raw_key), UTC)
                adopted.append(profile_row(entry.urn, cleaned, raw_key=raw_key, cleaned_key=cleaned_key,
                                           fetched_at=fetched_at) | {"entry_id": entry.id})
                keys = [k for k in keys if k not in (raw_key, cleaned_key)]
            except (JobError, ValueError):
                adopted.append({"entry_id": entry.id, "billed_only": True})
        orphans += keys
    rows = [r for r in adopted if "urn" in r]
    billed = {r["entry_id"] for r in adopted} | requested  # answered, or sent and never answered to us
    with session_scope(url) as session:
        if rows:
            upsert_rows(session, Profile.__table__, [{k: v for k, v in r.items() if k != "entry_id"} for r in rows],
                        conflict_columns=["urn"])
            entries.mark_completed(session, [(r["entry_id"], r["fetched_at"]) for r in rows])
        released = entries.release_claimed(session, [e.id for e in claimed if e.id not in {r["entry_id"] for r in rows}],
                                           reason="re-queued: its run crashed")
        period = quota.reserved_period(session, provider=quota.PROVIDER)
        if period is not None:
            quota.settle(session, provider=quota.PROVIDER, period=period, reserved=len(claimed), used=len(billed))
    await _discard(store, *orphans)
    return {**{f"entries_{k}_before": v for k, v in before.items()}, "entries_adopted": len(rows), "entries_released": released, "billable_calls_recovered": len(billed),
            "quota_released": len(claimed) - len(billed), "orphan_objects_removed": len(orphans)}


def _stamp(key: str) -> int:
    """The unix time in ``profiles/<urn>-<unix_ts>-raw.json``."""
    return int(key.rsplit("-", 2)[-2])


@db_task
async def release_dead_claims(own_run_id: str) -> dict[str, dict[str, int]]:
    """Before a run starts: release the claims of every other run Prefect shows has ended
    (crashed, failed, cancelled), at once rather than after ``fetchingTimeoutMinutes``."""
    with session_scope(db_url()) as session:
        others = [c for c in entries.claimants(session) if c != own_run_id]
    released: dict[str, dict[str, int]] = {}
    for run_id, state in (await run_states(others)).items():
        if state in ENDED_STATES:
            released[run_id] = await release_run_claims(run_id)
    return released


async def start_parallel_runs(count: int, parameters: dict[str, Any]) -> list[str]:
    """Start ``count`` more runs of this run's deployment (none outside a deployment)."""
    name = deployment_name()
    if count < 1 or name is None:
        return []
    runs = [await trigger_deployment(name, {**parameters, "parallel_runs": 1}, tags=["jobpipes", "parallel"])
            for _ in range(count)]
    get_run_logger().info("started %d parallel runs of %s", len(runs), name)
    return [str(r.id) for r in runs]

