"""Claims are given back exactly, by one logic (issue 19 item 7): a batch that fails mid-way
and a run that died without any Prefect automation to release it.

- A batch whose request marks start failing (a database error that is not an outage) stops
  its other fetches, adopts the answers it had stored, and settles its reservation with the
  calls that reached the provider: no orphan object, no entry FETCHING, the ledger equal to
  the provider's count.
- A run killed on the ephemeral API (a notebook's run: Prefect never marks it Crashed) left
  entries FETCHING, some answered and stored, some sent; the timeout sweep of a later run
  releases them like the release flow does: adopted, billed, the reservation given back,
  orphans removed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update

from core.db import session_scope
from core.db.engine import get_engine
from core.db.types import utcnow
from core.errors import JobRunFailed
from core.profiles import entries, quota
from core.profiles.cleaning import clean_profile, object_keys
from core.profiles.models import ProfileEntry
from core.settings import get_settings
from flows.profiles import profile_fetcher
from tests.conftest import reload_settings
from tests.factories import (
    entry_rows,
    history_rows,
    ledger,
    profile_rows,
    seed_entries,
    set_quota,
    urns,
)


def stored_objects(objects: Path) -> set[str]:
    return {str(p.relative_to(objects)) for p in objects.rglob("*.json")}


def referenced_objects(url: str) -> set[str]:
    return {k for p in profile_rows(url).values() for k in (p.raw_s3_key, p.cleaned_s3_key)}


def billed_by_provider(sandbox: object) -> int:
    return sandbox.stats()["statuses"].get(200, 0)  # type: ignore[attr-defined]


@pytest.fixture
def marks_fail_after(app_env: dict[str, str]) -> Iterator[int]:
    """From the 8th entry on, marking a request sent fails (a trigger raising: not an outage)."""
    engine = get_engine(app_env["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text("CREATE SEQUENCE mark_fault_seq"))
        conn.execute(text("""
            CREATE FUNCTION mark_fault() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.requested_at IS NOT NULL AND OLD.requested_at IS NULL
                   AND nextval('mark_fault_seq') > 7 THEN
                    RAISE EXCEPTION 'request marks refused';
                END IF;
                RETURN NEW;
            END $$"""))
        conn.execute(text("CREATE TRIGGER mark_fault BEFORE UPDATE ON profile_entries"
                          " FOR EACH ROW EXECUTE FUNCTION mark_fault()"))
    yield 7
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER mark_fault ON profile_entries"))
        conn.execute(text("DROP FUNCTION mark_fault()"))
        conn.execute(text("DROP SEQUENCE mark_fault_seq"))


async def test_a_failed_batch_adopts_what_it_stored_and_stops_its_other_fetches(
    app_env, rapidapi_sandbox, marks_fail_after, monkeypatch,
):
    url = app_env["DATABASE_URL"]
    objects = Path(app_env["STORAGE_URL"].removeprefix("file://"))
    names = urns(20)
    seed_entries(url, names)
    set_quota(url, limit=100)
    rapidapi_sandbox.update_knobs(latency_ms=150)
    monkeypatch.setenv("RAPIDAPI_CONCURRENCY", "4")
    monkeypatch.setenv("RAPIDAPI_BATCHES_IN_FLIGHT", "1")
    reload_settings()

    with pytest.raises(JobRunFailed, match="request marks refused"):
        await profile_fetcher(batch_size=20)

    rows = entry_rows(url)
    assert not [u for u, e in rows.items() if e.status == "FETCHING"]
    completed = {u for u, e in rows.items() if e.status == "COMPLETED"}
    assert 0 < len(completed) <= marks_fail_after  # only requests that were marked left
    assert set(profile_rows(url)) == completed  # what was stored is adopted, nothing else
    assert stored_objects(objects) == referenced_objects(url)  # no orphan object
    assert billed_by_provider(rapidapi_sandbox) <= marks_fail_after  # the other fetches stopped
    q = ledger(url)
    assert (q.reserved, q.calls_used) == (0, billed_by_provider(rapidapi_sandbox))
    [run] = history_rows(url)
    assert run.status == "FAILED" and "a batch of 20 failed" in run.error_summary

    with get_engine(url).begin() as conn:  # the marks work again: the next run finishes the rest
        conn.execute(text("DROP TRIGGER mark_fault ON profile_entries"))
        conn.execute(text("CREATE TRIGGER mark_fault BEFORE UPDATE ON profile_entries"
                          " FOR EACH ROW WHEN (false) EXECUTE FUNCTION mark_fault()"))
    result = await profile_fetcher(batch_size=20)
    assert result.status == "SUCCESS"
    assert {e.status for e in entry_rows(url).values()} == {"COMPLETED"}
    q = ledger(url)
    assert (q.reserved, q.calls_used) == (0, billed_by_provider(rapidapi_sandbox))
    assert stored_objects(objects) == referenced_objects(url)


async def test_the_timeout_sweep_releases_a_silent_runs_claims_exactly(app_env, rapidapi_sandbox):
    """Issue 19: 15 of 20 FETCHING entries answered, none released by an automation; before,
    the sweep re-queued them all: 15 URNs fetched and billed twice, 20 calls left reserved."""
    url = app_env["DATABASE_URL"]
    objects = Path(app_env["STORAGE_URL"].removeprefix("file://"))
    names = urns(25, prefix="ACoAASilent")
    seed_entries(url, names)
    set_quota(url, limit=100)
    silent_run = str(uuid.uuid4())  # a run no Prefect server knows of
    with session_scope(url) as session:
        period = quota.current_period(session, get_settings().cron)
        granted, _ = quota.reserve(session, provider="rapidapi", period=period, requested=20, monthly_limit=100)
        claimed = entries.claim_pending(session, limit=granted, claimed_by=silent_run)
        entries.mark_requested(session, [e.id for e in claimed[:17]])  # 15 answered and stored, 2 lost
        session.execute(update(ProfileEntry).where(ProfileEntry.claimed_by == silent_run)
                        .values(updated_at=utcnow() - timedelta(minutes=31)))
    answered = [e.urn for e in claimed[:15]]
    for urn in answered:
        raw_key, cleaned_key = object_keys(urn, utcnow())
        body = {"urn": urn, "firstName": "Ada", "lastName": "Lovelace", "headline": "Analyst"}
        (objects / raw_key).parent.mkdir(parents=True, exist_ok=True)
        (objects / raw_key).write_text(json.dumps(body))
        (objects / cleaned_key).write_text(json.dumps(clean_profile(body)))
    # A cleaned document without its raw, written a minute ago (the refetch of this entry below
    # writes objects named after its own second, which must not be this one's name).
    orphan = objects / object_keys(claimed[19].urn, utcnow() - timedelta(minutes=1))[1]
    orphan.write_text("{}")

    result = await profile_fetcher(batch_size=10)

    assert result.status == "SUCCESS"
    rows = entry_rows(url)
    assert {e.status for e in rows.values()} == {"COMPLETED"}
    assert rapidapi_sandbox.stats()["per_urn"].keys().isdisjoint(answered)  # adopted, not fetched again
    assert billed_by_provider(rapidapi_sandbox) == 25 - 15
    q = ledger(url)
    # 17 calls of the silent run (15 answered, 2 sent and lost) + this run's 10; nothing reserved.
    assert (q.reserved, q.calls_used) == (0, 17 + 10)
    assert not orphan.exists() and stored_objects(objects) == referenced_objects(url)
