"""Job queue, issue 13: batch mode, grouped writes, NOTIFY start, exactly once under kill -9."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Iterator

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterTaskRunId,
    LogFilter,
    LogFilterTaskRunId,
)
from prefect.exceptions import ObjectNotFound
from sqlalchemy import event, select, text

import tests.jobqueue_handlers as handlers
from core.db import session_scope
from core.db.engine import get_engine
from core.db.migrate import upgrade
from core.jobqueue import repo, type_name
from core.jobqueue.grouped import Outcome
from core.jobqueue.models import Job
from core.jobqueue.writer import JobWriter
from core.settings import get_settings
from deployments.worker.jobs_worker import JobsWorker
from tests.conftest import reload_settings
from tests.integration.test_job_queue import (
    all_finished,
    enqueue,
    jobs,
    kill,
    markers,
    queue_env,  # noqa: F401 - fixture
    run_worker_until,
    start_worker_process,
    wait_for,
)


@pytest.fixture
def statements(queue_env) -> Iterator[list[str]]:  # noqa: F811 - the fixture above
    """Every SQL statement this process sends to the test database (UPDATE/INSERT/SELECT)."""
    seen: list[str] = []
    engine = get_engine(queue_env["DATABASE_URL"])

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def job_updates(seen: list[str]) -> list[str]:
    return [s for s in seen if "UPDATE jobs" in s]


async def test_batch_mode_is_one_task_run_whose_artifact_and_log_list_every_job(queue_env, statements,  # noqa: F811
                                                                                 monkeypatch):
    url = queue_env["DATABASE_URL"]
    monkeypatch.setenv("JOBS_DEFAULT_CONCURRENCY", "10")
    reload_settings()
    ids = enqueue(url, *[handlers.BatchJob(token=f"b{i}") for i in range(5)],
                  handlers.BatchJob(token="bad", fail="no such recipient"))
    await run_worker_until(all_finished(url, 6))
    rows = {j.id: j for j in jobs(url)}
    assert {j.status for j in rows.values() if j.id != ids[-1]} == {"Completed"}
    failed = rows[ids[-1]]
    assert (failed.status, failed.error_message) == ("Failed", "ValueError: no such recipient")
    assert all(j.progress_percent == 50 and j.progress_message.endswith("running") for j in rows.values())
    [task_run_id] = {j.task_run_id for j in rows.values()}  # ONE task run for the batch
    assert task_run_id and all(j.flow_run_id for j in rows.values())
    assert all(markers("done", f"b{i}") == 1 for i in range(5))

    async with get_client() as client:
        deadline = time.monotonic() + 20  # task runs reach the API through events: a moment later
        while True:
            try:
                run = await client.read_task_run(uuid.UUID(task_run_id))
                if run.state_type is not None and run.state_type.value == "COMPLETED":
                    break
            except ObjectNotFound:
                pass
            assert time.monotonic() < deadline, "the batch's task run never reached the API"
            await asyncio.sleep(0.2)
        [table] = [a for a in await client.read_artifacts(artifact_filter=ArtifactFilter(
            task_run_id=ArtifactFilterTaskRunId(any_=[run.id]))) if a.type == "table"]
        logs: list[str] = []
        deadline = time.monotonic() + 40  # logs reach the API in batches, later on a busy machine
        while not any("BatchJob: 6 jobs" in m for m in logs) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            logs = [log.message for log in await client.read_logs(log_filter=LogFilter(
                task_run_id=LogFilterTaskRunId(any_=[run.id])))]
    assert (run.name, run.state_type.value) == ("BatchJob-x6", "COMPLETED")
    data = json.loads(table.data) if isinstance(table.data, str) else table.data
    listed = {row["job_id"]: row for row in data}
    assert set(listed) == {str(i) for i in ids}
    assert listed[str(ids[-1])]["status"] == "Failed" and listed[str(ids[-1])]["error"] == "ValueError: no such recipient"
    assert all(row["status"] == "Completed" and row["error"] == "" and row["duration_ms"] >= 0
               for key, row in listed.items() if key != str(ids[-1]))
    [summary] = [m for m in logs if "BatchJob: 6 jobs" in m] or [f"no summary log in {logs}"]
    assert "1 Failed" in summary and "5 Completed" in summary
    assert all(str(i) in summary for i in ids) and "ValueError: no such recipient" in summary

    # Grouped: one claim, and the outcomes (with progress and the task run id) in a few statements.
    updates = job_updates(statements)
    assert len([s for s in updates if "claimable" in s]) == 1  # claim 6 in ONE UPDATE ... RETURNING
    assert len(updates) <= 10, updates  # claim, progress + task run id, outcomes: not one per job


async def test_per_job_mode_writes_are_grouped_too(queue_env, statements, monkeypatch):  # noqa: F811
    url = queue_env["DATABASE_URL"]
    monkeypatch.setenv("JOBS_MAX_PARALLEL", "20")
    monkeypatch.setenv("JOBS_DEFAULT_CONCURRENCY", "20")
    reload_settings()
    enqueue(url, *[handlers.RecordJob(token=f"p{i}") for i in range(20)])
    await run_worker_until(all_finished(url, 20))
    rows = jobs(url)
    assert {j.status for j in rows} == {"Completed"}
    assert len({j.task_run_id for j in rows}) == 20  # still one task run per job
    # Before: ~4 statements per job (task run id, heartbeat thread, finish, claim); now grouped.
    assert len(job_updates(statements)) < 20, job_updates(statements)


async def test_the_mode_setting_overrides_the_declared_mode(queue_env, monkeypatch):  # noqa: F811
    url = queue_env["DATABASE_URL"]
    monkeypatch.setenv("JOBS_MODES", "RecordJob=batch,BatchJob=job")
    reload_settings()
    enqueue(url, *[handlers.RecordJob(token=f"r{i}") for i in range(3)],
            *[handlers.BatchJob(token=f"j{i}") for i in range(3)])
    await run_worker_until(all_finished(url, 6))
    rows = jobs(url)
    # JOBS_MODES names the types by class name; the rows carry the full type names.
    assert len({j.task_run_id for j in rows if j.job_type == type_name(handlers.RecordJob)}) == 1
    assert len({j.task_run_id for j in rows if j.job_type == type_name(handlers.BatchJob)}) == 3


async def test_notify_starts_a_job_with_no_polling(queue_env, monkeypatch):  # noqa: F811
    """With an hour's poll interval, only LISTEN/NOTIFY can start these jobs within seconds."""
    url = queue_env["DATABASE_URL"]
    monkeypatch.setenv("JOBS_POLL_INTERVAL_SECONDS", "3600")
    reload_settings()
    worker = JobsWorker(get_settings(), name="listener")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop=stop))
    try:
        await asyncio.sleep(3)  # idle: start-up recovery done, waiting
        for token in ("first", "second"):  # idle worker, then inside its open session
            enqueue(url, handlers.RecordJob(token=token))
            deadline = time.monotonic() + 20
            while markers("done", token) == 0:
                assert time.monotonic() < deadline and not task.done(), "the job did not start without a poll"
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)  # a stop ends the hour-long wait at once


