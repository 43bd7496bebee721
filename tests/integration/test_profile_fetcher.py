"""profile_fetcher end to end on PostgreSQL, the RapidAPI sandbox, local objects and SMTP."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from core.db import session_scope
from core.db.engine import get_engine
from core.errors import JobRunFailed
from core.profiles import quota
from core.profiles.models import ApiQuota, CronJobConfig, ProfileEntry
from core.settings import get_settings
from flows.profiles import profile_fetcher, quota_reset, requeue_failed
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


def objects(env: dict[str, str]) -> list[Path]:
    root = Path(env["STORAGE_URL"].removeprefix("file://"))
    return sorted(p for p in root.rglob("*.json")) if root.exists() else []


async def test_happy_path_rows_objects_history_and_email(app_env, rapidapi_sandbox, smtp_sink):
    url = app_env["DATABASE_URL"]
    names = urns(12)
    seed_entries(url, names)
    set_quota(url, limit=100)

    summary = await profile_fetcher(batch_size=5)

    assert summary.status == "SUCCESS" and summary.success
    assert (summary.metrics.items_processed, summary.metrics.items_created,
            summary.metrics.items_updated) == (12, 12, 0)
    rows = entry_rows(url)
    assert {r.status for r in rows.values()} == {"COMPLETED"}
    assert all(r.fetch_count == 1 and r.last_fetched_at is not None for r in rows.values())
    profiles = profile_rows(url)
    assert set(profiles) == set(names)
    p = profiles[names[0]]
    assert p.raw_s3_key.startswith(f"profiles/{names[0]}-") and p.raw_s3_key.endswith("-raw.json")
    assert p.cleaned_s3_key == p.raw_s3_key.replace("-raw.json", "-cleaned.json")
    root = Path(app_env["STORAGE_URL"].removeprefix("file://"))
    cleaned = json.loads((root / p.cleaned_s3_key).read_text())
    assert set(cleaned) == {"urn", "username", "firstName", "lastName", "headline", "geo",
                            "educations", "fullPositions", "skills"}
    assert cleaned["firstName"] == p.first_name
    raw = json.loads((root / p.raw_s3_key).read_text())
    assert raw["urn"] == names[0] and "summary" in raw
    assert len(objects(app_env)) == 24

    [run] = history_rows(url)
    assert (run.status, run.total_processed, run.successful_count, run.failed_count,
            run.api_calls_made) == ("SUCCESS", 12, 12, 0, 12)
    assert run.quota_remaining == 88 and run.flow_run_id
    assert run.metrics["batches"] == 3
    q = ledger(url)
    assert (q.calls_used, q.reserved) == (12, 0)

    [mail] = smtp_sink.messages
    assert "profile_fetcher SUCCESS" in mail["Subject"] and mail["To"] == "ops@example.com"
    body = mail.get_content()
    assert "Successful:        12" in body and "API calls made:    12" in body
    assert "sandbox-key" not in mail.as_string()


async def test_429_then_success_and_retries_exhausted(app_env, rapidapi_sandbox, smtp_sink):
    url = app_env["DATABASE_URL"]
    ok, flaky, hopeless = "ACoAAFlakyOk", "ACoAAFlaky2", "ACoAAHopeless"
    seed_entries(url, [ok, flaky, hopeless])
    rapidapi_sandbox.update_knobs(rate_limit_first={ok: 1, flaky: 3}, rate_limit_always=[hopeless],
                                  retry_after_seconds=0)

    summary = await profile_fetcher(batch_size=10)

    rows = entry_rows(url)
    assert rows[ok].status == rows[flaky].status == "COMPLETED"
    # "Later" is not "never": back to PENDING, not before rapidapi.deferSeconds from now.
    assert rows[hopeless].status == "PENDING" and rows[hopeless].not_before is not None
    assert "deferred: rate limited (HTTP 429) after 3 retries" in rows[hopeless].error_message
    assert summary.status == "PARTIAL" and summary.metrics.custom["deferred"] == 1
    [run] = history_rows(url)
    # 2 + 4 + 4 attempts: every attempt is an API call; only the two 200s use quota.
    assert run.api_calls_made == 10
    assert ledger(url).calls_used == 2
    assert "1 entries deferred" in run.error_summary  # its row says why: "deferred: rate limited ..."
    assert "1 entries deferred" in smtp_sink.messages[0].get_content()


async def test_quota_exhausted_before_the_run_makes_no_api_call(app_env, rapidapi_sandbox):
    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(3))
    set_quota(url, limit=5, used=5)
    before = rapidapi_sandbox.stats()["total_requests"]

    summary = await profile_fetcher()

    assert summary.status == "QUOTA_EXCEEDED"
    assert rapidapi_sandbox.stats()["total_requests"] == before
    assert {r.status for r in entry_rows(url).values()} == {"PENDING"}
    [run] = history_rows(url)
    assert (run.status, run.api_calls_made, run.quota_remaining) == ("QUOTA_EXCEEDED", 0, 0)


async def test_quota_running_out_mid_run_is_partial(app_env):
    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(10))
    set_quota(url, limit=7)

    summary = await profile_fetcher(batch_size=3)

    statuses = [r.status for r in entry_rows(url).values()]
    assert statuses.count("COMPLETED") == 7 and statuses.count("PENDING") == 3
    assert summary.status == "PARTIAL"
    [run] = history_rows(url)
    assert "monthly quota exhausted after 7 entries" in run.error_summary
    q = ledger(url)
    assert (q.calls_used, q.reserved) == (7, 0)


async def test_respect_quota_false_goes_on_with_the_requested_batch(app_env):
    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(6))
    set_quota(url, limit=2, used=2)

    summary = await profile_fetcher(batch_size=4, respect_quota=False)

    assert summary.status == "SUCCESS"
    assert {r.status for r in entry_rows(url).values()} == {"COMPLETED"}
    assert ledger(url).calls_used == 8  # the overrun is recorded, not hidden


async def test_provider_monthly_quota_stops_the_run_and_syncs_the_ledger(app_env, rapidapi_sandbox):
    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(6))
    set_quota(url, limit=100)
    rapidapi_sandbox.update_knobs(monthly_limit=2, monthly_used=0)

    summary = await profile_fetcher(batch_size=1)

    statuses = [r.status for r in entry_rows(url).values()]
    assert statuses.count("COMPLETED") == 2 and statuses.count("PENDING") == 4
    assert "FAILED" not in statuses
    assert summary.status == "PARTIAL"
    assert ledger(url).calls_used == 100


async def test_auth_error_fails_the_run_and_returns_entries(app_env, monkeypatch):
    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(4))
    monkeypatch.setenv("RAPIDAPI_KEY", "wrong-key")
    reload_settings()

    with pytest.raises(JobRunFailed, match="HTTP 401"):
        await profile_fetcher(batch_size=4)

    assert {r.status for r in entry_rows(url).values()} == {"PENDING"}
    [run] = history_rows(url)
    assert run.status == "FAILED" and "401" in run.error_summary
    assert "wrong-key" not in (run.error_summary or "") + json.dumps(run.metrics)


async def test_malformed_json_and_missing_profiles_fail_only_their_entry(app_env, rapidapi_sandbox):
    url = app_env["DATABASE_URL"]
    bad, missing, good = "ACoAABroken", "ACoAAGone", "ACoAAFine"
    seed_entries(url, [bad, missing, good])
    rapidapi_sandbox.update_knobs(malformed_urns=[bad], missing_urns=[missing])

    await profile_fetcher()

    rows = entry_rows(url)
    assert rows[good].status == "COMPLETED"
    assert rows[bad].status == "FAILED" and "malformed JSON" in rows[bad].error_message
    assert rows[missing].status == "FAILED" and "404" in rows[missing].error_message
    assert set(profile_rows(url)) == {good}


async def test_storage_down_stops_spending_and_gives_every_entry_back(app_env, rapidapi_sandbox, monkeypatch,
                                                                       tmp_path):
    """Issue 19 item 4: our side failing is not the entries' fault (PENDING, not FAILED), and
    after a few failures in a row the run stops fetching answers it cannot keep."""
    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(30))
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the object folder should be")
    monkeypatch.setenv("STORAGE_URL", blocker.as_uri())
    monkeypatch.setenv("RAPIDAPI_CONCURRENCY", "1")  # one answer at a time: the stop comes after 3
    reload_settings()

    with pytest.raises(JobRunFailed, match="storage unavailable: cannot write"):
        await profile_fetcher(batch_size=5)

    rows = entry_rows(url)
    assert {r.status for r in rows.values()} == {"PENDING"}  # every one back, none FAILED
    assert profile_rows(url) == {}
    billed = rapidapi_sandbox.stats()["monthly_used"]
    assert billed == 3  # three answers lost in a row, then no more requests
    q = ledger(url)
    assert (q.calls_used, q.reserved) == (billed, 0)  # the unspent reservation is given back
    [run] = history_rows(url)
    assert run.status == "FAILED" and "storage unavailable" in run.error_summary
    assert history_rows(url)[0].status == "FAILED"


async def test_refetch_upserts_the_same_profile_row(app_env):
    url = app_env["DATABASE_URL"]
    [urn] = urns(1)
    seed_entries(url, [urn])
    await profile_fetcher()
    first = profile_rows(url)[urn]
    with session_scope(url) as session:
        session.execute(update(ProfileEntry).values(status="PENDING"))
    await asyncio.sleep(1.1)  # a new unix second gives new object keys
    second = await profile_fetcher()

    assert (second.metrics.items_created, second.metrics.items_updated) == (0, 1)
    assert history_rows(url)[-1].items_updated == 1

    rows = profile_rows(url)
    assert len(rows) == 1
    again = rows[urn]
    assert again.id == first.id and again.first_name == first.first_name
    assert again.raw_s3_key != first.raw_s3_key
    assert entry_rows(url)[urn].fetch_count == 2


async def test_failed_entries_stay_failed_until_requeued(app_env, rapidapi_sandbox):
    url = app_env["DATABASE_URL"]
    urn = "ACoAAGoneForNow"
    seed_entries(url, [urn])
    rapidapi_sandbox.update_knobs(missing_urns=[urn])
    with pytest.raises(JobRunFailed):
        await profile_fetcher()
    rapidapi_sandbox.update_knobs(missing_urns=[])
    await profile_fetcher()
    assert entry_rows(url)[urn].status == "FAILED"  # not retried automatically

    assert await requeue_failed(urns=[urn]) == 1
    await profile_fetcher()
    assert entry_rows(url)[urn].status == "COMPLETED"


async def test_quota_reset_opens_the_month(app_env):
    url = app_env["DATABASE_URL"]
    set_quota(url, limit=10, used=10)
    result = await quota_reset(monthly_limit=50, reset_usage=True)
    assert result.metrics.custom["quota_remaining"] == 50
    assert (ledger(url).monthly_limit, ledger(url).calls_used) == (50, 0)
    assert history_rows(url)[-1].job_name == "quota_reset"


def ledger_rows(url: str) -> dict[str, ApiQuota]:
    with session_scope(url) as session:
        return {q.period: q for q in session.execute(select(ApiQuota)).scalars()}


async def test_quota_period_follows_a_mid_month_reset_schedule(app_env, monkeypatch):
    """A plan renewing on the 15th: Jan 20 and Feb 10 spend one period; Feb 15 starts a new
    one with the full limit (the clock is the only thing mocked)."""
    url = app_env["DATABASE_URL"]
    monkeypatch.setenv("CRON_QUOTA_RESET_SCHEDULE", "0 0 15 * *")
    monkeypatch.setenv("RAPIDAPI_MONTHLY_QUOTA", "5")
    reload_settings()
    clock = {"now": datetime(2026, 1, 20, 12, 0, tzinfo=UTC)}
    monkeypatch.setattr(quota, "utcnow", lambda: clock["now"])
    seed_entries(url, urns(12))

    first = await profile_fetcher(batch_size=3, max_batches=1)
    assert first.status == "SUCCESS" and first.metrics.items_processed == 3

    clock["now"] = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)  # a new month, not a new period
    off_schedule = await quota_reset()  # run by hand mid-period: re-limits, does not reset
    assert off_schedule.metrics.custom["period"] == "2026-01-15T00:00Z"
    second = await profile_fetcher(batch_size=3)
    assert second.status == "PARTIAL" and second.metrics.items_processed == 2
    assert {p: (q.monthly_limit, q.calls_used, q.reserved) for p, q in ledger_rows(url).items()} == {
        "2026-01-15T00:00Z": (5, 5, 0)}

    clock["now"] = datetime(2026, 2, 15, 0, 0, tzinfo=UTC)  # the scheduled reset fires
    reset = await quota_reset()
    assert reset.metrics.custom["period"] == "2026-02-15T00:00Z"
    assert reset.metrics.custom["quota_remaining"] == 5
    third = await profile_fetcher(batch_size=3)
    assert third.metrics.items_processed == 5
    assert {p: (q.calls_used, q.reserved) for p, q in ledger_rows(url).items()} == {
        "2026-01-15T00:00Z": (5, 0), "2026-02-15T00:00Z": (5, 0)}
    assert history_rows(url)[-1].quota_remaining == 0


async def test_quota_period_follows_the_quota_reset_row(app_env):
    """The quota_reset row of cron_job_configs (schedule, timezone) is what the ledger follows."""
    url = app_env["DATABASE_URL"]
    await quota_reset(monthly_limit=7)
    with session_scope(url) as session:
        session.execute(update(CronJobConfig).where(CronJobConfig.name == "quota_reset")
                        .values(schedule="0 6 * * 1", timezone="Asia/Tokyo"))
    now = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)  # a Thursday
    with session_scope(url) as session:
        assert quota.current_period(session, get_settings().cron, now) == "2026-03-01T21:00Z"


def assert_failed_run_recorded(url: str, smtp_sink: object, error: str) -> None:
    """The run's history row says FAILED with ``error``, and its e-mail went out."""
    [run] = history_rows(url)
    assert run.status == "FAILED" and error in run.error_summary
    [mail] = smtp_sink.messages  # type: ignore[attr-defined]
    assert "profile_fetcher FAILED" in mail["Subject"] and error in mail.get_content()


