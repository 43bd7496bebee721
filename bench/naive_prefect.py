"""NAIVE Prefect variant for the profile_fetcher benchmark: one Prefect task per entry.

The way many first Prefect ports look: the flow claims PENDING entries in batches and
``.submit()``s one task per entry to a ``ThreadPoolTaskRunner`` whose ``max_workers`` is
the API concurrency; each task fetches its profile with a (shared) synchronous httpx
client, writes the raw and cleaned JSON files, and upserts its own profile row and marks
its own entry COMPLETED in its own transaction. No quota ledger, no run history.

Only the benchmark uses this; it is here to show what per-entry task runs cost.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from core.db import session_scope
from core.db.types import utcnow
from core.db.upsert import upsert_rows
from core.profiles import entries
from core.profiles.cleaning import clean_profile, object_keys, profile_row
from core.profiles.entries import EntryOutcome
from core.profiles.models import Profile
from core.settings import get_settings
from core.storage import dump_json
from tasks.storage import open_store

_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _http() -> httpx.Client:
    global _client
    with _client_lock:
        if _client is None:
            s = get_settings().rapidapi
            _client = httpx.Client(
                base_url=s.base_url, timeout=30,
                headers={"x-rapidapi-key": s.key.get_secret_value(), "x-rapidapi-host": s.host},
                limits=httpx.Limits(max_connections=s.concurrency))
        return _client


@task(name="fetch-one-profile", cache_policy=NO_CACHE)
def fetch_one_profile(entry_id: int, urn: str) -> None:
    settings = get_settings()
    response = _http().get("/", params={"username": urn})
    response.raise_for_status()
    fetched_at = utcnow()
    raw_key, cleaned_key = object_keys(urn, fetched_at)
    cleaned = clean_profile(response.json())
    root: Path = open_store(settings.storage_url).root  # type: ignore[attr-defined]  # local folder
    for key, body in ((raw_key, response.content), (cleaned_key, dump_json(cleaned))):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    row = profile_row(urn, cleaned, raw_key=raw_key, cleaned_key=cleaned_key, fetched_at=fetched_at)
    with session_scope(settings.database_url) as session:
        upsert_rows(session, Profile.__table__, [row], conflict_columns=["urn"])
        entries.mark_completed(session, [(entry_id, fetched_at)])


@flow(name="profile-fetcher-naive")
def naive_profile_fetcher(batch_size: int = 100) -> int:
    """Claim batches and submit one task per entry; returns entries completed."""
    url = get_settings().database_url
    completed = 0
    while True:
        with session_scope(url) as session:
            batch = entries.claim_pending(session, limit=batch_size, claimed_by="naive")
        if not batch:
            return completed
        futures = [fetch_one_profile.submit(e.id, e.urn) for e in batch]
        failed = []
        for entry, future in zip(batch, futures, strict=True):
            future.wait()
            state = future.state
            if state.is_completed():
                completed += 1
            else:
                failed.append(EntryOutcome(entry.id, entry.urn, str(state.message)[:500]))
        if failed:
            with session_scope(url) as session:
                entries.mark_failed(session, failed)


def run(batch_size: int) -> int:
    """Run the naive flow with ``rapidapi.concurrency`` worker threads."""
    workers = get_settings().rapidapi.concurrency
    return naive_profile_fetcher.with_options(
        task_runner=ThreadPoolTaskRunner(max_workers=workers))(batch_size=batch_size)  # type: ignore[arg-type]
