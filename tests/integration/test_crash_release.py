"""A run whose process died: its claims, reservation and objects are released at once.

The dead run is a real Prefect flow run set Crashed (what the zombie automation does), with
what a SIGKILL mid-batch leaves: entries FETCHING under its id, the batch's reservation in
the ledger, and the raw/cleaned objects of the fetches that had answered.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Crashed
from sqlalchemy import select

from core.db import session_scope
from core.profiles import entries, quota
from core.profiles.cleaning import clean_profile, object_keys
from core.runs.models import JobExecutionHistory
from core.settings import get_settings
from flows.profiles import profile_fetcher
from flows.recovery import release_crashed_run
from tests.factories import (
    entry_rows,
    history_rows,
    ledger,
    profile_rows,
    seed_entries,
    set_quota,
    urns,
)


@flow(name="profile-fetcher")
def _stand_in() -> None:
    """Only to own a flow run named like the real one."""


async def _dead_run(url: str, objects: Path, names: list[str], answered: int, unanswered: int = 0) -> str:
    """A Crashed flow run that had claimed ``names``, stored objects for ``answered`` of them and
    sent the request of ``unanswered`` more, whose answers it never stored."""
    async with get_client() as client:
        flow_id = await client.create_flow(_stand_in)
        run = await client.create_flow_run(_stand_in, parameters={})
        await client.set_flow_run_state(run.id, Crashed(message="no heartbeat for 90 s"), force=True)
    assert flow_id
    run_id = str(run.id)
    with session_scope(url) as session:
        period = quota.current_period(session, get_settings().cron)
        granted, _ = quota.reserve(session, provider="rapidapi", period=period, requested=len(names),
                                   monthly_limit=100)
        assert granted == len(names)
        claimed = entries.claim_pending(session, limit=len(names), claimed_by=run_id)
        assert len(claimed) == len(names)
        for entry in claimed[:answered + unanswered]:
            entries.mark_requested(session, [entry.id])
    from core.db.types import utcnow
    for urn in names[:answered]:
        raw_key, cleaned_key = object_keys(urn, utcnow())
        body = {"urn": urn, "firstName": "Ada", "lastName": "Lovelace", "headline": "Analyst"}
        (objects / raw_key).parent.mkdir(parents=True, exist_ok=True)
        (objects / raw_key).write_text(json.dumps(body))
        if urn != names[0]:  # the first one died between its two writes: no cleaned document
            (objects / cleaned_key).write_text(json.dumps(clean_profile(body)))
    return run_id


async def test_the_release_flow_adopts_what_was_fetched_and_gives_back_the_rest(app_env, smtp_sink):
    url = app_env["DATABASE_URL"]
    objects = Path(app_env["STORAGE_URL"].removeprefix("file://"))
    names = urns(5, prefix="ACoAACrash")
    seed_entries(url, names)
    set_quota(url, limit=100)
    run_id = await _dead_run(url, objects, names, answered=3, unanswered=1)

    released = await release_crashed_run(f"prefect.flow-run.{run_id}")  # as the automation passes it

    assert released["released"] is True and released["entries_adopted"] == 3
    rows = entry_rows(url)
    assert sorted(rows[u].status for u in names) == ["COMPLETED"] * 3 + ["PENDING"] * 2
    assert set(profile_rows(url)) == set(names[:3])  # nothing answered is fetched twice
    q = ledger(url)
    assert (q.reserved, q.calls_used) == (0, 4)  # billed calls (3 answered, 1 sent) used, the rest given back
    stored = sorted(p.name for p in objects.rglob("*.json"))
    assert len(stored) == 6 and all(p.raw_s3_key.split("/")[-1] in stored for p in profile_rows(url).values())
    [crashed] = [h for h in history_rows(url) if h.flow_run_id == run_id]
    assert (crashed.job_name, crashed.status) == ("profile_fetcher", "CRASHED")
    assert crashed.metrics["released"]["entries_released"] == 2
    # CRASHED is a problem: e-mailed once (issue 22 item 5).
    [mail] = smtp_sink.messages
    assert "profile_fetcher CRASHED" in mail["Subject"] and "no heartbeat for 90 s" in mail.get_content()
    # Releasing again finds nothing and writes no second row, nor a second e-mail.
    again = await release_crashed_run(run_id)
    assert len(smtp_sink.messages) == 1
    assert again["released"] is True and "entries_adopted" not in again
    with session_scope(url) as session:
        assert len(session.execute(select(JobExecutionHistory).where(
            JobExecutionHistory.flow_run_id == run_id)).all()) == 1


async def test_the_next_run_releases_a_dead_runs_claims_before_it_starts(app_env, rapidapi_sandbox):
    url = app_env["DATABASE_URL"]
    objects = Path(app_env["STORAGE_URL"].removeprefix("file://"))
    names = urns(4, prefix="ACoAANext")
    seed_entries(url, names)
    set_quota(url, limit=100)
    run_id = await _dead_run(url, objects, names[:2], answered=1)

    result = await profile_fetcher(batch_size=10)

    assert result is not None and result.status == "SUCCESS"
    rows = entry_rows(url)
    assert {rows[u].status for u in names} == {"COMPLETED"}
    # The dead run's answered entry was adopted, not fetched again: 3 calls for 4 entries.
    assert rapidapi_sandbox.stats()["statuses"].get(200) == 3  # type: ignore[attr-defined]
    q = ledger(url)
    assert (q.reserved, q.calls_used) == (0, 4)
    assert rows[names[0]].claimed_by == run_id  # the dead run is named as the one that fetched it
    assert uuid.UUID(run_id)
