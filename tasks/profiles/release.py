"""Giving back claimed entries exactly: the one release logic of a failed batch, a dead run
(the ``release-crashed-run`` flow, the next run) and the timeout sweep of a later run.

Objects prove a fetch: an entry whose raw document was stored (and no profile row points to)
was answered and billed, so it is adopted (profile upserted, entry COMPLETED, the call counted
as used). An entry whose request was marked sent (``requested_at``) but whose answer never got
stored was billed too: it goes back to PENDING and its call counts as used. Any other entry
goes back to PENDING and its share of the reservation is given back. Leftover objects of the
claims are removed. Only call this for claims whose holder has stopped: a live holder would
lose its batch."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from core.db import session_scope
from core.db.upsert import upsert_rows
from core.errors import JobError
from core.profiles import entries, quota
from core.profiles.cleaning import clean_profile, profile_row
from core.profiles.entries import ClaimedEntry
from core.profiles.models import Profile
from core.settings import get_settings
from core.storage import ObjectStore, dump_json
from tasks._common import db_url
from tasks.storage import open_store


async def discard_objects(store: ObjectStore, *keys: str) -> None:
    """Best effort: remove objects no database row will point to."""
    for key in keys:
        try:
            await store.delete(key)
        except Exception:  # noqa: BLE001 - the store may be the thing that is down
            logging.getLogger(__name__).debug("could not delete orphan object %s", key)


def _stamp(key: str) -> int:
    """The unix time in ``profiles/<urn>-<unix_ts>-raw.json``."""
    return int(key.rsplit("-", 2)[-2])


async def release_claims(claimed: list[ClaimedEntry], requested: set[int], *, reason: str,
                         grant: Any = None, billed_known: Mapping[int, int] | None = None) -> dict[str, int]:
    """Release ``claimed`` (entries still FETCHING) and settle their reservation.

    ``requested``: ids whose request was marked sent. ``grant`` (a ``QuotaGrant``): the
    reservation to settle, that of one batch (all of it: the entries it finished too); without
    it, ``len(claimed)`` calls of the period that holds reservations (a dead run's claims).
    ``billed_known``: calls the provider billed per entry, where the holder saw the answers
    (a failed batch's finished fetches); the other entries count one call if requested or
    adopted."""
    settings = get_settings()
    url, store = db_url(settings), open_store(settings.storage_url)
    with session_scope(url) as session:
        known = {r.urn: (r.raw_s3_key, r.cleaned_s3_key) for r in session.execute(
            select(Profile.urn, Profile.raw_s3_key, Profile.cleaned_s3_key)
            .where(Profile.urn.in_([e.urn for e in claimed])))} if claimed else {}
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
                if cleaned is None:  # the holder died between the two writes: clean the raw again
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
    seen = dict(billed_known or {})
    billed = sum(seen.values()) + len(({r["entry_id"] for r in adopted} | requested) - seen.keys())
    with session_scope(url) as session:
        if rows:
            upsert_rows(session, Profile.__table__, [{k: v for k, v in r.items() if k != "entry_id"} for r in rows],
                        conflict_columns=["urn"])
            entries.mark_completed(session, [(r["entry_id"], r["fetched_at"]) for r in rows])
        released = entries.release_claimed(session, [e.id for e in claimed if e.id not in {r["entry_id"] for r in rows}],
                                           reason=reason)
        if grant is not None:
            quota.settle(session, provider=grant.provider, period=grant.period, reserved=grant.granted, used=billed)
            reserved = grant.granted
        else:
            reserved = len(claimed)
            period = quota.reserved_period(session, provider=quota.PROVIDER)
            if period is not None and claimed:
                quota.settle(session, provider=quota.PROVIDER, period=period, reserved=reserved, used=billed)
    await discard_objects(store, *orphans)
    return {"entries_adopted": len(rows), "entries_released": released, "billable_calls_recovered": billed,
            "quota_released": max(0, reserved - billed), "orphan_objects_removed": len(orphans)}


async def release_run_claims(run_id: str) -> dict[str, int]:
    """Release what dead run ``run_id`` held: its FETCHING entries and its quota reservation
    (``release_claims``), with what it had finished before (``entries_*_before``)."""
    with session_scope(db_url()) as session:
        before = entries.finished_by_run(session, run_id)
        claimed = entries.claimed_by_run(session, run_id)
        requested = entries.requested_by_run(session, run_id)
    counts = {f"entries_{k}_before": v for k, v in before.items()}
    if not claimed:
        return counts
    return counts | await release_claims(claimed, requested, reason="re-queued: its run crashed")


async def release_lost_claims(claimant: str, working: set[int]) -> int:
    """Give back what ``claimant`` holds FETCHING that none of its batches works on (``working``:
    the ids of its batches in flight): a claim whose transaction committed while its answer was
    lost (the connection dropped as it committed, in a database outage) and was then made
    again. Back to PENDING, their reservation given back, like a dead run's; how many."""
    with session_scope(db_url()) as session:
        lost = [e for e in entries.claimed_by_run(session, claimant) if e.id not in working]
        requested = entries.requested_among(session, [e.id for e in lost])
    if not lost:
        return 0
    await release_claims(lost, requested, reason="re-queued: its claim's answer was lost in a database outage")
    return len(lost)


async def release_batch(batch: list[ClaimedEntry], grant: Any, billed_known: Mapping[int, int]) -> dict[str, int]:
    """After a batch failed unexpectedly (its reservation not settled): adopt what it stored,
    count what it sent, give back the rest, settle its whole grant."""
    ids = [e.id for e in batch]
    with session_scope(db_url()) as session:
        holding = {e.id for e in entries.still_fetching(session, ids)}
        requested = entries.requested_among(session, ids)
    return await release_claims([e for e in batch if e.id in holding], requested,
                                reason="re-queued: its batch failed", grant=grant, billed_known=billed_known)


async def sweep_storage_orphans() -> int:
    """Remove the objects a storage outage left without a row: those of entries PENDING again
    after ``storage unavailable`` (their answer's first object was written, the second failed,
    and removing the first failed too). Best effort, before a run claims: returns how many."""
    with session_scope(db_url()) as session:
        waiting = entries.waiting_after_storage_failure(session)
        if not waiting:
            return 0
        known = {k for r in session.execute(select(Profile.raw_s3_key, Profile.cleaned_s3_key)
                                            .where(Profile.urn.in_([u for u, _ in waiting]))) for k in r}
    store = open_store(get_settings().storage_url)
    orphans: list[str] = []
    for urn, since in waiting:
        # Only what was written before it went back to PENDING: a run that claimed it since
        # may be writing its new answer right now.
        orphans += [k for k in await store.list_keys(f"profiles/{urn}-")
                    if k not in known and _stamp(k) <= since.timestamp()]
    await discard_objects(store, *orphans)
    return len(orphans)