def test_one_heartbeat_statement_for_all_running_jobs_and_fenced_outcomes(queue_env, statements):  # noqa: F811
    url = queue_env["DATABASE_URL"]
    enqueue(url, *[handlers.RecordJob(token=f"h{i}") for i in range(5)])
    with session_scope(url) as session:
        claimed = repo.claim(session, job_type=type_name(handlers.RecordJob), limit=5, worker="pod-a",
                             type_limit=5)
    writer = JobWriter(url, heartbeat_seconds=0.3)
    try:
        writer.track((j.id, j.attempts) for j in claimed)
        with session_scope(url) as session:  # recovery takes one job away from this attempt
            assert repo.requeue_or_fail(session, [(claimed[0].id, 1)], reason="test", max_attempts=3) == (1, 0)
        statements.clear()
        wait_for(lambda: writer.is_lost(claimed[0].id), timeout=10)
        beats = [s for s in job_updates(statements) if "heartbeat_at" in s]
        assert len(beats) == 1 and "unnest" in beats[0]  # ONE statement for the five jobs
        futures = writer.finish([Outcome(j.id, j.attempts, _now()) for j in claimed])
        assert [f.result(10) for f in futures] == [False, True, True, True, True]
    finally:
        writer.close()
    rows = {j.id: j for j in jobs(url)}
    assert rows[claimed[0].id].status == "Pending"  # re-queued, not completed by the old attempt
    assert [rows[j.id].status for j in claimed[1:]] == ["Completed"] * 4


def _now():  # type: ignore[no-untyped-def]
    from core.db.types import utcnow

    return utcnow()


