"""A killed run's CRASHED history row counts what the run did before it died.

A real profile-fetcher run, in its own process on the test's Prefect server, is SIGKILLed
mid-batch after it completed some entries; Prefect marks it Crashed (what the zombie
automation does) and ``release-crashed-run`` releases it. Before, the row said 0 of
everything however many entries the run had completed: its counts lived only in the dead
process. They come from what the run left durably: each entry it finished names it
(``claimed_by``, written in the batch's settlement transaction), and its release adds what it
adopted and what it billed.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL
from prefect.states import Crashed

from core.brands import repo as brands_repo
from core.brands.models import JobRun
from core.db import session_scope
from core.db.types import utcnow
from core.runs import history
from core.runs.history import RunRecord
from flows.recovery import release_crashed_run
from tests.conftest import reload_settings
from tests.factories import entry_rows, history_rows, ledger, seed_entries, set_quota, urns
from tests.faults import kill_fetcher_mid_batch

KILL_AFTER = 40  # completed entries


async def test_a_killed_runs_crashed_row_counts_what_it_completed(app_env, rapidapi_sandbox, monkeypatch, tmp_path):
    monkeypatch.setenv("NOTIFY_POLICY", "never")
    reload_settings()
    url = app_env["DATABASE_URL"]
    names = urns(200, prefix="ACoAAKilled")
    seed_entries(url, names)
    set_quota(url, limit=1000)
    rapidapi_sandbox.update_knobs(latency_ms=200)
    env = {**os.environ, **app_env, "NOTIFY_POLICY": "never", "RAPIDAPI_CONCURRENCY": "5",
           "PREFECT_API_URL": str(PREFECT_API_URL.value())}  # the test's server: the run is a real flow run
    await kill_fetcher_mid_batch(url, env, after_completed=KILL_AFTER, settle=0.3)  # mid-batch
    at_kill = entry_rows(url).values()
    [run_id] = {e.claimed_by for e in at_kill if e.claimed_by}  # the only run there was
    statuses = Counter(e.status for e in at_kill)
    assert statuses["FETCHING"] and statuses["COMPLETED"] >= KILL_AFTER, statuses
    async with get_client() as client:  # what the zombie automation does after 90 s of silence
        await client.set_flow_run_state(uuid.UUID(run_id), Crashed(message="no heartbeat for 90 s"), force=True)

    released = await release_crashed_run(run_id)

    assert released["released"] is True and released["entries_completed_before"] == statuses["COMPLETED"]
    rows = entry_rows(url)
    assert not [e for e in rows.values() if e.status == "FETCHING"]
    by_run = [e for e in rows.values() if e.claimed_by == run_id and e.status == "COMPLETED"]
    [crashed] = [h for h in history_rows(url) if h.flow_run_id == run_id]
    assert crashed.status == "CRASHED"
    # What it completed before it died, plus what its release adopted from the objects it stored.
    assert crashed.successful_count == statuses["COMPLETED"] + released["entries_adopted"] == len(by_run)
    assert (crashed.total_processed, crashed.failed_count) == (len(by_run), 0)
    assert (crashed.items_created, crashed.items_updated) == (len(by_run), 0)  # every profile was new
    # One call per request it sent: those of its settled batches and those its release billed,
    # which is what the ledger holds (the sandbox never errs, so no retries).
    assert crashed.api_calls_made == ledger(url).calls_used > 0
    assert ledger(url).reserved == 0


@flow(name="brand-job")
def _brand_job(job_type: str = "data_collection") -> None:
    """Only to own a flow run named like the real one."""


@pytest.mark.parametrize("overview_first", [False, True], ids=["release-writes-the-row", "overview-wrote-it"])
async def test_a_dead_brand_runs_crashed_row_counts_the_answers_it_committed(app_env, overview_first):
    """A brand run commits each answer as it arrives, under its job run (which names its flow
    run): a dead one's row counts them, and the calls they took; also when the operations
    overview recorded the crash (with no counts) before the release came."""
    url = app_env["DATABASE_URL"]
    async with get_client() as client:
        await client.create_flow(_brand_job)
        run = await client.create_flow_run(_brand_job, parameters={"job_type": "data_collection"})
        await client.set_flow_run_state(run.id, Crashed(message="no heartbeat for 90 s"), force=True)
    run_id = str(run.id)
    with session_scope(url) as session:
        brand = brands_repo.add_brand(session, customer_id=uuid.uuid4(), name="Acme",
                                      topics={"t": [f"query {i}" for i in range(5)]})
        job = brands_repo.create_job_run(session, brand_id=brand.id, customer_id=brand.customer_id,
                                         job_type="data_collection", metadata={})
        brands_repo.start_job_run(session, job.id, run_id)
        # 3 answered (1 call each), 1 failed after 2 calls, 1 deferred after 1; no row for the rest.
        outcomes = [("completed", 1)] * 3 + [("failed", 2), ("deferred", 1)]
        for (query_id, text, _), (status, calls) in zip(brands_repo.active_queries(session, brand.id), outcomes,
                                                        strict=True):
            brands_repo.save_answer(session, {
                "id": uuid.uuid4(), "job_run_id": job.id, "brand_id": brand.id, "query_id": query_id,
                "collector": "openai", "query_text": text, "status": status, "answer_text": None,
                "citations": [], "raw_key": None, "latency_ms": 5, "api_calls": calls, "error": None,
                "collected_at": utcnow(), "positions_scored_at": None, "sentiment_scored_at": None,
                "not_before": None})
        job_id = job.id
        if overview_first:  # what deployments.control.runs.record_crashed writes
            now = utcnow()
            history.record_run(session, RunRecord(
                job_name="brand_data_collection", job_type="brand-job", status="CRASHED", started_at=now,
                finished_at=now, flow_run_id=run_id, error_summary="flow run crashed: no heartbeat for 90 s"))

    released = await release_crashed_run(run_id)

    assert released["brand_job_runs_closed"] == 1
    [crashed] = [h for h in history_rows(url) if h.flow_run_id == run_id]
    assert (crashed.job_name, crashed.status) == ("brand_data_collection", "CRASHED")
    assert (crashed.total_processed, crashed.successful_count, crashed.failed_count) == (5, 3, 1)
    assert (crashed.items_created, crashed.api_calls_made) == (3, 6)
    with session_scope(url) as session:
        assert session.get(JobRun, job_id).status == "failed"
