"""BASELINE for the profile_fetcher benchmark: the same job as a plain asyncio script, no Prefect.

What a competent engineer would hand-write for "fetch every PENDING profile":

    loop: claim up to B PENDING entries (PENDING -> FETCHING, one statement)
          fetch them with one shared httpx.AsyncClient, at most C requests in flight
          for each answer: write the raw body and the cleaned JSON to the object store
          one transaction: one INSERT ... ON CONFLICT for the batch's profiles,
                           the fetched entries -> COMPLETED, the others -> FAILED

It shares the building blocks that are not orchestration (``core.profiles.cleaning`` for cleaning,
object keys and the row, ``core.db`` for the claim / upsert / status updates,
``core.storage`` for the local object folder), so the comparison with the flow measures
what Prefect and the flow's extra bookkeeping cost. Left out on purpose: the quota
ledger, 429 backoff and retries, orphan recovery, run history, artifacts and e-mail.

Configuration comes from the same environment variables as the product
(DATABASE_URL, STORAGE_URL, RAPIDAPI_BASE_URL, RAPIDAPI_KEY, RAPIDAPI_CONCURRENCY) plus
CRON_BATCH_SIZE. ``python -m bench.baseline_asyncio`` runs it once.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import httpx

from core.db import session_scope
from core.db.types import utcnow
from core.db.upsert import upsert_rows
from core.profiles import entries
from core.profiles.cleaning import clean_profile, object_keys, profile_row
from core.profiles.entries import ClaimedEntry, EntryOutcome
from core.profiles.models import Profile
from core.storage import ObjectStore, dump_json
from tasks.storage import open_store

RAPIDAPI_HOST = "linkedin-data-api.p.rapidapi.com"


@dataclass
class Totals:
    completed: int = 0
    failed: int = 0
    batches: int = 0


async def _fetch_one(http: httpx.AsyncClient, gate: asyncio.Semaphore, store: ObjectStore,
                     entry: ClaimedEntry) -> dict[str, object] | str:
    """The profile row to upsert, or an error message."""
    try:
        async with gate:
            response = await http.get("/", params={"username": entry.urn})
        response.raise_for_status()
        data = response.json()
        fetched_at = utcnow()
        raw_key, cleaned_key = object_keys(entry.urn, fetched_at)
        cleaned = clean_profile(data)
        await store.put_bytes(raw_key, response.content)
        await store.put_bytes(cleaned_key, dump_json(cleaned))
    except Exception as exc:  # noqa: BLE001 - any failure fails this entry only
        return f"{type(exc).__name__}: {exc}"
    return profile_row(entry.urn, cleaned, raw_key=raw_key, cleaned_key=cleaned_key,
                       fetched_at=fetched_at)


async def run(*, database_url: str, storage_url: str, base_url: str, api_key: str,
              batch_size: int, concurrency: int) -> Totals:
    store = open_store(storage_url)
    gate = asyncio.Semaphore(concurrency)
    totals = Totals()
    headers = {"x-rapidapi-key": api_key, "x-rapidapi-host": RAPIDAPI_HOST}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30,
                                 limits=httpx.Limits(max_connections=concurrency)) as http:
        while True:
            with session_scope(database_url) as session:
                batch = entries.claim_pending(session, limit=batch_size, claimed_by="baseline")
            if not batch:
                return totals
            results = await asyncio.gather(*(_fetch_one(http, gate, store, e) for e in batch))
            rows = [r for r in results if isinstance(r, dict)]
            done = [(e.id, r["fetched_at"]) for e, r in zip(batch, results, strict=True) if isinstance(r, dict)]
            failed = [EntryOutcome(e.id, e.urn, r) for e, r in zip(batch, results, strict=True)
                      if isinstance(r, str)]
            with session_scope(database_url) as session:
                upsert_rows(session, Profile.__table__, rows, conflict_columns=["urn"])
                entries.mark_completed(session, done)  # type: ignore[arg-type]
                entries.mark_failed(session, failed)
            totals.completed += len(done)
            totals.failed += len(failed)
            totals.batches += 1


def main() -> Totals:
    env = os.environ
    return asyncio.run(run(
        database_url=env["DATABASE_URL"], storage_url=env["STORAGE_URL"],
        base_url=env["RAPIDAPI_BASE_URL"], api_key=env["RAPIDAPI_KEY"],
        batch_size=int(env.get("CRON_BATCH_SIZE", "10")),
        concurrency=int(env.get("RAPIDAPI_CONCURRENCY", "10")),
    ))


if __name__ == "__main__":
    print(main())