def test_grouped_writes_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    upgrade(url)
    with session_scope(url) as session:
        ids = [repo.enqueue(session, "RecordJob", {"token": f"s{i}"}) for i in range(3)]
    with session_scope(url) as session:
        claimed = repo.claim(session, job_type="RecordJob", limit=3, worker="lite", type_limit=3)
    writer = JobWriter(url, heartbeat_seconds=60, progress_seconds=0.01)
    try:
        writer.track((j.id, j.attempts) for j in claimed)
        writer.touch(ids[0], 1, message="half", percent=50, task_run_id="tr-1")
        futures = writer.finish([Outcome(ids[0], 1, _now()), Outcome(ids[1], 1, _now(), "boom"),
                                 Outcome(ids[2], 2, _now())])  # wrong attempt: fenced out
        assert [f.result(10) for f in futures] == [True, True, False]
    finally:
        writer.close()
    with session_scope(url) as session:
        rows = {j.id: j for j in session.execute(select(Job)).scalars()}
    assert (rows[ids[0]].status, rows[ids[0]].progress_percent, rows[ids[0]].task_run_id) == ("Completed", 50, "tr-1")
    assert (rows[ids[1]].status, rows[ids[1]].error_message) == ("Failed", "boom")
    assert rows[ids[2]].status == "Running"


COMPLETIONS_DDL = [
    "CREATE TABLE IF NOT EXISTS test_job_completions (job_id uuid, attempt int)",
    """CREATE OR REPLACE FUNCTION test_log_completion() RETURNS trigger AS $$
       BEGIN INSERT INTO test_job_completions VALUES (NEW.id, NEW.attempts); RETURN NEW; END $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS test_job_completions ON jobs",
    """CREATE TRIGGER test_job_completions AFTER UPDATE OF status ON jobs FOR EACH ROW
       WHEN (NEW.status = 'Completed') EXECUTE FUNCTION test_log_completion()""",
]


def test_kill_9_of_a_worker_mid_batch_still_completes_every_job_exactly_once(queue_env, monkeypatch):  # noqa: F811
    """A real ``python -m deployments.worker.jobs_worker`` is SIGKILLed while a batch runs; a second
    worker recovers by liveness. A trigger logs every transition to Completed."""
    url = queue_env["DATABASE_URL"]
    engine = get_engine(url)
    with engine.begin() as conn:
        for ddl in COMPLETIONS_DDL:
            conn.execute(text(ddl))
        conn.execute(text("TRUNCATE test_job_completions"))
    env = {"JOBQUEUE_MARKERS": str(handlers.markers()), "JOBS_BATCH_SIZE": "10", "JOBS_MAX_PARALLEL": "20",
           "JOBS_DEFAULT_CONCURRENCY": "20"}
    # Batches of 10: each has quick jobs and one slow one, so a batch is mid-flight at the kill.
    tokens = [f"k{i}" for i in range(40)]
    enqueue(url, *[handlers.BatchJob(token=t, seconds=4 if i % 10 == 9 else 0.01 * (i % 10))
                   for i, t in enumerate(tokens)])
    try:
        first = start_worker_process("pod-a", env)
        try:
            wait_for(lambda: sum(markers("done", t) for t in tokens) >= 10, timeout=120)
            time.sleep(0.3)  # quick jobs of the next batches finish; their slow ones do not
        finally:
            kill(first)  # SIGKILL: no cleanup, the slow jobs' rows stay Running
        before = {j.id: j.status for j in jobs(url)}
        assert "Running" in before.values()
        second = start_worker_process("pod-b", env)
        try:
            wait_for(all_finished(url, 40), timeout=120)
        finally:
            kill(second, signal.SIGTERM)
        with engine.begin() as conn:
            completions = conn.execute(text("SELECT job_id, attempt FROM test_job_completions")).all()
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS test_job_completions ON jobs"))
    rows = jobs(url)
    assert {j.status for j in rows} == {"Completed"}
    assert sorted(c.job_id for c in completions) == sorted(j.id for j in rows)  # each completed exactly once
    assert {(c.job_id, c.attempt) for c in completions} == {(j.id, j.attempts) for j in rows}
    token_of = {j.id: j.job_data["token"] for j in rows}
    recovered = [j for j in rows if j.attempts == 2]
    assert recovered and all(j.claimed_by == "pod-b" for j in recovered)
    for j in rows:
        done = markers("done", token_of[j.id])
        if j.attempts == 1:  # completed (and recorded) once: never ran again
            assert (markers("start", token_of[j.id]), done) == (1, 1), token_of[j.id]
        else:  # cut off by the kill, then run once more
            assert done == 1 and markers("start", token_of[j.id]) == 2, token_of[j.id]
