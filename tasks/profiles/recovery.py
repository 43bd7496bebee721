"""Releasing what a dead run held, and fanning a run out over the pool's workers."""


from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import get_run_logger
from sqlalchemy import select

from core.db import session_scope
from core.db.upsert import upsert_rows
from core.errors import JobError
from core.profiles import entries, quota
from core.profiles.cleaning import clean_profile, profile_row
from core.profiles.models import Profile
from core.settings import get_settings
from core.storage import dump_json
from prefect_api import deployment_name, trigger_deployment
from prefect_api.automations import ENDED_STATES, run_states
from tasks._common import db_task, db_url
from tasks.profiles.batch import discard_objects
from tasks.storage import open_store


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
    await discard_objects(store, *orphans)
    return {**{f"entries_{k}_before": v for k, v in before.items()}, "entries_adopted": len(rows), "entries_released": released, "billable_calls_recovered": len(billed),
            "quota_released": len(claimed) - len(billed), "orphan_objects_removed": len(orphans)}


def _stamp(key: str) -> int:
    """The unix time in ``profiles/<urn>-<unix_ts>-raw.json``."""
    return int(key.rsplit("-", 2)[-2])


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


@dataclass(frozen=True)
class Recovered:
    """What a run released before it started: the claims of ended runs, by run id, and the
    number of entries orphaned longer than ``cron.fetchingTimeoutMinutes``."""

    dead_runs: dict[str, dict[str, int]]
    stale: int


@db_task
async def recover_before_run(own_run_id: str, older_than_minutes: int) -> Recovered:
    """One task before a run claims anything: release the claims of runs Prefect shows have
    ended (``release_dead_claims``), then re-queue entries left FETCHING longer than
    ``older_than_minutes`` by runs Prefect cannot tell about."""
    dead = await release_dead_claims(own_run_id)
    with session_scope(db_url()) as session:
        stale = entries.release_stale(session, older_than=timedelta(minutes=older_than_minutes))
    return Recovered(dead, stale)


async def start_parallel_runs(count: int, parameters: dict[str, Any]) -> list[str]:
    """Start ``count`` more runs of this run's deployment (none outside a deployment)."""
    if count < 1:
        return []  # before asking Prefect for the deployment: that costs an API call
    name = deployment_name()
    if name is None:
        return []
    runs = [await trigger_deployment(name, {**parameters, "parallel_runs": 1}, tags=["jobpipes", "parallel"])
            for _ in range(count)]
    get_run_logger().info("started %d parallel runs of %s", len(runs), name)
    return [str(r.id) for r in runs]