async def test_a_misconfigured_store_fails_the_run_before_it_claims_anything(
    app_env, moto_s3, monkeypatch, smtp_sink, rapidapi_sandbox,
):
    """S3 configured with a misspelt region: botocore raises (not one of our errors) when the
    fetch stage opens the store, before it claims a batch. The run writes its history row and
    e-mail and fails; no entry was touched, no call reserved or made. (An unexpected error
    inside a batch, after its claim: the database-error test below.)"""
    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(4))
    set_quota(url, limit=50)
    for key, value in {"STORAGE_URL": "s3://profiles-bucket/linkedin", "AWS_ENDPOINT_URL": moto_s3,
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu west 1"}.items():
        monkeypatch.setenv(key, value)
    reload_settings()

    with pytest.raises(JobRunFailed, match="unexpected error: InvalidRegionError"):
        await profile_fetcher(batch_size=3)

    rows = entry_rows(url)
    assert {(r.status, r.claimed_by, r.error_message) for r in rows.values()} == {("PENDING", None, None)}
    q = ledger(url)
    assert (q.reserved, q.calls_used) == (0, 0)
    assert_failed_run_recorded(url, smtp_sink, "InvalidRegionError")
    [run] = history_rows(url)
    assert (run.total_processed, run.quota_remaining) == (0, None)
    assert rapidapi_sandbox.stats()["total_requests"] == 0


@pytest.fixture
def ledger_fails_once(app_env):
    """A real database error: the first two UPDATEs of the ledger that change ``calls_used``
    raise inside PostgreSQL (the batch's one write with its settlement, rolled back whole,
    then the settlement after the entry-by-entry fallback); later ones go through."""
    engine = get_engine(app_env["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text("CREATE SEQUENCE ledger_fault_seq"))
        conn.execute(text("""
            CREATE FUNCTION ledger_fault() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.calls_used <> OLD.calls_used THEN
                    IF nextval('ledger_fault_seq') <= 2 THEN
                        RAISE EXCEPTION 'could not extend file: No space left on device';
                    END IF;
                END IF;
                RETURN NEW;
            END $$"""))
        conn.execute(text("CREATE TRIGGER ledger_fault BEFORE UPDATE ON api_quota_ledger"
                          " FOR EACH ROW EXECUTE FUNCTION ledger_fault()"))
    yield
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER ledger_fault ON api_quota_ledger"))
        conn.execute(text("DROP FUNCTION ledger_fault()"))
        conn.execute(text("DROP SEQUENCE ledger_fault_seq"))


async def test_a_database_error_after_the_fetches_is_recorded_mailed_and_settled(
    app_env, ledger_fails_once, smtp_sink, monkeypatch,
):
    monkeypatch.setenv("RAPIDAPI_BATCHES_IN_FLIGHT", "1")  # the faults hit the first batch's writes in order
    reload_settings()
    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(5))
    set_quota(url, limit=50)

    with pytest.raises(JobRunFailed, match="No space left on device"):
        await profile_fetcher(batch_size=2)

    statuses = sorted(r.status for r in entry_rows(url).values())
    assert statuses == ["COMPLETED", "COMPLETED", "PENDING", "PENDING", "PENDING"]
    assert len(profile_rows(url)) == 2
    q = ledger(url)
    assert (q.reserved, q.calls_used) == (0, 2)
    assert_failed_run_recorded(url, smtp_sink, "No space left on device")
    [run] = history_rows(url)
    assert run.error_summary.startswith("unexpected error: ")
    assert "a batch of 2 failed: 2 completed, 0 failed, 0 re-queued" in run.error_summary
    assert (run.total_processed, run.successful_count, run.quota_remaining) == (2, 2, 48)


async def test_batches_overlap_in_a_pipeline_within_one_shared_concurrency(app_env, rapidapi_sandbox, monkeypatch):
    """Issue 13: the next batch is claimed and fetching while the previous one finishes, and
    all batches in flight share ``rapidapi.concurrency`` requests."""
    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(24))
    set_quota(url, limit=100)
    rapidapi_sandbox.update_knobs(latency_ms=40)
    monkeypatch.setenv("RAPIDAPI_CONCURRENCY", "4")
    monkeypatch.setenv("RAPIDAPI_BATCHES_IN_FLIGHT", "3")
    reload_settings()
    result = await profile_fetcher(batch_size=2)
    assert result is not None and result.status == "SUCCESS" and result.metrics.items_processed == 24
    stats = rapidapi_sandbox.stats()
    assert 2 < stats["max_in_flight"] <= 4, stats  # one batch of 2 alone never exceeds 2
    assert (ledger(url).reserved, ledger(url).calls_used) == (0, 24)


async def test_a_run_is_a_few_stage_tasks_and_request_marks_go_out_in_groups(app_env, rapidapi_sandbox, monkeypatch):
    """Issue 13: Prefect records one ``fetch-profiles`` task per ``rapidapi.entriesPerTask``
    entries, not one per batch, and the "request sent" marks of requests leaving together are
    committed in one statement; the ledger stays exact."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(25))
    set_quota(url, limit=100)
    rapidapi_sandbox.update_knobs(latency_ms=20)
    monkeypatch.setenv("RAPIDAPI_ENTRIES_PER_TASK", "10")
    monkeypatch.setenv("RAPIDAPI_CONCURRENCY", "8")
    reload_settings()
    engine = get_engine(url)
    with engine.begin() as conn:  # every row a mark sets, with the transaction that set it
        conn.execute(text("CREATE TABLE mark_log (txid bigint, entry_id bigint)"))
        conn.execute(text("""
            CREATE FUNCTION log_mark() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO mark_log VALUES (txid_current(), NEW.id); RETURN NEW; END $$"""))
        conn.execute(text("CREATE TRIGGER log_mark AFTER UPDATE OF requested_at ON profile_entries"
                          " FOR EACH ROW WHEN (NEW.requested_at IS NOT NULL) EXECUTE FUNCTION log_mark()"))
    try:
        result = await profile_fetcher(batch_size=4)
        with engine.begin() as conn:
            marked, groups = conn.execute(
                text("SELECT count(DISTINCT entry_id), count(DISTINCT txid) FROM mark_log")).one()
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER log_mark ON profile_entries"))
            conn.execute(text("DROP FUNCTION log_mark()"))
            conn.execute(text("DROP TABLE mark_log"))

    assert result is not None and result.status == "SUCCESS" and result.metrics.items_processed == 25
    assert {r.status for r in entry_rows(url).values()} == {"COMPLETED"}
    assert (ledger(url).reserved, ledger(url).calls_used) == (0, 25)
    assert rapidapi_sandbox.stats()["total_requests"] == 25
    async with get_client() as client:
        task_runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[result.flow_run_id])))
    stages = [t for t in task_runs if t.name.startswith("fetch-profiles")]
    # 12 + 12 + 1 entries: a stage stops claiming once it has claimed 10 or more.
    assert len(stages) == 3, [t.name for t in task_runs]
    assert marked == 25  # every request was marked before it left
    assert groups <= 13, groups  # 25 requests, sent 4 by 4 (the batch size): marks commit together
