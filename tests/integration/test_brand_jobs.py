"""Brand data collection and scoring (seed 003) against PostgreSQL and the collectors sandbox."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from core.brands import repo, scoring
from core.brands.models import AnswerBrandScore, BrandScoreAggregate, CollectorResult, JobRun
from core.db import session_scope
from core.errors import JobRunFailed
from flows.brands import brand_job
from tasks.brands import scores_of
from tests.factories import history_rows

BRAND, COMPETITORS = "Acme CRM", ["Globex", "Initech", "Umbrella", "Hooli"]
TOPICS = {"crm software": ["best CRM for a small business", "which CRM has the best support"],
          "pricing": ["cheapest CRM with email automation"]}


def make_brand(url: str, topics: dict[str, list[str]] | None = None) -> tuple[str, str]:
    customer = uuid.uuid4()
    with session_scope(url) as session:
        brand = repo.add_brand(session, customer_id=customer, name=BRAND, competitors=COMPETITORS,
                               topics=TOPICS if topics is None else topics)
        return str(brand.id), str(customer)


def runs(url: str) -> list[JobRun]:
    with session_scope(url) as session:
        return list(session.execute(select(JobRun).order_by(JobRun.created_at)).scalars())


def answers(url: str) -> list[CollectorResult]:
    with session_scope(url) as session:
        return list(session.execute(select(CollectorResult).order_by(CollectorResult.collected_at)).scalars())


async def test_collection_then_scoring_stores_answers_scores_and_the_run(brand_env):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    result = await brand_job(brand_id, customer_id, "data_collection_and_scoring",
                             metadata={"collectors": ["chatgpt", "google_aio", "perplexity"], "parallel": True})
    assert result.status == "SUCCESS"

    [run] = runs(url)
    assert (run.status, run.attempts, run.error_message) == ("completed", 1, None)
    collected, scored = run.metrics["data_collection"], run.metrics["scoring"]
    assert (collected["queries_executed"], collected["successful_executions"], collected["failed_executions"]) == (3, 9, 0)
    assert scored["answers_position_scored"] == scored["answers_sentiment_scored"] == 9

    stored = answers(url)
    assert len(stored) == 9 and {a.status for a in stored} == {"completed"}
    objects = Path(brand_env["STORAGE_URL"].removeprefix("file://"))
    for answer in stored:  # the raw JSON is in object storage, under the run
        raw = json.loads((objects / answer.raw_key).read_text())
        assert answer.raw_key.startswith(f"brands/{brand_id}/{run.id}/") and raw
        assert answer.citations and all("www." not in c["domain"] for c in answer.citations)

    # The aggregates agree with the rules applied by hand to the stored answers.
    tracked = [BRAND, *COMPETITORS]
    mentioning = [a for a in stored if scoring.positions(a.answer_text, tracked)[BRAND] is not None]
    first = [a for a in stored if scoring.positions(a.answer_text, tracked)[BRAND] == 1]
    own = next(s for s in scores_of(brand_id) if s["own"])
    assert own["visibility"] == pytest.approx(len(mentioning) / 9)
    assert own["first_mention_rate"] == pytest.approx(len(first) / 9)
    total = sum(scoring.count_mentions(a.answer_text, b) for a in stored for b in tracked)
    assert own["share_of_voice"] == pytest.approx(sum(scoring.count_mentions(a.answer_text, BRAND) for a in stored) / total)
    assert len(scores_of(brand_id)) == 5

    [history] = history_rows(url)
    assert (history.job_name, history.status, history.successful_count) == (
        "brand_data_collection_and_scoring", "SUCCESS", 9)


async def test_a_failed_collection_skips_scoring_and_fails_the_run(brand_env, collectors_sandbox, smtp_sink):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    collectors_sandbox.update_knobs(fail_collectors=["chatgpt", "perplexity"])
    with pytest.raises(JobRunFailed, match="all 6 executions failed"):
        await brand_job(brand_id, customer_id, "data_collection_and_scoring",
                        metadata={"collectors": ["chatgpt", "perplexity"]})
    [run] = runs(url)
    assert run.status == "failed" and "CollectionFailed: all 6 executions failed" in run.error_message
    assert run.metrics["data_collection"]["failed_executions"] == 6
    assert {a.status for a in answers(url)} == {"failed"} and all("ServerError" in a.error for a in answers(url))
    with session_scope(url) as session:  # scoring never ran
        assert session.execute(select(func.count()).select_from(AnswerBrandScore)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(BrandScoreAggregate)).scalar_one() == 0
    assert history_rows(url)[0].status == "FAILED"
    [mail] = [m for m in smtp_sink.messages if "brand_data_collection_and_scoring" in m["Subject"]]
    assert "FAILED" in mail["Subject"] and "pplx-sandbox" not in mail.as_string()


async def test_a_failed_attempt_is_retried_with_backoff_and_asks_only_what_is_missing(
        brand_env, collectors_sandbox, monkeypatch):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    collectors_sandbox.update_knobs(fail_collectors=["google_aio"])
    waits: list[float] = []

    async def fake_pause(seconds: float) -> None:  # mock time: the collector recovers while we wait
        waits.append(seconds)
        collectors_sandbox.update_knobs(fail_collectors=[])

    monkeypatch.setattr("tasks.brands.attempts.pause", fake_pause)
    monkeypatch.setenv("BRAND_MAX_RETRIES", "2")
    monkeypatch.setenv("BRAND_RETRY_BACKOFF_SECONDS", "30")
    from tests.conftest import reload_settings
    reload_settings()

    result = await brand_job(brand_id, customer_id, "data_collection", metadata={"collectors": ["google_aio"]})
    assert result.success and waits == [30]
    [run] = runs(url)
    assert (run.status, run.attempts) == ("completed", 2)
    assert run.metrics["successful_executions"] == 3
    # The failed answers of attempt 1 were replaced in place: one row per (query, collector).
    assert sorted(a.status for a in answers(url)) == ["completed"] * 3


async def test_a_brand_without_active_queries_fails_at_once_without_retrying(brand_env, monkeypatch):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url, topics={})
    monkeypatch.setenv("BRAND_MAX_RETRIES", "3")
    from tests.conftest import reload_settings
    reload_settings()
    with pytest.raises(JobRunFailed, match="has no active queries"):
        await brand_job(brand_id, customer_id, "data_collection_and_scoring")
    [run] = runs(url)
    assert (run.status, run.attempts) == ("failed", 1)


async def test_partial_collection_still_scores_and_reports_the_failures(brand_env, collectors_sandbox):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    collectors_sandbox.update_knobs(fail_collectors=["perplexity"])
    result = await brand_job(brand_id, customer_id, "data_collection_and_scoring",
                             metadata={"collectors": ["chatgpt", "perplexity"]})
    assert result.status == "PARTIAL" and result.metrics.items_created == 3
    [run] = runs(url)
    assert run.status == "completed" and run.metrics["scoring"]["answers_position_scored"] == 3


async def test_a_run_that_exceeds_its_timeout_fails_with_the_reason(brand_env, collectors_sandbox):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    collectors_sandbox.update_knobs(latency_ms=1500)
    with pytest.raises(JobRunFailed, match="RunTimedOut: timed out after 0.5 s"):
        await brand_job(brand_id, customer_id, "data_collection",
                        metadata={"collectors": ["chatgpt"], "timeoutSeconds": 0.5})
    [run] = runs(url)
    assert run.status == "failed" and run.error_message == "timed out after 0.5 s"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"metadata": {"collectors": ["bard"]}}, "metadata.collectors: Value error, unknown collector(s) 'bard'"),
    ({"metadata": {"positionLimit": 0}}, "metadata.positionLimit"),
    ({"metadata": {"positonLimit": 5}}, "metadata.positonLimit: Extra inputs are not permitted"),
    ({"job_type": "scrape"}, "job_type: unknown job type 'scrape'"),
    ({"brand_id": str(uuid.uuid4())}, "brand_id: no brand"),
    ({"customer_id": str(uuid.uuid4())}, "customer_id: brand"),
    ({"brand_id": "not-a-uuid"}, "brand_id: 'not-a-uuid' is not a UUID"),
])
async def test_bad_parameters_fail_the_run_naming_the_field_and_write_nothing(brand_env, kwargs, message):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    params = {"brand_id": brand_id, "customer_id": customer_id, "job_type": "data_collection"} | kwargs
    with pytest.raises(JobRunFailed) as failed:
        await brand_job(**params)
    assert message in str(failed.value)
    assert runs(url) == [] and answers(url) == []


async def test_limits_are_honoured_and_rescoring_creates_no_duplicates(brand_env):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    await brand_job(brand_id, customer_id, "data_collection", metadata={"collectors": ["chatgpt", "perplexity"]})
    first = await brand_job(brand_id, customer_id, "scoring", metadata={"positionLimit": 4, "sentimentLimit": 2})
    scored = first.metrics.custom["result"]
    assert (scored["answers_position_scored"], scored["answers_sentiment_scored"]) == (4, 2)
    second = await brand_job(brand_id, customer_id, "scoring", metadata={"positionLimit": 50, "sentimentLimit": 50})
    scored = second.metrics.custom["result"]
    assert (scored["answers_position_scored"], scored["answers_sentiment_scored"]) == (2, 4)
    third = await brand_job(brand_id, customer_id, "scoring")
    assert third.metrics.custom["result"]["answers_position_scored"] == 0
    with session_scope(url) as session:
        dupes = session.execute(text(
            "SELECT collector_result_id, brand_name FROM answer_brand_scores "
            "GROUP BY collector_result_id, brand_name HAVING COUNT(*) > 1")).all()
        assert dupes == []
        assert session.execute(text("SELECT COUNT(*) FROM answer_brand_scores")).scalar_one() == 6 * 5
        assert session.execute(text(
            "SELECT COUNT(*) FROM answer_brand_scores WHERE sentiment_label IS NULL AND mentions > 0")).scalar_one() == 0


async def test_runs_of_one_brand_never_overlap(brand_env, collectors_sandbox):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    collectors_sandbox.update_knobs(latency_ms=150)
    meta = {"collectors": ["chatgpt"]}
    await asyncio.gather(brand_job(brand_id, customer_id, "data_collection", metadata=meta),
                         brand_job(brand_id, customer_id, "data_collection", metadata=meta))
    by_run: dict[uuid.UUID, list[CollectorResult]] = {}
    for answer in answers(url):
        by_run.setdefault(answer.job_run_id, []).append(answer)
    a, b = sorted(by_run.values(), key=lambda rows: min(r.collected_at for r in rows))
    assert len(a) == len(b) == 3
    assert max(r.collected_at for r in a) < min(r.collected_at for r in b)  # brandConcurrency = 1


async def test_a_run_cancelled_mid_collection_is_recorded_cancelled(brand_env, collectors_sandbox):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    collectors_sandbox.update_knobs(latency_ms=3000)
    running = asyncio.create_task(brand_job(brand_id, customer_id, "data_collection",
                                            metadata={"collectors": ["chatgpt"]}))
    for _ in range(200):
        if [r.status for r in runs(url)] == ["processing"]:
            break
        await asyncio.sleep(0.05)
    running.cancel()
    with pytest.raises(BaseException):  # noqa: B017 - whatever the engine turns the cancellation into
        await running
    [run] = runs(url)
    assert run.status == "cancelled" and run.finished_at is not None


async def test_a_run_left_open_by_a_killed_flow_run_is_closed_by_the_next_run(brand_env):
    from datetime import timedelta

    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    from core.db.types import utcnow
    from flows.brands import data_collection

    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    async with get_client() as client:  # a flow run that Prefect saw crash (its process was SIGKILLed)
        dead = await client.create_flow_run(data_collection, parameters={"brand_id": brand_id, "job_run_id": "x"})
        await client.set_flow_run_state(dead.id, Crashed(message="process exited with -9"), force=True)
    with session_scope(url) as session:
        stale = repo.create_job_run(session, brand_id=uuid.UUID(brand_id), customer_id=uuid.UUID(customer_id),
                                    job_type="data_collection", metadata={})
        stale.status, stale.flow_run_id = "processing", str(dead.id)
        stale.created_at = utcnow() - timedelta(minutes=5)
        stale_id = stale.id

    await brand_job(brand_id, customer_id, "data_collection", metadata={"collectors": ["chatgpt"]})
    by_id = {r.id: r for r in runs(url)}
    assert by_id[stale_id].status == "failed"
    assert "ended CRASHED (process exited with -9)" in by_id[stale_id].error_message
    assert [r.status for i, r in by_id.items() if i != stale_id] == ["completed"]


async def test_a_partial_brand_run_is_mailed_by_default(brand_env, collectors_sandbox, smtp_sink):
    """Issue 12 item 15: PARTIAL runs are not silent, brand jobs included."""
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    smtp_sink.clear()
    collectors_sandbox.update_knobs(fail_collectors=["perplexity"])
    result = await brand_job(brand_id, customer_id, "data_collection", metadata={"collectors": ["chatgpt", "perplexity"]})
    assert result.status == "PARTIAL"
    [mail] = [m for m in smtp_sink.messages if "brand_data_collection" in m["Subject"]]
    assert "PARTIAL" in mail["Subject"] and "perplexity" in mail.get_content()


def answer_row(run_id: uuid.UUID, brand_id: str, query_id: uuid.UUID, status: str = "completed") -> dict:
    from core.db.types import utcnow

    return {"id": uuid.uuid4(), "job_run_id": run_id, "brand_id": uuid.UUID(brand_id), "query_id": query_id,
            "collector": "chatgpt", "query_text": "q", "citations": [], "collected_at": utcnow(),
            "positions_scored_at": None, "sentiment_scored_at": None, "status": status, "answer_text": "a",
            "raw_key": None, "latency_ms": 1, "api_calls": 1, "error": None}


async def test_answers_that_arrive_together_commit_together_and_each_write_waits_for_its_commit(brand_env):
    from tasks.brands import AnswerWriter

    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    with session_scope(url) as session:
        run_id = repo.create_job_run(session, brand_id=uuid.UUID(brand_id), customer_id=uuid.UUID(customer_id),
                                     job_type="data_collection", metadata={}).id
    writer = AnswerWriter(url)
    one_at_a_time = [uuid.uuid4() for _ in range(3)]
    for query_id in one_at_a_time:  # sequential mode: one answer, one transaction, committed on return
        await writer.write(answer_row(run_id, brand_id, query_id))
        assert query_id in {a.query_id for a in answers(url)}
    assert writer.transactions == 3
    together = [uuid.uuid4() for _ in range(12)]
    await asyncio.gather(*(writer.write(answer_row(run_id, brand_id, q)) for q in together))
    assert {a.query_id for a in answers(url)} == {*one_at_a_time, *together}
    assert 3 < writer.transactions < 3 + 12  # grouped, never waiting for more

    # A failing transaction fails each of its answers; the writer carries on.
    bad = answer_row(uuid.uuid4(), brand_id, uuid.uuid4())  # no such job run: foreign key
    with pytest.raises(Exception, match="foreign key|FOREIGN KEY|ForeignKey"):
        await writer.write(bad)
    await writer.write(answer_row(run_id, brand_id, uuid.uuid4()))
    # An answer handed over is committed even when its caller is cancelled.
    last = uuid.uuid4()
    pending = asyncio.create_task(writer.write(answer_row(run_id, brand_id, last)))
    await asyncio.sleep(0)
    pending.cancel()
    await writer.close()
    assert last in {a.query_id for a in answers(url)} and len(answers(url)) == 3 + 12 + 2
